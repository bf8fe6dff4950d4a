"""Data in, data out: pandas, polars, Arrow or a CSV/Parquet path become one Arrow table.

Arrow is keel's canonical in-memory form and Parquet its canonical on-disk form. Heavy
libraries load here, lazily, with a clear message when the ``data`` extra is missing.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.core.datasets import ColumnSchema
from keel.core.errors import InvalidArgument, MissingExtra

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = ("pandas", "polars", "arrow")


def require_arrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise MissingExtra("pyarrow", "data") from None
    return pyarrow


def _is_pandas(obj: Any) -> bool:
    return type(obj).__module__.startswith("pandas") and type(obj).__name__ == "DataFrame"


def _is_polars(obj: Any) -> bool:
    return type(obj).__module__.startswith("polars") and type(obj).__name__ == "DataFrame"


def _mixed_type_column(df: Any) -> tuple[str, list[str]] | None:
    """The first pandas column whose values Arrow cannot put in one type, with the types seen."""
    pa = require_arrow()
    for name in df.columns:
        try:
            pa.array(df[name], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            kinds = sorted({type(x).__name__ for x in df[name].dropna().head(10_000)})
            return str(name), kinds
    return None


def to_arrow(data: Any, *, what: str = "data") -> pa.Table:
    """An Arrow table from a pandas/polars frame, an Arrow table, or a ``.csv``/``.parquet`` path."""
    pa = require_arrow()
    if isinstance(data, pa.Table):
        table = data
    elif _is_pandas(data):
        try:
            table = pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            found = _mixed_type_column(data)
            if found is None:
                raise
            column, kinds = found
            raise InvalidArgument(f"column {column!r} mixes types ({', '.join(kinds)}); expected one type per column") from None
    elif _is_polars(data):
        table = data.to_arrow()
    elif isinstance(data, (str, os.PathLike)):
        table = read_path(Path(data))
    else:
        raise InvalidArgument.for_field(
            what, type(data).__name__, "a pandas or polars DataFrame, a pyarrow Table, or a .csv/.parquet path"
        )
    if table.num_columns == 0 or table.num_rows == 0:
        raise InvalidArgument(
            f"{what} is empty ({table.num_rows} rows x {table.num_columns} columns); expected at least one row and one column"
        )
    names = table.column_names
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InvalidArgument(f"{what} has the column {dup!r} twice; expected unique column names")
    return table.combine_chunks() if table.num_rows else table


def read_path(path: Path) -> pa.Table:
    pa = require_arrow()
    if not path.exists():
        raise InvalidArgument.for_field("path", str(path), "an existing .csv or .parquet file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if suffix in (".csv", ".tsv", ".txt"):
            import pyarrow.csv as pacsv

            delimiter = "\t" if suffix == ".tsv" else ","
            return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter))
    except pa.ArrowInvalid as exc:
        raise InvalidArgument(f"cannot read {path}: {exc}") from None
    raise InvalidArgument.for_field("path", str(path), "a file ending in .csv, .tsv or .parquet")


def from_arrow(table: pa.Table, as_: str = "pandas") -> Any:
    if as_ == "arrow":
        return table
    if as_ == "pandas":
        return table.to_pandas()
    if as_ == "polars":
        try:
            import polars as pl
        except ImportError:
            raise MissingExtra("polars", "polars") from None
        return pl.from_arrow(table)
    raise InvalidArgument.for_field("as_", as_, f"one of {', '.join(FORMATS)}")


def to_pandas(data: Any) -> Any:
    return data if _is_pandas(data) else to_arrow(data).to_pandas()


def content_hash(table: pa.Table) -> str:
    """sha256 of the data itself (Arrow IPC stream without metadata): the same data hashes the same,
    whichever library or file it came from."""
    pa = require_arrow()
    sink = io.BytesIO()
    plain = table.replace_schema_metadata(None)
    with pa.ipc.new_stream(sink, plain.schema) as writer:
        writer.write_table(plain)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def parquet_bytes(table: pa.Table) -> bytes:
    """The canonical on-disk form: Parquet, zstd-compressed."""
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def read_parquet_bytes(data: bytes) -> pa.Table:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data))


def schema_of(table: pa.Table) -> tuple[ColumnSchema, ...]:
    return tuple(ColumnSchema(f.name, str(f.type), f.nullable) for f in table.schema)
