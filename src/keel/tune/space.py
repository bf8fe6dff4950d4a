"""Search spaces: distributions for HPO, grids and random lists for sweeps."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from keel.core.errors import InvalidArgument


@dataclass(frozen=True)
class Distribution:
    """One dimension of a search space; make it with ``uniform``, ``loguniform``, ``intrange`` or ``choice``."""

    kind: str  # "float", "int", "choice"
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def to_optuna(self) -> Any:
        """The same distribution as Optuna's (``FloatDistribution``, ``IntDistribution`` or ``CategoricalDistribution``)."""
        import optuna.distributions as d

        if self.kind == "float":
            return d.FloatDistribution(self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return d.IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return d.CategoricalDistribution(self.choices)

    def sample(self, rng: random.Random) -> Any:
        """One value drawn with ``rng`` (as ``random_configs`` does): between ``low`` and ``high`` (on a log scale
        with ``log``; rounded for integers; ``step`` not applied), or one of ``choices``."""
        if self.kind == "choice":
            return rng.choice(self.choices)
        if self.log:
            import math

            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return round(value) if self.kind == "int" else value


def uniform(low: float, high: float, step: float | None = None) -> Distribution:
    """A float between ``low`` and ``high`` (``low < high``); with ``step``, an Optuna study suggests only
    ``low + k * step``. ``uniform(0.0, 0.5)``."""
    _check_range("uniform", low, high)
    return Distribution("float", float(low), float(high), step=step)


def loguniform(low: float, high: float) -> Distribution:
    """A float between ``low`` and ``high`` drawn on a log scale (``0 < low < high``): ``loguniform(1e-4, 1e-1)``
    for a learning rate."""
    _check_range("loguniform", low, high)
    if low <= 0:
        raise InvalidArgument.for_field("loguniform low", low, "a positive number")
    return Distribution("float", float(low), float(high), log=True)


def intrange(low: int, high: int, log: bool = False) -> Distribution:
    """An integer from ``low`` to ``high``, both included (on a log scale with ``log``): ``intrange(2, 12)``."""
    _check_range("intrange", low, high)
    return Distribution("int", int(low), int(high), log=log)


def choice(options: Sequence[Any]) -> Distribution:
    """One of ``options`` (at least one): ``choice(["lbfgs", "saga"])``."""
    if not options:
        raise InvalidArgument.for_field("choice options", list(options), "at least one option")
    return Distribution("choice", choices=tuple(options))


def _check_range(name: str, low: float, high: float) -> None:
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or not low < high:
        raise InvalidArgument.for_field(f"{name} range", (low, high), "two numbers with low < high")


def check_space(space: Any) -> dict[str, Distribution]:
    if not isinstance(space, dict) or not space:
        raise InvalidArgument.for_field("search space", space, "a non-empty mapping of parameter name to distribution")
    for name, dist in space.items():
        if not isinstance(dist, Distribution):
            raise InvalidArgument.for_field(
                f"search space {name!r}", dist, "a distribution: keel.tune.uniform, loguniform, intrange or choice"
            )
    return dict(space)


def grid(values: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination: ``grid({"C": [0.1, 1], "depth": [3, 5]})`` gives 4 configurations."""
    if not isinstance(values, dict) or not values or any(not isinstance(v, (list, tuple)) or not v for v in values.values()):
        raise InvalidArgument.for_field("grid", values, "a non-empty mapping of name to a non-empty list of values")
    names = list(values)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(values[n] for n in names))]


def random_configs(space: dict[str, Distribution], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` configurations drawn at random from ``space``."""
    check_space(space)
    rng = random.Random(seed)
    return [{name: dist.sample(rng) for name, dist in space.items()} for _ in range(n)]
