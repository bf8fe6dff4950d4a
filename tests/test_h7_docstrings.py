"""Every public name has a docstring: the functions, classes and modules in ``__all__`` of ``keel`` and of each
public subpackage, and the public methods and properties of those classes (issue 13)."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from types import ModuleType

import keel

MIN_LENGTH = 20  # shorter than this says nothing a name does not already say
SRC = Path(keel.__file__).parent


def public_modules() -> list[str]:
    """``keel`` and every subpackage whose ``__init__.py`` declares ``__all__``."""
    found = ["keel"]
    for init in sorted(SRC.glob("*/__init__.py")):
        if "__all__" in init.read_text(encoding="utf-8"):
            found.append(f"keel.{init.parent.name}")
    return found


def own_doc(obj: object) -> str | None:
    """The docstring an object states itself: not one a class inherits, nor one a dataclass or namedtuple writes."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        if isinstance(doc, str) and doc.startswith(f"{obj.__name__}("):  # dataclass / namedtuple signature
            return None
        if doc in ("An enumeration.",):
            return None
    else:
        doc = getattr(obj, "__doc__", None)
    return doc if isinstance(doc, str) else None


def is_missing(doc: str | None) -> bool:
    return doc is None or len(inspect.cleandoc(doc)) < MIN_LENGTH


def member_doc(cls: type, name: str, member: object) -> str | None:
    """A method's or property's docstring; an override may keep the one its keel base class documents."""
    doc = own_doc(member)
    if not is_missing(doc):
        return doc
    for base in cls.__mro__[1:]:
        if not base.__module__.startswith("keel") or name not in base.__dict__:
            continue
        inherited = own_doc(unwrap(base.__dict__[name]))
        if not is_missing(inherited):
            return inherited
    return doc


def unwrap(member: object) -> object:
    if isinstance(member, (staticmethod, classmethod)):
        return member.__func__
    return member


def is_documentable_member(member: object) -> bool:
    member = unwrap(member)
    return inspect.isfunction(member) or isinstance(member, property) or type(member).__name__ == "cached_property"


def missing_in_class(qualified: str, cls: type) -> list[str]:
    missing = []
    for name, member in vars(cls).items():
        if name.startswith("_") or not is_documentable_member(member):
            continue
        if is_missing(member_doc(cls, name, unwrap(member))):
            missing.append(f"{qualified}.{name}")
    return missing


def missing_in_module(module_name: str, seen: set[int]) -> list[str]:
    """What lacks a docstring in one module's ``__all__``; an object re-exported elsewhere is reported once."""
    module = importlib.import_module(module_name)
    missing = [module_name] if is_missing(own_doc(module)) else []
    for name in module.__all__:
        obj = getattr(module, name)
        qualified = f"{module_name}.{name}"
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, ModuleType) or inspect.isroutine(obj):
            if is_missing(own_doc(obj)):
                missing.append(qualified)
        elif inspect.isclass(obj):
            if is_missing(own_doc(obj)):
                missing.append(qualified)
            if obj.__module__.startswith("keel"):  # a third party's methods are its own business
                missing.extend(missing_in_class(qualified, obj))
        # anything else is a constant or a type alias: exempt
    return missing


def test_the_public_subpackages_are_found() -> None:
    modules = public_modules()
    expected = {"keel.data", "keel.tune", "keel.registry", "keel.evaluation", "keel.pipelines", "keel.govern", "keel.serve"}
    assert expected | {"keel", "keel.monitor"} <= set(modules)


def test_every_public_name_has_a_docstring() -> None:
    seen: set[int] = set()
    missing = [name for module in public_modules() for name in missing_in_module(module, seen)]
    assert missing == [], f"{len(missing)} public names without a docstring:\n" + "\n".join(missing)


def test_the_check_sees_what_it_must() -> None:
    """The rules themselves: an auto-generated dataclass docstring, an inherited one and a short one all count as none."""
    from dataclasses import dataclass

    @dataclass
    class Bare:
        x: int

    class Child(Exception):
        pass

    def short() -> None:
        """Does it."""

    def documented() -> None:
        """Does the one thing this function is for, and says so."""

    assert is_missing(own_doc(Bare))
    assert is_missing(own_doc(Child))
    assert is_missing(own_doc(short))
    assert not is_missing(own_doc(documented))

    class Base:
        def go(self) -> None:
            pass

        @property
        def size(self) -> int:
            return 1

    Base.__module__ = "tests.elsewhere"  # a third party's base: its docstring could not excuse an override anyway
    assert missing_in_class("Base", Base) == ["Base.go", "Base.size"]
