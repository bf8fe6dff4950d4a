"""Reusable, versioned cleaning and merging steps.

A transform is a function ``fn(frame, ..., **params) -> frame`` on pandas frames,
registered with ``@transform``; its version is the hash of its source code. ``apply``
runs one on dataset versions and logs the result as a new version whose parents and
transform (name, code hash, params) are recorded: lineage without bookkeeping.

>>> clean = keel.data.apply("deduplicate", "orders@3", name="orders-clean", subset=["order_id"])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from keel.context import Context
from keel.core.dataset_records import plain_json
from keel.core.datasets import DatasetVersion
from keel.core.errors import InvalidArgument

_REGISTRY: dict[str, Transform] = {}


@dataclass(frozen=True)
class Transform:
    name: str
    fn: Callable[..., Any]
    code_hash: str
    # extra entries for the version's transform record, from the params (hash_pii: where its salt came from)
    describe: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def __call__(self, *frames: Any, **params: Any) -> Any:
        return self.fn(*frames, **params)


def _code_hash(fn: Callable[..., Any]) -> str:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = getattr(fn, "__qualname__", repr(fn))
    return hashlib.sha256(source.encode()).hexdigest()


def transform(
    name: str | None = None, *, describe: Callable[[dict[str, Any]], dict[str, Any]] | None = None
) -> Callable[[Callable[..., Any]], Transform]:
    """Register ``fn`` as a named transform (default name: the function's). ``describe(params)``, if given,
    returns extra JSON entries for the transform record of each version ``apply`` logs."""

    def decorate(fn: Callable[..., Any]) -> Transform:
        t = Transform(name or fn.__name__, fn, _code_hash(fn), describe)
        _REGISTRY[t.name] = t
        return t

    return decorate


def get_transform(name: str | Transform) -> Transform:
    """The transform registered under ``name`` (a ``Transform`` is returned as it is); ``InvalidArgument``
    listing the registered names otherwise."""
    if isinstance(name, Transform):
        return name
    found = _REGISTRY.get(name)
    if found is None:
        raise InvalidArgument.for_field("transform", name, f"one of {', '.join(sorted(_REGISTRY))}")
    return found


def registered() -> list[str]:
    """The names of the registered transforms (built-in and ``@keel.data.transform``), sorted."""
    return sorted(_REGISTRY)


def _need_columns(df: Any, columns: Sequence[str], step: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InvalidArgument(
            f"{step}: column {missing[0]!r} is not in the data; expected one of: {', '.join(map(str, df.columns))}"
        )


@transform("deduplicate")
def deduplicate(df: Any, subset: list[str] | None = None, keep: str = "first") -> Any:
    """Drop duplicate rows (judged on ``subset`` columns, or all)."""
    if subset:
        _need_columns(df, subset, "deduplicate")
    if keep not in ("first", "last"):
        raise InvalidArgument.for_field("deduplicate keep", keep, "'first' or 'last'")
    return df.drop_duplicates(subset=subset, keep=keep).reset_index(drop=True)


@transform("impute")
def impute(df: Any, strategy: str = "median", columns: list[str] | None = None, value: Any = None) -> Any:
    """Fill missing values with the column's median, mean, most frequent value, or a constant."""
    columns = columns or [c for c in df.columns if df[c].isna().any()]
    _need_columns(df, columns, "impute")
    out = df.copy()
    for c in columns:
        if strategy in ("median", "mean"):
            if not _is_numeric(out[c]):
                raise InvalidArgument(f"impute: column {c!r} is {out[c].dtype}; strategy {strategy!r} needs numbers")
            fill = getattr(out[c], strategy)()
        elif strategy == "mode":
            modes = out[c].mode()
            fill = modes.iloc[0] if len(modes) else None
        elif strategy == "constant":
            if value is None:
                raise InvalidArgument.for_field("impute value", value, "a value for strategy 'constant'")
            fill = value
        else:
            raise InvalidArgument.for_field("impute strategy", strategy, "'median', 'mean', 'mode' or 'constant'")
        out[c] = out[c].fillna(fill)
    return out


def _is_numeric(series: Any) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series)) and not pd.api.types.is_bool_dtype(series)


