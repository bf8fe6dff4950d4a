"""Drift between a reference and current data, column by column, from profiles.

The reference may be a stored dataset version: its profile (computed once at logging)
is used and the reference data is never reloaded. Every test works on profiles:

- numeric: Kolmogorov-Smirnov (statistic from the two 1001-point quantile grids, p-value
  from the exact two-sample distribution), Wasserstein-1 (normed by the reference's
  standard deviation) and PSI on the reference's deciles (repeated deciles of discrete data
  merged, so each value's mass is one bin);
- categorical: chi-square on the category counts, Jensen-Shannon distance, PSI.

Which test decides depends on type and size, as in most drift tools: with at most
``small_sample`` current rows the p-value tests (KS, chi-square) decide, since they are
well calibrated there; above it every tiny shift becomes "significant", so the distance
tests (Wasserstein, Jensen-Shannon) decide. ``method={"col": "psi"}`` picks a test per column.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from keel.core.datasets import DatasetVersion
from keel.core.errors import InvalidArgument
from keel.data import frames
from keel.data.profiling import GRID, compute_profile

TESTS = ("ks", "wasserstein", "psi", "chi2", "jensenshannon")
CORRECTIONS = ("bh", "bonferroni", "none")
DEFAULT_THRESHOLDS = {"ks": 0.05, "chi2": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.2}
_EPS = 1e-4
KS_EXACT_MAX = 10_000  # effective sample size up to which the KS p-value comes from the exact distribution


@dataclass(frozen=True)
class ColumnDrift:
    """The drift verdict of one column: the test that decided, its statistic (and p-value for KS and
    chi-square), the threshold it was held to, and every test computed (``tests``)."""

    column: str
    kind: str
    test: str  # the test that decided
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    tests: dict[str, dict[str, float | None]] = field(default_factory=dict)  # every test computed

    def to_dict(self) -> dict[str, Any]:
        """The column's verdict as JSON-ready data, one key per field."""
        return asdict(self)


@dataclass
class DriftResult:
    """What ``keel.data.drift`` found: one ``ColumnDrift`` per column compared, and whether the dataset drifted
    (at least ``drift_share`` of its columns did). ``result.drifted`` names the columns that drifted."""

    columns: list[ColumnDrift]
    reference: str
    current: str
    drift_share: float
    reference_rows: int
    current_rows: int
    seconds: float = 0.0
    reference_profile: dict[str, Any] = field(default_factory=dict, repr=False)
    current_profile: dict[str, Any] = field(default_factory=dict, repr=False)
    correction: str = "bh"

    @property
    def drifted(self) -> list[str]:
        """The names of the columns that drifted, in the order compared."""
        return [c.column for c in self.columns if c.drifted]

    @property
    def share_drifted(self) -> float:
        """The share of the compared columns that drifted (0.0 when none were compared)."""
        return len(self.drifted) / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        """True when at least ``drift_share`` of the columns drifted: the dataset as a whole did."""
        return bool(self.columns) and self.share_drifted >= self.drift_share

    @property
    def verdict(self) -> str:
        """``"drift"`` (the dataset drifted: ``keel data drift --fail-on-drift`` exits 1), ``"columns"`` (some
        columns drifted, fewer than ``drift_share`` of them: exit 0, but worth a look) or ``"none"``."""
        if self.dataset_drift:
            return "drift"
        return "columns" if self.drifted else "none"

    @property
    def headline(self) -> str:
        """The verdict in words, e.g. "2 of 10 columns drifted (below the 50% dataset threshold)"."""
        n, total, threshold = len(self.drifted), len(self.columns), f"{self.drift_share:.0%}"
        if self.dataset_drift:
            return f"dataset drift: {n} of {total} columns drifted (the dataset threshold is {threshold})"
        if n:
            return f"{n} of {total} columns drifted (below the {threshold} dataset threshold)"
        return f"no dataset drift: none of {total} columns drifted"

    def column(self, name: str) -> ColumnDrift:
        """The verdict of the column ``name`` (``InvalidArgument`` naming the compared columns if it was not one)."""
        for c in self.columns:
            if c.column == name:
                return c
        raise InvalidArgument.for_field("column", name, f"one of {', '.join(c.column for c in self.columns)}")

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (``keel data drift --json``): the verdict, the drifted columns and
        every column's tests; the profiles are left out."""
        return {
            "reference": self.reference,
            "current": self.current,
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share_drifted,
            "drift_share": self.drift_share,
            "correction": self.correction,
            "drifted": self.drifted,
            "seconds": round(self.seconds, 4),
            "columns": [c.to_dict() for c in self.columns],
        }


