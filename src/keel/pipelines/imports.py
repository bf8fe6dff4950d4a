"""Where a pipeline reference (``module:function``) would be imported from, found without running it.

``resume`` imports the module a run's ``keel.pipeline`` tag names, and anyone who can write
to the store can write that tag. Importing runs a module's top-level code, so ``resume``
imports only the project's own code. The rule: the module must be found on the normal
import path (``sys.path``) as a file inside the project folder (by default the current
directory, symlinks resolved), not inside an environment folder under it
(``site-packages``, ``dist-packages``) nor inside the Python installation or virtual
environment that runs keel (``sys.prefix``, ``sys.base_prefix``: a project folder that holds
its ``.venv``, or Python itself, must not make the standard library count as project code),
and so must every package ``__init__`` on the way
(they run too). A module this process has already imported is accepted as it is:
importing it again runs nothing. Nothing is executed while looking.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import sys
from pathlib import Path

from keel.core.errors import InvalidArgument

_MODULE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_ENVIRONMENT_DIRS = frozenset({"site-packages", "dist-packages"})


def module_origins(module: str) -> list[str | None]:
    """The files that importing ``module`` would run (each package ``__init__``, then the module), found
    without executing any of them; ``None`` for a namespace package. Raises ``InvalidArgument`` when it
    cannot be found."""
    if not _MODULE_RE.fullmatch(module):
        raise InvalidArgument.for_field("pipeline module", module, "a dotted Python module name")
    parts = module.split(".")
    origins: list[str | None] = []
    locations: list[str] | None = None
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        loaded = sys.modules.get(name)
        if loaded is not None and getattr(loaded, "__spec__", None) is not None:
            spec = loaded.__spec__
        else:
            try:  # a top-level name asks the finders only; a submodule is looked up in its package's folders
                spec = importlib.util.find_spec(name) if i == 0 else importlib.machinery.PathFinder.find_spec(name, locations)
            except (ImportError, ValueError) as exc:
                raise InvalidArgument(f"cannot import pipeline module {module!r}: {exc}") from None
        if spec is None:
            raise InvalidArgument(f"cannot import pipeline module {module!r}: no module named {name!r}")
        origins.append(spec.origin if spec.has_location else None)
        locations = list(spec.submodule_search_locations or [])
        if i < len(parts) - 1 and not locations:
            raise InvalidArgument(f"cannot import pipeline module {module!r}: {name!r} is not a package")
    return origins


def _in_python_install(path: Path) -> bool:
    """Whether ``path`` is part of the Python that runs keel (its installation or virtual environment)."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    return any(path.is_relative_to(prefix) for prefix in prefixes)


def check_project_module(module: str, project: Path) -> str:
    """The file ``module`` would be imported from, if that is the project's own code; else ``InvalidArgument``.

    See the module docstring for the rule.
    """
    if module in sys.modules:
        return str(getattr(sys.modules[module], "__file__", None) or module)
    root = project.resolve()
    origins = module_origins(module)
    for origin in origins:
        if origin is None:
            continue  # a namespace package has no code of its own
        path = Path(origin).resolve()
        inside = path.is_relative_to(root) and not (_ENVIRONMENT_DIRS & set(path.relative_to(root).parts[:-1]))
        if not inside or _in_python_install(path):
            raise InvalidArgument(
                f"refusing to import pipeline module {module!r}: it resolves to {path}, which is not a module of "
                f"the project folder {root}; resume imports only the project's own code (run it from the project "
                "folder, or import the module first if you trust it)"
            )
    final = origins[-1]
    return str(Path(final).resolve()) if final else module