@transform("clip")
def clip(
    df: Any,
    columns: list[str],
    lower: float | None = None,
    upper: float | None = None,
    quantiles: list[float] | None = None,
) -> Any:
    """Clip values to [lower, upper], or to the given [low, high] quantiles of each column."""
    _need_columns(df, columns, "clip")
    out = df.copy()
    for c in columns:
        if not _is_numeric(out[c]):
            raise InvalidArgument(f"clip: column {c!r} is {out[c].dtype}; expected a numeric column")
        lo, hi = lower, upper
        if quantiles is not None:
            if len(quantiles) != 2 or not 0 <= quantiles[0] < quantiles[1] <= 1:
                raise InvalidArgument.for_field("clip quantiles", quantiles, "[low, high] with 0 <= low < high <= 1")
            lo, hi = out[c].quantile(quantiles[0]), out[c].quantile(quantiles[1])
        out[c] = out[c].clip(lo, hi)
    return out


@transform("remove_outliers")
def remove_outliers(df: Any, columns: list[str], method: str = "iqr", threshold: float = 1.5) -> Any:
    """Drop rows with a value beyond ``threshold`` x IQR (or standard deviations, ``method='zscore'``)."""
    _need_columns(df, columns, "remove_outliers")
    keep = None
    for c in columns:
        if not _is_numeric(df[c]):
            raise InvalidArgument(f"remove_outliers: column {c!r} is {df[c].dtype}; expected a numeric column")
        s = df[c]
        if method == "iqr":
            q1, q3 = s.quantile(0.25), s.quantile(0.75)
            lo, hi = q1 - threshold * (q3 - q1), q3 + threshold * (q3 - q1)
        elif method == "zscore":
            lo, hi = s.mean() - threshold * s.std(), s.mean() + threshold * s.std()
        else:
            raise InvalidArgument.for_field("remove_outliers method", method, "'iqr' or 'zscore'")
        ok = s.isna() | s.between(lo, hi)
        keep = ok if keep is None else keep & ok
    return df[keep].reset_index(drop=True)


@transform("cast")
def cast(df: Any, types: dict[str, str]) -> Any:
    """Cast columns to pandas dtypes, e.g. ``{"age": "int64", "city": "category"}``."""
    _need_columns(df, list(types), "cast")
    try:
        return df.astype(types)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"cast: {exc}") from None


@transform("rename")
def rename(df: Any, columns: dict[str, str]) -> Any:
    _need_columns(df, list(columns), "rename")
    return df.rename(columns=columns)


_CARDINALITY = {
    "one_to_one": (True, True),
    "one_to_many": (True, False),
    "many_to_one": (False, True),
    "many_to_many": (False, False),
}


