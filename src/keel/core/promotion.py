"""Alias moves through gates, decided the same way by every backend (a server never trusts its clients).

A store calls ``check_move`` before its transaction (pure argument checks), then, inside the one
transaction that moves the alias, ``require_holder`` (compare-and-swap on the alias),
``require_gates_or_force`` and ``judge``, with the candidate and the alias's current holder read in that
transaction: the gates decide on the version that is actually replaced, and a refusal writes nothing.
The rules are ``keel.core.rules``, the engine of ``keel gate``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from keel.core import validation as v
from keel.core.actor import current_actor
from keel.core.errors import Conflict, InvalidArgument, PromotionRefused
from keel.core.models import ModelVersion
from keel.core.rules import Rule, check_rules, parse_rule

ANY_HOLDER: Literal["any"] = "any"
"""``expected_from`` default: move whatever version holds the alias (the gates still compare with it)."""

ExpectedFrom = int | Literal["any"] | None

MAX_ACTOR_LENGTH = 128
MAX_RULES = 100  # bad input costs bounded work inside the transaction that holds the model's lock


@dataclass(frozen=True, slots=True)
class AliasMove:
    """A checked request to move an alias; ``gated`` when it asks for at least one gate."""

    alias: str
    version: int | None
    rules: tuple[Rule, ...]
    require_valid_data: bool
    expected_from: ExpectedFrom
    force: bool
    actor: str
    reason: str

    @property
    def gated(self) -> bool:
        return bool(self.rules) or self.require_valid_data


def _flag(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument.for_field(field, value, "true or false")
    return value


def check_move(
    alias: Any,
    version: Any,
    *,
    rules: Any = (),
    require_valid_data: Any = False,
    expected_from: Any = ANY_HOLDER,
    force: Any = False,
    actor: Any = "",
    reason: Any = "",
) -> AliasMove:
    """The arguments of a move, checked before any transaction: ``InvalidArgument`` names what is wrong."""
    v.check_alias(alias)
    if version is not None:
        v.check_version_number(version, "a positive integer, or None to remove the alias")
    if (
        isinstance(rules, (str, bytes))
        or not isinstance(rules, Sequence)
        or len(rules) > MAX_RULES
        or not all(isinstance(r, (str, Rule)) for r in rules)
    ):
        raise InvalidArgument.for_field("rules", rules, f"a list of at most {MAX_RULES} rules, e.g. ['auc >= baseline']")
    parsed = tuple(r if isinstance(r, Rule) else parse_rule(r) for r in rules)
    if (
        expected_from != ANY_HOLDER
        and expected_from is not None
        and (isinstance(expected_from, bool) or not isinstance(expected_from, int) or expected_from < 1)
    ):
        raise InvalidArgument.for_field(
            "expected_from", expected_from, f"a version number, None (the alias is not held) or {ANY_HOLDER!r}"
        )
    if not isinstance(actor, str) or len(actor) > MAX_ACTOR_LENGTH:
        raise InvalidArgument.for_field("actor", actor, f"a string of at most {MAX_ACTOR_LENGTH} characters")
    if not isinstance(reason, str):
        raise InvalidArgument.for_field("reason", reason, "a string")
    move = AliasMove(
        alias, version, parsed, _flag("require_valid_data", require_valid_data), expected_from, _flag("force", force),
        actor or current_actor(), reason,
    )  # fmt: skip
    if move.force and move.gated:
        raise InvalidArgument("force=True skips the gates: pass rules / require_valid_data, or force=True, not both")
    if version is None and move.gated:
        raise InvalidArgument(f"removing alias {alias!r} passes no gates; it takes force=True (recorded as forced)")
    return move


def require_holder(name: str, move: AliasMove, current: int | None) -> None:
    """Compare-and-swap: refuse when the alias is not held by the version the caller expects (another move came first)."""
    if move.expected_from != ANY_HOLDER and move.expected_from != current:
        held = f"version {current}" if current is not None else "no version"
        wanted = f"version {move.expected_from}" if move.expected_from is not None else "no version"
        raise Conflict(
            f"{name}@{move.alias} is held by {held}, not {wanted} as expected: another move came first; "
            "read the alias again and decide again"
        )


def require_gates_or_force(name: str, move: AliasMove) -> None:
    """A move that passes no gate must say so (``force=True``), and is then recorded as forced."""
    if not move.gated and not move.force:
        raise InvalidArgument(
            f"moving {name}@{move.alias} passes no gate: give rules (e.g. 'auc >= baseline') or require_valid_data, "
            "or force=True (keel models promote --force) to move it ungated; a forced move is recorded as forced"
        )


def _json_number(x: float | None) -> float | str | None:
    """A check's value as strict JSON (no NaN or infinities in JSON: they travel as strings)."""
    return x if x is None or math.isfinite(x) else str(x)


def judge(
    name: str,
    move: AliasMove,
    candidate: ModelVersion,
    holder: ModelVersion | None,
    validations: Mapping[str, bool | None],
) -> list[dict[str, Any]]:
    """Every gate of ``move`` checked: the checks as JSON, or ``PromotionRefused`` naming the failures, with the checks.

    ``holder`` is the version the alias points to now (the baseline of baseline rules: a baseline rule without
    one is ``InvalidArgument``, as in ``keel gate``); ``validations`` maps each training dataset of the candidate
    to whether its latest validation passed (``None``: never validated).
    """
    checks: list[dict[str, Any]] = []
    failures: list[str] = []
    if move.rules:
        for c in check_rules(
            list(move.rules), candidate.metrics, holder.metrics if holder is not None else None,
            candidate_name=f"version {candidate.version} of {name!r}",
            baseline_name=f"the current {move.alias} (version {holder.version if holder else '-'})",
            no_baseline=f"no version of {name!r} holds {move.alias!r} yet, so there is nothing to compare with; "
            "promote the first version with absolute rules only",
        ):  # fmt: skip
            values = {"candidate": c.candidate, "baseline": c.baseline, "threshold": c.threshold}
            checks.append({"rule": c.rule, "metric": c.metric, **{k: _json_number(x) for k, x in values.items()}})
            checks[-1]["passed"] = c.passed
            if not c.passed:
                failures.append(f"{c.rule!r}: {c.metric} is {c.candidate:.6g}, threshold {c.threshold:.6g}")
    if move.require_valid_data:
        if not candidate.datasets:
            failures.append("no training dataset is recorded for this version, so its validation cannot be checked")
            checks.append({"data": None, "validation": "none", "passed": False})
        for ref in candidate.datasets:
            passed = validations.get(ref)
            state = "none" if passed is None else "passed" if passed else "failed"
            checks.append({"data": ref, "validation": state, "passed": bool(passed)})
            if not passed:
                failures.append(f"training data {ref} has {'no validation' if passed is None else 'a failed validation'}")
    if failures:
        raise PromotionRefused(
            f"promotion of {name} version {candidate.version} to {move.alias!r} refused: {'; '.join(failures)}", checks
        )
    return checks
