"""Numbers as people write them, for the CLI and the HTML reports alike.

``0.1 + 0.2`` prints ``0.3``, not ``0.30000000000000004``; a table cell shows four significant
digits without switching a five-digit count to ``1.235e+04``.
"""

from __future__ import annotations

import math


def plain(x: float | int) -> str:
    """``x`` in full but without binary noise: ``30.563000000000002`` -> ``30.563``, ``3.0`` -> ``3``."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        return str(x)
    trimmed = float(f"{x:.15g}")  # 15 significant digits always survive a round trip through a double
    if trimmed.is_integer() and abs(trimmed) < 1e15:
        return str(int(trimmed))
    return repr(trimmed)


def short(x: float | int | None, digits: int = 4) -> str:
    """``x`` to ``digits`` significant digits for a table cell; whole numbers too large for them print whole."""
    if x is None:
        return "-"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x))) + 1  # digits before the decimal point
    if digits <= magnitude < 16:
        return str(round(x))
    if isinstance(x, int):
        return str(x)
    text = f"{x:.{digits}g}"
    if "e" not in text and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
