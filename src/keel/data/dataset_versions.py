"""Versioned datasets: ``log`` stores data as canonical Parquet in the artifact store and records
a ``DatasetVersion``; ``get`` loads it back, verified against its hash. Runs record what they
read and wrote.

>>> v = keel.data.log(df, "orders", source="s3://raw/orders.csv")    # doctest: +SKIP
>>> df = keel.data.get("orders")                                     # latest, as pandas
>>> df = keel.data.get("orders@2", as_="polars")                     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.dataset_records import plain_json
from keel.core.datasets import DatasetVersion, ValidationRecord, parse_ref
from keel.core.errors import InvalidArgument, KeelError
from keel.core.errors import ValidationFailed as ValidationFailed  # defined in the one error tree
from keel.data import frames
from keel.data.profiling import compute_profile
from keel.data.suite import Suite
from keel.data.validation import ValidationResult, validate

ON_FAIL = ("refuse", "quarantine")


def resolve(ref: str | DatasetVersion, ctx: Context | None = None) -> DatasetVersion:
    """The dataset version ``ref`` names: ``"orders"`` (the latest) or ``"orders@3"``; a ``DatasetVersion`` is
    returned as it is. ``NotFound`` for an unknown dataset or version."""
    if isinstance(ref, DatasetVersion):
        return ref
    name, version = parse_ref(ref)
    return _ctx(ctx).store.datasets.get_version(name, version)


def _run_id(run: Any, ctx: Context) -> str | None:
    if run is False:
        return None
    if run is None:
        return ctx.run_id  # the run active in this thread (or task)
    return run if isinstance(run, str) else str(run.id)


def _store_table(
    ctx: Context,
    table: Any,
    name: str,
    *,
    source: str,
    parents: Sequence[DatasetVersion],
    transform: dict[str, Any] | None,
    role: str = "data",
    on_column: Callable[[str], None] | None = None,
) -> DatasetVersion:
    digest = frames.content_hash(table)
    datasets = ctx.store.datasets
    try:
        for existing in datasets.list_versions(name):
            if existing.content_hash == digest:
                return existing  # identical content: nothing new is stored
    except KeelError as exc:
        if exc.code != "not_found":
            raise
    profile = compute_profile(table, on_column=on_column)
    blob = ctx.artifacts.put_bytes(frames.parquet_bytes(table))
    version, _ = datasets.log_version(
        name,
        content_hash=digest,
        artifact_sha256=blob.sha256,
        size=blob.size,
        row_count=table.num_rows,
        schema=frames.schema_of(table),
        source=source,
        role=role,
        parent_ids=[p.id for p in parents],
        transform=transform,
        profile=profile,
    )
    return version


def log(
    data: Any,
    name: str,
    *,
    source: str | None = None,
    parents: Sequence[str | DatasetVersion] = (),
    suite: Suite | None = None,
    on_fail: str = "refuse",
    run: Any = None,
    transform: dict[str, Any] | None = None,
    ctx: Context | None = None,
    on_column: Callable[[str], None] | None = None,
) -> DatasetVersion:
    """Store ``data`` (pandas, polars, Arrow, or a CSV/Parquet path) as a new version of ``name``.

    Identical content returns the existing version and stores nothing. With a ``suite``,
    data failing an error-severity check is refused (``on_fail="refuse"``: nothing is stored,
    ``ValidationFailed`` names the checks), or its failing rows go to ``<name>.quarantine``
    and the rest is stored (``on_fail="quarantine"``). The version is recorded as an output
    of ``run`` (default: the active run; ``run=False`` for none). ``ctx``: the stores to use (default: the
    current context, ``keel.context.current()``).
    """
    if on_fail not in ON_FAIL:
        raise InvalidArgument.for_field("on_fail", on_fail, "'refuse' or 'quarantine'")
    if transform is not None:
        # named here, before any work, rather than as an encoder error from the store
        if not isinstance(transform, dict):
            raise InvalidArgument.for_field("transform", transform, "a dict (name, code hash, params)")
        transform = plain_json(transform, "transform")
    ctx = _ctx(ctx)
    table = frames.to_arrow(data)
    if source is None:
        source = str(data) if isinstance(data, (str,)) or hasattr(data, "__fspath__") else type(data).__module__.split(".")[0]
    parent_versions = [resolve(p, ctx) for p in parents]
    result: ValidationResult | None = None
    quarantined: Any = None
    if suite is not None:
        result = validate(table, suite)
        if not result.passed:
            if on_fail == "refuse" or not result.splittable:
                raise ValidationFailed(result)
            import pyarrow as pa

            mask = pa.array(result.failing_rows)
            quarantined = table.filter(mask)
            table = table.filter(pa.compute.invert(mask))
            if table.num_rows == 0:
                raise ValidationFailed(result, "every row failed, so nothing is left to store")
    version = _store_table(ctx, table, name, source=source, parents=parent_versions, transform=transform, on_column=on_column)
    if result is not None:
        save_validation(version, result, ctx=ctx)
    if quarantined is not None:
        _store_table(
            ctx, quarantined, f"{name}.quarantine", source=source, parents=[version], role="quarantine",
            transform={"name": "quarantine", "suite": result.suite if result else "", "failed_checks": [
                f"{r.kind}:{r.column}" for r in (result.errors if result else [])
            ]},
        )  # fmt: skip
    run_id = _run_id(run, ctx)
    if run_id is not None:
        ctx.store.datasets.link_run(run_id, version.id, "output")
    return version


def get(ref: str | DatasetVersion, *, as_: str = "pandas", run: Any = None, ctx: Context | None = None) -> Any:
    """Load a version (``"name"`` for the latest, ``"name@3"``) as pandas, polars or Arrow.

    The Parquet bytes are verified against their hash before they are read. The version is
    recorded as an input of ``run`` (default: the active run).
    """
    if as_ not in frames.FORMATS:
        raise InvalidArgument.for_field("as_", as_, f"one of {', '.join(frames.FORMATS)}")
    ctx = _ctx(ctx)
    version = resolve(ref, ctx)
    table = frames.read_parquet_bytes(ctx.artifacts.get_bytes(version.artifact_sha256))
    run_id = _run_id(run, ctx)
    if run_id is not None:
        ctx.store.datasets.link_run(run_id, version.id, "input")
    return frames.from_arrow(table, as_)


def profile(ref: str | DatasetVersion, ctx: Context | None = None) -> dict[str, Any]:
    """The stored profile of a version (computed once, when it was logged)."""
    ctx = _ctx(ctx)
    version = resolve(ref, ctx)
    stored = ctx.store.datasets.get_profile(version.id)
    if stored is None:
        raise InvalidArgument(f"dataset {version.ref} has no stored profile")
    return stored


def save_validation(ref: str | DatasetVersion, result: ValidationResult, ctx: Context | None = None) -> ValidationRecord:
    """Attach a validation result to a version."""
    ctx = _ctx(ctx)
    version = resolve(ref, ctx)
    return ctx.store.datasets.save_validation(
        version.id, result.suite, result.passed, len(result.errors), len(result.warnings), result.to_dict()
    )


def versions(name: str, ctx: Context | None = None) -> list[DatasetVersion]:
    """Every version of the dataset ``name``, oldest first; ``NotFound`` for an unknown dataset."""
    return _ctx(ctx).store.datasets.list_versions(name)


def datasets(ctx: Context | None = None) -> list[DatasetVersion]:
    """The latest version of every dataset."""
    return _ctx(ctx).store.datasets.list_datasets()


def lineage(ref: str | DatasetVersion, ctx: Context | None = None) -> dict[str, Any]:
    """Where a version came from and where it went: parents, children, runs that read or wrote it."""
    ctx = _ctx(ctx)
    version = resolve(ref, ctx)
    store = ctx.store.datasets
    return {
        "version": version,
        "parents": [resolve(p, ctx) for p in version.parents],
        "children": store.children(version.id),
        "runs": store.runs_of_version(version.id),
    }