@transform("merge")
def merge(
    left: Any, right: Any, on: list[str] | str, how: str = "inner", validate: str = "many_to_one",
    require_all_keys: bool = False,
) -> Any:  # fmt: skip
    """Join two frames on key columns, checking keys first: duplicates where ``validate`` says
    a side is unique, and (``require_all_keys``) left keys with no match, fail with examples."""
    keys = [on] if isinstance(on, str) else list(on)
    _need_columns(left, keys, "merge (left)")
    _need_columns(right, keys, "merge (right)")
    if validate not in _CARDINALITY:
        raise InvalidArgument.for_field("merge validate", validate, f"one of {', '.join(_CARDINALITY)}")
    if how not in ("inner", "left", "right", "outer"):
        raise InvalidArgument.for_field("merge how", how, "'inner', 'left', 'right' or 'outer'")
    left_unique, right_unique = _CARDINALITY[validate]
    for side, frame, unique in (("left", left, left_unique), ("right", right, right_unique)):
        if unique:
            dups = frame[frame.duplicated(subset=keys, keep=False)][keys].drop_duplicates().head(3)
            if len(dups):
                examples = dups.to_dict("records")
                raise InvalidArgument(
                    f"merge: the {side} side has duplicate keys {keys} (e.g. {examples}); "
                    f"validate={validate!r} expects each key once there"
                )
    if require_all_keys:
        matched = left[keys].merge(right[keys].drop_duplicates(), on=keys, how="left", indicator=True)
        missing = matched[matched["_merge"] == "left_only"][keys].drop_duplicates().head(3)
        if len(missing):
            raise InvalidArgument(
                f"merge: {int((matched['_merge'] == 'left_only').sum())} left rows have keys {keys} missing on the "
                f"right (e.g. {missing.to_dict('records')}); require_all_keys expects every key to match"
            )
    return left.merge(right, on=keys, how=how)


@transform("mask_pii")
def mask_pii(
    df: Any, columns: list[str] | None = None, kinds: list[str] | None = None, free_text: list[str] | None = None
) -> Any:
    """Mask personal data inside text columns (``j***@e******.com``, ``**** **** **** 4242``); ``columns``
    default to every text column, ``kinds`` to every kind but names, searched for in ``free_text`` columns only."""
    from keel.data.pii import mask_frame

    return mask_frame(df, columns=columns, kinds=kinds, free_text=free_text)


def _salt_record(params: dict[str, Any]) -> dict[str, Any]:
    from keel.data.pii import load_salt

    return {"salt": load_salt(params.get("salt_env"), params.get("salt_file")).record()}


@transform("hash_pii", describe=_salt_record)
def hash_pii(
    df: Any,
    columns: list[str] | None = None,
    kinds: list[str] | None = None,
    free_text: list[str] | None = None,
    salt_env: str | None = None,
    salt_file: str | None = None,
) -> Any:
    """Replace personal data in text columns by its HMAC-SHA256 under a secret salt, read from the environment
    variable ``salt_env`` (default ``KEEL_PII_SALT``) or the file ``salt_file``: the same value and salt give
    the same hash, so hashed columns still join. The salt is never stored: the record keeps its source and
    a fingerprint (``{"salt": {"source": "env:KEEL_PII_SALT", "fingerprint": "1a2b3c4d"}}``)."""
    from keel.data.pii import hash_frame, load_salt

    salt = load_salt(salt_env, salt_file)
    return hash_frame(df, salt, columns=columns, kinds=kinds, free_text=free_text)


def apply(
    step: str | Transform,
    *inputs: str | DatasetVersion,
    name: str,
    run: Any = None,
    ctx: Context | None = None,
    **params: Any,
) -> DatasetVersion:
    """Run ``step`` on dataset versions and log the result as a new version of ``name``, with the
    inputs as parents and the transform (name, code hash, params) recorded. ``ctx``: the stores
    (default: the current context)."""
    from keel.context import resolve as resolve_ctx
    from keel.data.dataset_versions import get, log, resolve

    t = get_transform(step)
    if not inputs:
        raise InvalidArgument.for_field("inputs", [], "at least one dataset version")
    # checked before any data is read: the params are recorded with the new version, as JSON
    recorded = plain_json(params, f"transform {t.name!r} params")
    described = plain_json(t.describe(params), f"transform {t.name!r} record") if t.describe else {}
    ctx = resolve_ctx(ctx)
    versions = [resolve(i, ctx) for i in inputs]
    frames = [get(v, run=run, ctx=ctx) for v in versions]
    result = t(*frames, **params)
    record = {"name": t.name, "code_hash": t.code_hash, "params": recorded, "inputs": [v.ref for v in versions], **described}
    return log(result, name, parents=versions, transform=record, run=run, source=f"transform:{t.name}", ctx=ctx)
