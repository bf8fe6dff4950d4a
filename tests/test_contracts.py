"""Contracts on the shape of the package that import-linter cannot state: keel.core imports the
standard library only (every third-party name, not a list), and the testing-helpers contract in
pyproject covers every package of keel."""

from __future__ import annotations

import ast
import fnmatch
import pkgutil
import sys
import tomllib
from pathlib import Path

import keel
import keel.core

ROOT = Path(__file__).resolve().parents[1]


def _imports(source: str, module: str) -> list[tuple[int, str]]:
    """Every module ``source`` imports (lazy ones inside functions too), relative imports resolved."""
    found = []
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names = [node.module] if node.module else [alias.name for alias in node.names]
                found += [(node.lineno, f"{base}.{name}") for name in names]
            else:
                found.append((node.lineno, str(node.module)))
    return found


def _outside_stdlib_and_core(source: str, module: str) -> list[str]:
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    return [
        f"{module}:{line} imports {name}"
        for line, name in _imports(source, module)
        if name.split(".")[0] not in allowed and name != "keel.core" and not name.startswith("keel.core.")
    ]


def test_the_check_sees_every_kind_of_import() -> None:
    source = (
        "from __future__ import annotations\nimport os, json\nfrom collections.abc import Mapping\n"
        "from keel.core.errors import NotFound\nfrom . import validation\n"
        "import numpy as np\nfrom keel.store import open_store\nfrom .. import tracking\n"
        "def f():\n    import pandas\n    from sqlalchemy.orm import Session\n"
    )
    assert _outside_stdlib_and_core(source, "keel.core.example") == [
        "keel.core.example:6 imports numpy",
        "keel.core.example:7 imports keel.store",
        "keel.core.example:8 imports keel.tracking",
        "keel.core.example:10 imports pandas",
        "keel.core.example:11 imports sqlalchemy.orm",
    ]


def test_core_imports_only_the_standard_library_and_itself() -> None:
    modules = [info.name for info in pkgutil.walk_packages(keel.core.__path__, "keel.core.")]
    assert len(modules) >= 8
    offenders = []
    for name in ["keel.core", *modules]:
        path = Path(keel.core.__path__[0], *name.split(".")[2:])
        file = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        offenders += _outside_stdlib_and_core(
            file.read_text(encoding="utf-8"), name + (".__init__" if file.name == "__init__.py" else "")
        )
    assert offenders == []


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _matches(expression: str, module: str) -> bool:
    """import-linter's module expressions: ``*`` is one segment, ``**`` any number; a package covers its children."""
    pattern = expression.replace("**", "\0").replace("*", "[!.]*").replace("\0", "*")
    return fnmatch.fnmatchcase(module, pattern) or module.startswith(expression + ".")


def test_the_testing_contract_covers_every_package_of_keel() -> None:
    forbidding = [c for c in _contracts() if c["type"] == "forbidden" and "keel.testing" in c["forbidden_modules"]]  # type: ignore[operator]
    assert forbidding, "no import-linter contract forbids keel.testing"
    packaged = [c for c in forbidding if c.get("as_packages", True)]
    covered = [str(e) for c in packaged for e in c["source_modules"]]  # type: ignore[attr-defined]
    children = {info.name for info in pkgutil.iter_modules(keel.__path__, "keel.")} - {"keel.testing"}
    # a package that a later issue adds is covered without editing the contract
    children |= {"keel.serve", "keel.monitor", "keel.govern", "keel.ui"}
    assert {m for m in children if not any(_matches(e, m) for e in covered)} == set()
    # and keel's own __init__, which the package-wide expressions cannot name without covering keel.testing
    assert any(c["source_modules"] == ["keel"] and c.get("as_packages") is False for c in forbidding)
