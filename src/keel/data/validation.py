"""``validate(data, suite)``: run every check, vectorised, and say what failed and where."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keel.core.errors import InvalidArgument
from keel.data.checks import CheckResult
from keel.data.frames import to_arrow
from keel.data.suite import Suite


@dataclass
class ValidationResult:
    """What ``validate`` found: one ``CheckResult`` per check, the rows that failed row-level error checks
    (``failing_rows``, for quarantine), and how long it took."""

    suite: str
    row_count: int
    results: list[CheckResult]
    seconds: float = 0.0
    failing_rows: np.ndarray | None = field(default=None, repr=False)  # rows failing error-level row checks
    # error-level failures of checks on a whole column or table (no row mask): quarantine cannot split them off
    whole_data: list[CheckResult] = field(default_factory=list)
    # the suite itself (``Suite.to_dict``), kept with the record: what monitors apply to live inputs later
    definition: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def whole_data_errors(self) -> int:
        """How many error-level checks on a whole column or table failed (quarantine cannot split those off)."""
        return len(self.whole_data)

    @property
    def errors(self) -> list[CheckResult]:
        """The failed checks of severity ``error``: any of them fails the validation."""
        return [r for r in self.results if not r.passed and r.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        """The failed checks of severity ``warn``: reported, not failing the validation."""
        return [r for r in self.results if not r.passed and r.severity == "warn"]

    @property
    def passed(self) -> bool:
        """True when no error-level check failed (warnings allowed)."""
        return not self.errors

    @property
    def splittable(self) -> bool:
        """Whether every error is row-level, so failing rows can be quarantined and the rest kept."""
        return self.failing_rows is not None and self.whole_data_errors == 0

    def unsplittable(self) -> str:
        """The failed checks that judge the whole table or column, which quarantine cannot split off."""
        return ", ".join(_label(r) for r in self.whole_data)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data: suite, row count, passed, error and warning counts, every check's
        result, and the suite's definition when kept."""
        return {
            "suite": self.suite,
            "row_count": self.row_count,
            "passed": self.passed,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "seconds": round(self.seconds, 4),
            "checks": [r.to_dict() for r in self.results],
            **({"definition": self.definition} if self.definition is not None else {}),
        }

    def summary(self) -> str:
        """One line: all checks passed (and how many warnings), or which failed and why (the first five)."""
        if self.passed:
            return f"suite {self.suite!r}: all {len(self.results)} checks passed" + (
                f" ({len(self.warnings)} warnings)" if self.warnings else ""
            )
        failed = "; ".join(f"{_label(r)}: {r.message}" for r in self.errors[:5])
        return f"suite {self.suite!r}: {len(self.errors)} of {len(self.results)} checks failed: {failed}"


def _label(r: CheckResult) -> str:
    return f"{r.kind}({r.column})" if r.column else r.kind


def validate(data: Any, suite: Suite) -> ValidationResult:
    """Validate ``data`` (any frame, table or path) against ``suite``.

    A check on a column that the data does not have is an error in the suite, not in the
    data: it raises ``InvalidArgument`` naming the column and the columns there are.
    """
    import time

    if not isinstance(suite, Suite):
        raise InvalidArgument.for_field("suite", type(suite).__name__, "a keel.data.Suite")
    started = time.perf_counter()
    table = to_arrow(data)
    present = set(table.column_names)
    unknown = sorted(suite.columns() - present)
    if unknown:
        raise InvalidArgument(
            f"suite {suite.name!r} checks column {unknown[0]!r}, which the data does not have; "
            f"expected one of: {', '.join(table.column_names)}"
        )
    results: list[CheckResult] = []
    failing = np.zeros(table.num_rows, dtype=bool)
    whole: list[CheckResult] = []
    for check in suite.checks:
        result, mask = check.evaluate(table)
        results.append(result)
        if not result.passed and result.severity == "error":
            if mask is None:
                whole.append(result)
            else:
                failing |= mask
    return ValidationResult(suite.name, table.num_rows, results, time.perf_counter() - started, failing, whole,
                            suite.to_dict())  # fmt: skip