def _cdf_at(grid_values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The empirical CDF ``P(X <= x)`` described by a quantile grid, evaluated at ``x``.

    Between grid points it interpolates (continuous data). Where several grid points share
    one value - an atom of discrete data: integers, 0/1 flags, heavy ties - it is the share
    up to the last of them, so the value's whole mass lies at or below it. (``np.interp``
    picks an arbitrary point of such a run, which made PSI see drift between two samples
    of one integer column.)
    """
    q = np.asarray(grid_values, dtype=np.float64)
    xs = np.asarray(x, dtype=np.float64)
    above = np.searchsorted(q, xs, side="right")  # how many grid points are <= x
    i = np.clip(above, 1, q.size - 1)
    lo, hi = q[i - 1], q[i]
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(span > 0, (xs - lo) / np.where(span > 0, span, 1.0), 0.0)
    out = GRID[i - 1] + (GRID[i] - GRID[i - 1]) * np.clip(frac, 0.0, 1.0)
    out = np.where(above == 0, 0.0, out)
    return np.where(above >= q.size, 1.0, out)


def numeric_tests(ref: dict[str, Any], cur: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    from scipy.stats import kstwo, kstwobign

    qr, qc = np.asarray(ref["grid"]), np.asarray(cur["grid"])
    xs = np.union1d(qr, qc)
    d = float(np.max(np.abs(_cdf_at(qr, xs) - _cdf_at(qc, xs))))
    n, m = ref["count"], cur["count"]
    n_eff = max(1, round(n * m / (n + m)))
    # the exact distribution costs ~0.5 s per column at a million rows; past KS_EXACT_MAX its limit is as good
    # (what scipy's ks_2samp does in its default mode), and at that size the distance tests decide anyway
    p = float(kstwo.sf(d, n_eff)) if n_eff <= KS_EXACT_MAX else float(kstwobign.sf(d * math.sqrt(n_eff)))
    w = float(np.mean(np.abs(qr - qc)))
    std = ref.get("std") or 0.0
    w_norm = w / std if std > 0 else (0.0 if w == 0 else math.inf)
    psi = _psi(*_decile_shares(qr, qc))
    return {
        "ks": {"statistic": d, "p_value": p},
        "wasserstein": {"statistic": w_norm, "p_value": None, "raw": w},
        "psi": {"statistic": psi, "p_value": None},
    }


def _decile_shares(qr: np.ndarray, qc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current shares in bins cut at the reference's deciles.

    Bins are ``(-inf, d1], (d1, d2], ..., (d9, inf)``. On discrete data several deciles fall
    on one value: the repeated edges are dropped, so that value's whole mass is one bin on
    both sides, and the reference's shares are measured, not assumed to be 10% each.
    """
    edges = np.unique(qr[100:1000:100])
    ref_cdf = np.concatenate([[0.0], _cdf_at(qr, edges), [1.0]])
    cur_cdf = np.concatenate([[0.0], _cdf_at(qc, edges), [1.0]])
    return np.diff(ref_cdf), np.diff(cur_cdf)


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.clip(expected, _EPS, None)
    a = np.clip(actual, _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def categorical_tests(ref: dict[str, Any], cur: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency

    keys = sorted(set(ref["frequencies"]) | set(cur["frequencies"]))
    r = np.array([ref["frequencies"].get(k, 0) for k in keys], dtype=float)
    c = np.array([cur["frequencies"].get(k, 0) for k in keys], dtype=float)
    pr, pc = r / max(r.sum(), 1), c / max(c.sum(), 1)
    if len(keys) > 1:
        table = np.vstack([r, c]) + 0.5  # continuity for categories absent on one side
        stat, p, _, _ = chi2_contingency(table)
    else:
        stat, p = 0.0, 1.0
    # natural log, as scipy and Evidently compute it, so a 0.1 threshold means the same in both
    js = float(jensenshannon(pr, pc)) if len(keys) > 1 else 0.0
    return {
        "chi2": {"statistic": float(stat), "p_value": float(p)},
        "jensenshannon": {"statistic": 0.0 if math.isnan(js) else js, "p_value": None},
        "psi": {"statistic": _psi(pr, pc), "p_value": None},
    }


def _profile_of(data: Any, label: str) -> tuple[dict[str, Any], str]:
    if isinstance(data, dict) and "columns" in data:
        return data, label
    if isinstance(data, DatasetVersion) or (isinstance(data, str) and not data.endswith((".csv", ".parquet", ".tsv"))):
        from keel.data.dataset_versions import profile, resolve

        version = resolve(data)
        return profile(version), version.ref
    return compute_profile(frames.to_arrow(data, what=label)), label


def drift(
    reference: Any,
    current: Any,
    *,
    columns: list[str] | None = None,
    method: dict[str, str] | None = None,
    thresholds: dict[str, float] | None = None,
    small_sample: int = 1000,
    drift_share: float = 0.5,
    correction: str = "bh",
) -> DriftResult:
    """Compare ``current`` with ``reference`` column by column.

    ``reference``/``current``: a dataset version or reference (``"orders@3"``: its stored
    profile is used), a frame/table/path, or a profile dict. ``thresholds`` override the
    defaults (p-value below 0.05 for KS and chi-square; 0.1 for the normed Wasserstein and
    Jensen-Shannon distances; 0.2 for PSI). The dataset drifts when at least
    ``drift_share`` of the columns do.

    Testing many columns at once, some stable column will show p < 0.05 by chance (one in
    twenty), so p-value verdicts are corrected for the number of columns tested:
    ``correction="bh"`` (Benjamini-Hochberg, the default: controls the share of false
    alarms), ``"bonferroni"``, or ``"none"``.
    """
    import time

    started = time.perf_counter()
    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    for name in thresholds or {}:
        if name not in TESTS:
            raise InvalidArgument.for_field("thresholds key", name, f"one of {', '.join(TESTS)}")
    if not 0 < drift_share <= 1:
        raise InvalidArgument.for_field("drift_share", drift_share, "a share in (0, 1]")
    if correction not in CORRECTIONS:
        raise InvalidArgument.for_field("correction", correction, f"one of {', '.join(CORRECTIONS)}")
    ref, ref_label = _profile_of(reference, "reference")
    cur, cur_label = _profile_of(current, "current")
    ref_cols, cur_cols = ref["columns"], cur["columns"]
    wanted = columns if columns is not None else [c for c in ref_cols if c in cur_cols]
    for name in wanted:
        for side, cols in (("reference", ref_cols), ("current", cur_cols)):
            if name not in cols:
                raise InvalidArgument(f"column {name!r} is not in the {side} data; expected one of: {', '.join(cols)}")
    missing_in_current = [c for c in ref_cols if c not in cur_cols]
    if columns is None and missing_in_current:
        raise InvalidArgument(
            f"the current data lacks column {missing_in_current[0]!r} of the reference; expected columns: {', '.join(ref_cols)}"
        )
    results = []
    for name in wanted:
        r, c = ref_cols[name], cur_cols[name]
        if r["kind"] != c["kind"]:
            raise InvalidArgument(
                f"column {name!r} is {r['kind']} ({r['type']}) in the reference but {c['kind']} ({c['type']}) now; "
                "expected the same kind"
            )
        if bool(r.get("count")) != bool(c.get("count")):
            # values on one side only: the column emptied (or filled) - the strongest drift there is
            results.append(ColumnDrift(name, r["kind"], "all_missing", 1.0, None, 0.0, True, {}))
            continue
        if r["kind"] == "datetime" or not r.get("count") or (r["kind"] == "numeric" and ("grid" not in r or "grid" not in c)):
            continue
        small = c["count"] <= small_sample
        if r["kind"] == "numeric":
            tests = numeric_tests(r, c)
            default = "ks" if small else "wasserstein"
        else:
            tests = categorical_tests(r, c)
            default = "chi2" if small else "jensenshannon"
        chosen = (method or {}).get(name, default)
        if chosen not in tests:
            raise InvalidArgument.for_field(f"method for {name!r}", chosen, f"one of {', '.join(tests)}")
        stat, p = float(tests[chosen]["statistic"] or 0.0), tests[chosen]["p_value"]
        threshold = limits[chosen]
        drifted = (p < threshold) if p is not None else (stat >= threshold)
        results.append(ColumnDrift(name, r["kind"], chosen, stat, p, threshold, bool(drifted), tests))
    results = _corrected(results, correction)
    return DriftResult(
        results, ref_label, cur_label, drift_share, ref["row_count"], cur["row_count"],
        time.perf_counter() - started, ref, cur, correction,
    )  # fmt: skip


def _corrected(results: list[ColumnDrift], correction: str) -> list[ColumnDrift]:
    """Re-judge the p-value verdicts for testing several columns at once."""
    tested = [i for i, c in enumerate(results) if c.p_value is not None]
    m = len(tested)
    if correction == "none" or m < 2:
        return results
    out = list(results)
    if correction == "bonferroni":
        for i in tested:
            c = results[i]
            out[i] = replace(c, threshold=c.threshold / m, drifted=bool(c.p_value is not None and c.p_value < c.threshold / m))
        return out
    order = sorted(tested, key=lambda i: results[i].p_value or 0.0)
    cutoff_rank = 0
    for rank, i in enumerate(order, start=1):
        c = results[i]
        if (c.p_value or 0.0) <= rank / m * c.threshold:
            cutoff_rank = rank
    for rank, i in enumerate(order, start=1):
        c = results[i]
        out[i] = replace(c, threshold=rank / m * c.threshold, drifted=rank <= cutoff_rank)
    return out
