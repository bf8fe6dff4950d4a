"""The Jinja2 environment of the UI: autoescaped templates from the package, and the filters every page uses."""

from __future__ import annotations

import functools
import math
from typing import Any
from urllib.parse import urlencode

from keel.core.clock import local_time
from keel.core.numbers import plain, short


@functools.cache
def environment() -> Any:
    """The templates of ``keel/ui/templates`` with HTML autoescaping on for every file, whatever its name."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("keel.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt variable is an error in the tests, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=num, full=full, when=when, duration=duration, id12=id12)
    env.globals.update(query=query)
    return env


def render(template: str, **context: Any) -> str:
    """``template`` rendered with ``context``: every value is escaped unless a template says otherwise."""
    return str(environment().get_template(template).render(**context))


def num(x: Any, digits: int = 4) -> str:
    """A table cell: four significant digits (``keel.core.numbers.short``), ``-`` for missing."""
    if x is None:
        return "-"
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    return short(x, digits) if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def full(x: Any) -> str:
    """Every digit that matters, without binary noise (``keel.core.numbers.plain``): for titles and detail pages."""
    return plain(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def when(ms: int | None) -> str:
    """Milliseconds since the epoch as local ``YYYY-MM-DD HH:MM:SS``, as the CLI prints them."""
    return local_time(ms)


def duration(ms: int | None) -> str:
    """A run's length as people say it: ``850 ms``, ``12.3 s``, ``4.5 min``, ``2.1 h``."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def id12(run_id: str) -> str:
    """The 12-character prefix keel prints everywhere (and accepts everywhere)."""
    return run_id[:12]


def query(params: dict[str, Any], **changes: Any) -> str:
    """``params`` with ``changes`` applied, as a query string (``None`` drops a key; a list repeats it)."""
    merged = {**params, **changes}
    pairs: list[tuple[str, str]] = []
    for key, value in merged.items():
        if value is None or value == "":
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            pairs.append((key, str(item)))
    return "?" + urlencode(pairs) if pairs else "?"
