"""Alert rules of monitors: a small expression language over a window's values, checked over a time series.

A rule is ``NAME OP THRESHOLD``, read as it is checked::

    drift.share > 0.3                               an absolute threshold
    health.latency_p99_ms >= 250
    "drift.mean radius.score" > 0.2                 a name with spaces goes in double quotes
    drift.*.score > 0.2                             any column: fires when any matching value breaches
    quality.*.missing_share > 0.1
    performance.realised.accuracy < baseline - 0.05 relative to the same value in the baseline window
    health.latency_p99_ms > baseline * 1.5
    performance.estimated.accuracy < baseline - 2%  2% of the baseline (the gate rules' arithmetic)

- ``OP`` is one of ``> >= < <= == !=`` (``==`` and ``!=`` compare exactly).
- ``NAME`` is a value name (``drift.share``, ``quality.<column>.missing_share``, ...) starting with one of
  ``GROUPS``. Written bare, it is letters, digits and ``_ . * - / : %``; any other name (spaces, quotes,
  operators) goes in double quotes, where ``\\"`` is a quote, ``\\\\`` a backslash and ``\\*`` a literal star.
- ``*`` matches one or more characters of any kind (a column's name may hold dots and spaces).
- ``THRESHOLD`` is a number, or ``baseline`` optionally followed by ``+ N``, ``- N``, ``+ N%``, ``- N%`` or
  ``* N``: ``baseline`` is the value of the same name in the baseline window.

``evaluate`` checks a rule on a monitor's windows (oldest first) and says whether it fires at the newest one::

    >>> verdict = evaluate(AlertRule("drift", "drift.share > 0.3", for_windows=3), windows)   # doctest: +SKIP
    >>> verdict.state, verdict.message   # doctest: +SKIP
    ('firing', 'drift.share = 0.45 > 0.3 for 3 windows')
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from keel.core.errors import InvalidArgument
from keel.core.monitoring import AlertRule, MonitorWindow

__all__ = ["GROUPS", "VERDICT_STATES", "Breach", "ParsedRule", "Verdict", "check_expression", "evaluate", "parse_rule"]

GROUPS: tuple[str, ...] = ("drift", "prediction_drift", "quality", "health", "performance")
VERDICT_STATES: tuple[str, ...] = ("firing", "pending", "ok", "unknown")
MAX_NAME = 300
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt,
}  # fmt: skip
_BARE = re.compile(r"[\w.*/:%-]+")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_AMOUNT = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SHAPE = "'NAME OP NUMBER' or 'NAME OP baseline [+|-|* N[%]]' (e.g. drift.share > 0.3)"


@dataclass(frozen=True, slots=True)
class ParsedRule:
    """A rule's expression, parsed once. ``parts`` are the name's literal pieces around its wildcards."""

    name: str
    parts: tuple[str, ...]
    op: str
    kind: str  # "absolute", "baseline", "delta", "relative" (as keel.core.rules)
    number: float = 0.0
    written: str = ""  # the threshold as the rule wrote it: "0.3", "baseline * 1.5"

    @property
    def wildcard(self) -> bool:
        return len(self.parts) > 1

    @property
    def uses_baseline(self) -> bool:
        return self.kind != "absolute"

    def matches(self, values: Mapping[str, float]) -> dict[str, float]:
        """The values this rule reads in a window, by name (one at most without wildcards)."""
        if not self.wildcard:
            return {self.name: values[self.name]} if self.name in values else {}
        pattern = _pattern(self.parts)
        return {name: value for name, value in values.items() if pattern.fullmatch(name)}

    def threshold(self, baseline: float | None) -> float:
        if self.kind == "absolute":
            return self.number
        if baseline is None:
            raise ValueError("a baseline rule needs the baseline's value")
        if self.kind == "baseline":
            return baseline
        if self.kind == "delta":
            return baseline + self.number
        return baseline + abs(baseline) * self.number  # "+ 1%" is better also for a negative score

    def breaches(self, value: float, threshold: float) -> bool:
        return not math.isnan(value) and not math.isnan(threshold) and _OPS[self.op](value, threshold)

    def margin(self, value: float, threshold: float) -> float:
        """How far past the threshold a value is (larger is worse): the order breaches are reported in."""
        if self.op in (">", ">="):
            return value - threshold
        if self.op in ("<", "<="):
            return threshold - value
        return abs(value - threshold) if self.op == "!=" else -abs(value - threshold)


@functools.lru_cache(maxsize=64)
def _pattern(parts: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(".+".join(re.escape(part) for part in parts), re.DOTALL)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str, at: int | None = None) -> InvalidArgument:
        at = self.pos if at is None else at
        where = "at the end" if at >= len(self.text) else f"at character {at + 1} ({self.text[at : at + 12]!r})"
        return InvalidArgument.for_field("expression", self.text, f"{_SHAPE}; {where} expected {what}")

    def space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def take(self, pattern: re.Pattern[str]) -> str | None:
        m = pattern.match(self.text, self.pos)
        if m is None or not m.group():
            return None
        self.pos = m.end()
        return m.group()

    def name(self) -> tuple[str, tuple[str, ...]]:
        start = self.pos
        if self.text.startswith('"', start):
            parts = self.quoted()
        else:
            bare = self.take(_BARE)
            if bare is None:
                raise self.fail("a value name such as drift.share (in double quotes when it has spaces)")
            parts = tuple(bare.split("*"))
        name = "*".join(parts)
        group, dot, rest = parts[0].partition(".")
        if not dot or group not in GROUPS or not (rest or len(parts) > 1):
            raise self.fail(f"a value name starting with {', '.join(g + '.' for g in GROUPS)}", start)
        if len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise self.fail(f"a value name of at most {MAX_NAME} printable characters", start)
        if any(not part for part in parts[1:-1]):
            raise self.fail("a name with one * at a time (** is no wider than *)", start)
        return name, parts

    def quoted(self) -> tuple[str, ...]:
        opening = self.pos
        self.pos += 1
        parts: list[str] = []
        piece: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                return (*parts, "".join(piece))
            if char == "\\":
                if self.pos >= len(self.text) or self.text[self.pos] not in '"\\*':
                    raise self.fail('\\" or \\\\ or \\* after a backslash', self.pos)
                piece.append(self.text[self.pos])
                self.pos += 1
            elif char == "*":
                parts.append("".join(piece))
                piece = []
            else:
                piece.append(char)
        raise self.fail(f'the closing " of the name opened at character {opening + 1}', len(self.text))

    def op(self) -> str:
        for op in _OPS:  # two-character operators first
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        hint = " (a name with spaces goes in double quotes)" if self.text[self.pos : self.pos + 1].isalnum() else ""
        raise self.fail(f"an operator: > >= < <= == !={hint}")

    def threshold(self) -> tuple[str, float]:
        if self.text.startswith("baseline", self.pos):
            self.pos += len("baseline")
            self.space()
            if self.pos == len(self.text):
                return "baseline", 0.0
            sign = self.text[self.pos]
            if sign not in "+-*":
                raise self.fail("+, - or * after baseline, or the end of the rule")
            self.pos += 1
            self.space()
            amount = self.number(_AMOUNT, "a number after baseline " + sign)
            if self.text.startswith("%", self.pos):
                if sign == "*":
                    raise self.fail("the end of the rule: 'baseline * factor' takes no %")
                self.pos += 1
                return "relative", (amount if sign == "+" else -amount) / 100.0
            if sign == "*":
                return "relative", amount - 1.0
            return "delta", amount if sign == "+" else -amount
        return "absolute", self.number(_NUMBER, "a number or baseline")

    def number(self, pattern: re.Pattern[str], what: str) -> float:
        start = self.pos
        text = self.take(pattern)
        if text is None:
            raise self.fail(what)
        value = float(text)
        if not math.isfinite(value):
            raise self.fail("a finite number", start)
        return value


def parse_rule(expression: str) -> ParsedRule:
    """Parse a rule's expression, or raise ``InvalidArgument`` naming ``expression``, the text and what was expected
    where.

    >>> parse_rule('"drift.mean radius.score" > baseline * 1.5')
    ParsedRule(name='drift.mean radius.score', parts=('drift.mean radius.score',), op='>', kind='relative', number=0.5, \
written='baseline * 1.5')
    """
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidArgument.for_field("expression", expression, _SHAPE)
    return _parse(expression)


@functools.lru_cache(maxsize=1024)  # the scheduler evaluates the same few rules every window
def _parse(expression: str) -> ParsedRule:
    parser = _Parser(expression)
    parser.space()
    name, parts = parser.name()
    parser.space()
    op = parser.op()
    parser.space()
    start = parser.pos
    kind, number = parser.threshold()
    written = " ".join(expression[start : parser.pos].split())
    parser.space()
    if parser.pos != len(expression):
        raise parser.fail("the end of the rule")
    return ParsedRule(name, parts, op, kind, number, written)


def check_expression(expression: object) -> str:
    """Refuse a bad rule expression early (the store and the CLI call it before saving a rule); return it."""
    if not isinstance(expression, str):
        raise InvalidArgument.for_field("expression", expression, _SHAPE)
    parse_rule(expression)
    return expression


# evaluation ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Breach:
    name: str
    value: float
    threshold: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """A rule at a monitor's newest window.

    ``state``: ``firing`` (breached in each of the last ``for_windows`` consecutive windows: open or update the
    alert), ``pending`` (breaches, not yet for long enough), ``ok`` (fine: resolve an open alert) or ``unknown``
    (a value or the baseline is missing: neither fire nor resolve). ``breaches``: the breaching values of the newest
    window, worst first; ``value``: the worst one (or, when fine, the one nearest to breaching); ``windows``: how
    many consecutive windows breached up to the newest.
    """

    rule: str
    state: str
    message: str
    window_ms: int | None = None
    windows: int = 0
    value: float | None = None
    breaches: tuple[Breach, ...] = ()

    @property
    def fires(self) -> bool:
        return self.state == "firing"

    @property
    def resolves(self) -> bool:
        return self.state == "ok"


@dataclass(frozen=True, slots=True)
class _Check:
    state: str  # "breach", "ok", "unknown"
    checked: tuple[Breach, ...] = ()  # worst first
    reason: str = ""


def _check(parsed: ParsedRule, window: MonitorWindow, baseline: MonitorWindow | None) -> _Check:
    found = parsed.matches(window.values)
    if not found:
        return _Check("unknown", reason=f"no value {_rule_name(parsed)} in the window starting at {window.start_ms}")
    if parsed.uses_baseline and baseline is None:
        return _Check("unknown", reason=f"no baseline window for {_rule_name(parsed)}")
    checked = []
    for name, value in found.items():
        base = baseline.values.get(name) if baseline is not None else None
        if parsed.uses_baseline and base is None:
            continue  # a column the baseline lacks has nothing to compare with
        checked.append(Breach(name, float(value), parsed.threshold(None if base is None else float(base))))
    if not checked:
        return _Check("unknown", reason=f"no value {_rule_name(parsed)} in the baseline window")
    checked.sort(key=lambda b: (-_finite(parsed.margin(b.value, b.threshold)), b.name))
    breached = any(parsed.breaches(b.value, b.threshold) for b in checked)
    return _Check("breach" if breached else "ok", tuple(checked))


def _finite(margin: float) -> float:
    return margin if math.isfinite(margin) else -math.inf  # a NaN never breaches: report it last


def _contiguous(earlier: MonitorWindow, later: MonitorWindow) -> bool:
    """No whole window is missing between two stored windows (an end may be inclusive or exclusive)."""
    return later.start_ms - earlier.end_ms < max(earlier.end_ms - earlier.start_ms, 1)


def evaluate(rule: AlertRule, windows: Sequence[MonitorWindow], baseline: MonitorWindow | None = None) -> Verdict:
    """Whether ``rule`` fires at the newest of ``windows`` (sorted by start here, so any order works).

    It fires when its expression breached in each of the last ``rule.for_windows`` windows, consecutive in time. A
    window that is fine, whose value is missing, or a stretch of time with no window stored, restarts the count:
    "for N windows" claims N windows in a row that breached. ``baseline`` is the window that ``baseline`` in the
    expression refers to (the monitor's first window, or one chosen); without it, such a rule is ``unknown``.
    """
    parsed = parse_rule(rule.expression)
    ordered = sorted(windows, key=lambda w: w.start_ms)
    if not ordered:
        return Verdict(rule.name, "unknown", f"{rule.name}: no window yet")
    newest = ordered[-1]
    now = _check(parsed, newest, baseline)
    if now.state == "unknown":
        return Verdict(rule.name, "unknown", now.reason, newest.start_ms)
    if now.state == "ok":
        return Verdict(rule.name, "ok", _fine(parsed, now.checked), newest.start_ms, 0, now.checked[0].value)
    streak = 1
    for earlier, later in zip(reversed(ordered[:-1]), reversed(ordered[1:]), strict=True):
        if not _contiguous(earlier, later) or _check(parsed, earlier, baseline).state != "breach":
            break
        streak += 1
    breaches = tuple(b for b in now.checked if parsed.breaches(b.value, b.threshold))
    state = "firing" if streak >= rule.for_windows else "pending"
    span = (
        f"for {streak} window{'s' if streak > 1 else ''}" if state == "firing" else f"for {streak} of {rule.for_windows} windows"
    )
    message = f"{_describe(parsed, breaches[0])} {span}"
    if len(breaches) > 1:
        others = ", ".join(f"{_shown(b.name)} = {_num(b.value)}" for b in breaches[1:4])
        message += f" (and {len(breaches) - 1} more: {others}{', ...' if len(breaches) > 4 else ''})"
    return Verdict(rule.name, state, message, newest.start_ms, streak, breaches[0].value, breaches)


def _threshold(parsed: ParsedRule, breach: Breach) -> str:
    """``0.3``, or ``baseline * 1.5 = 180`` for a baseline-relative rule."""
    return _num(breach.threshold) if parsed.kind == "absolute" else f"{parsed.written} = {_num(breach.threshold)}"


def _describe(parsed: ParsedRule, breach: Breach) -> str:
    return f"{_shown(breach.name)} = {_num(breach.value)} {parsed.op} {_threshold(parsed, breach)}"


def _fine(parsed: ParsedRule, checked: tuple[Breach, ...]) -> str:
    nearest = checked[0]
    if parsed.wildcard:
        return (f"no {_rule_name(parsed)} {parsed.op} {parsed.written} among {len(checked)} values; nearest: "
                f"{_shown(nearest.name)} = {_num(nearest.value)} (threshold {_num(nearest.threshold)})")  # fmt: skip
    return f"{_shown(nearest.name)} = {_num(nearest.value)}, not {parsed.op} {_threshold(parsed, nearest)}"


def _num(value: float) -> str:
    return format(value, ".6g")


def _shown(name: str) -> str:
    """A value's name as a rule would write it: bare when it can be, else in double quotes."""
    return _written((name,))


def _rule_name(parsed: ParsedRule) -> str:
    return _written(parsed.parts)


def _written(parts: tuple[str, ...]) -> str:
    """Literal pieces joined by wildcards, bare when they can be, else in double quotes with \\ " * escaped."""
    if all(_BARE.fullmatch(part) and "*" not in part for part in parts if part):
        return "*".join(parts)
    return '"' + "*".join(p.replace("\\", "\\\\").replace('"', '\\"').replace("*", "\\*") for p in parts) + '"'
