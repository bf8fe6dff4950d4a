"""Metric values stored in blocks: one row per (run, key) per flush, the values packed as arrays.

A flush of 100,000 values of one metric is one row instead of 100,000 index entries, so
the store keeps up with the in-process buffer. NaN and infinities are IEEE doubles in
the block, stored as they are. Arrays are little-endian on disk whatever the machine.
"""

from __future__ import annotations

import operator
import sys
from array import array
from collections.abc import Sequence
from typing import Any

INT64 = 2**63
_SWAP = sys.byteorder != "little"


class NotFastPath(Exception):
    """A batch that is not made of well-typed tuples: validate it row by row first."""


def pack(values: Any, code: str) -> bytes:
    arr = array(code, values)
    if _SWAP:
        arr.byteswap()
    return arr.tobytes()


def unpack(data: bytes, code: str) -> array:  # type: ignore[type-arg]
    arr = array(code)
    arr.frombytes(data)
    if _SWAP:
        arr.byteswap()
    return arr


def group(rows: Sequence[Any]) -> dict[tuple[str, str], list[Any]]:
    """Rows by (run_id, key), with the fast type checks. Raises ``NotFastPath`` for anything unusual."""
    groups: dict[tuple[str, str], list[Any]] = {}
    get = groups.get
    for row in rows:
        try:
            run_id, key, value, step, ts = row
        except (TypeError, ValueError):
            raise NotFastPath from None
        if value.__class__ is not float or step.__class__ is not int or ts.__class__ is not int or not 0 <= ts < INT64:
            raise NotFastPath
        if not -INT64 <= step < INT64 or run_id.__class__ is not str or key.__class__ is not str:
            raise NotFastPath
        g = get((run_id, key))
        if g is None:
            groups[(run_id, key)] = [row]
        else:
            g.append(row)
    return groups


def latest_of(group_rows: list[Any]) -> Any:
    """The row with the highest step, then the latest timestamp (ties: the last logged)."""
    best = group_rows[0]
    for row in group_rows:
        if row[3] > best[3] or (row[3] == best[3] and row[4] >= best[4]):
            best = row
    return best


def blocks(groups: dict[tuple[str, str], list[Any]], pks: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(block rows, latest rows) for a grouped batch."""
    out = []
    latest = []
    for (run_id, key), g in groups.items():
        out.append((pks[run_id], key, len(g), pack([r[2] for r in g], "d"), pack([r[3] for r in g], "q"),
                    pack([r[4] for r in g], "q")))  # fmt: skip
        top = latest_of(g)
        value = top[2]
        latest.append((run_id, key, None if value != value else value, top[3], top[4]))
    return out, latest


def columns(block_rows: Sequence[Any]) -> tuple[array, array]:  # type: ignore[type-arg]
    """(steps, values) of every value in some blocks as two arrays, ordered by step then timestamp: what a chart
    reads, without a tuple per value. Blocks are almost always in order already; only then is nothing sorted."""
    steps, values, stamps = array("q"), array("d"), array("q")
    for _count, vals, st, ts in block_rows:
        values.frombytes(vals)
        steps.frombytes(st)
        stamps.frombytes(ts)
        assert len(values) == len(steps) == len(stamps)
    if _SWAP:
        for arr in (steps, values, stamps):
            arr.byteswap()
    s = steps.tolist()
    if all(map(operator.lt, s, s[1:])):  # the usual case, each step once in order: checked at C speed
        return steps, values
    t = stamps.tolist()
    order = sorted(range(len(s)), key=lambda i: (s[i], t[i]))  # stable: ties keep the order they were logged in
    return array("q", (s[i] for i in order)), array("d", (values[i] for i in order))


def expand(block_rows: Sequence[Any]) -> list[tuple[float, int, int]]:
    """(value, step, timestamp) of every value in some blocks, ordered by step then timestamp."""
    values: list[tuple[float, int, int]] = []
    for count, vals, steps, stamps in block_rows:
        v, s, t = unpack(vals, "d"), unpack(steps, "q"), unpack(stamps, "q")
        assert len(v) == len(s) == len(t) == count
        values.extend(zip(v, s, t, strict=True))
    values.sort(key=lambda x: (x[1], x[2]))
    return values
