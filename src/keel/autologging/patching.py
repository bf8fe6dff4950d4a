"""Replacing a library's ``fit`` (or ``train``) for a while, and the one flow every patched call goes through.

A ``Patch`` swaps one attribute of a class or module that defines it itself (``owner.__dict__``), so
restoring puts back the very object that was there: ``XGBClassifier.__dict__["fit"]`` is the library's
function again after ``keel.autolog(disable=True)``, not a wrapper that passes through.

``logged_call`` is the flow (MLflow's ``safe_patch``, smaller): the outermost patched call in the process logs,
the calls it makes (a Pipeline fitting its steps, a search fitting clones, joblib's worker threads) do not; the
user's exceptions pass through unchanged; anything that fails while logging is one warning, never an error of
the user's ``fit``.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keel.core.entities import RunStatus


class AutologWarning(UserWarning):
    """keel.autolog could not log something; the user's fit was not affected."""


@dataclass(frozen=True)
class Settings:
    """What ``keel.autolog`` was asked to log."""

    log_models: bool = True
    log_datasets: bool = True


@dataclass
class Patch:
    """``owner.name`` (a class's method or a module's function, defined on ``owner`` itself) and its stand-in."""

    owner: Any
    name: str
    original: Any
    replacement: Any = field(default=None)

    def apply(self) -> None:
        setattr(self.owner, self.name, self.replacement)

    def restore(self) -> None:
        setattr(self.owner, self.name, self.original)


# The outermost patched call in progress in this process, if any. Process-wide, not per thread: scikit-learn and
# joblib fit sub-estimators on worker threads (a forest's trees, a search with the threading backend), and those
# belong to the outer fit's run. The price: two user threads fitting at once log only the first.
_lock = threading.Lock()
_busy = False
_warned = False


def reset_warning() -> None:
    global _warned
    _warned = False


def warn_once(what: str, exc: BaseException) -> None:
    """One warning per ``keel.autolog()`` call: a broken store must not print a line per fit."""
    global _warned
    if _warned:
        return
    _warned = True
    try:
        warnings.warn(
            f"keel.autolog could not {what} ({type(exc).__name__}: {exc}); the fit itself is unaffected, "
            "and further failures are not reported",
            AutologWarning,
            stacklevel=5,  # the user's call of fit or train
        )
    except Warning:  # warnings turned into errors must not turn into the user's fit failing
        pass


def _enter() -> bool:
    global _busy
    with _lock:
        if _busy:
            return False
        _busy = True
        return True


def _leave() -> None:
    global _busy
    with _lock:
        _busy = False


Logger = Callable[[Any, Any], None]
"""Called after a successful call with (the run, the call's result): logs what the framework knows."""


def logged_call(framework: str, call: Callable[[], Any], prepare: Callable[[], Logger]) -> Any:
    """Run ``call`` (the original fit), logging into the active run, or a run started here and ended after.

    ``prepare`` runs before the call (it may read inputs the call consumes, such as LightGBM's raw data) and
    returns the logger to run after it.
    """
    if not _enter():
        return call()  # inside another patched call: the outermost one logs
    try:
        return _logged(framework, call, prepare)
    finally:
        _leave()


def _logged(framework: str, call: Callable[[], Any], prepare: Callable[[], Logger]) -> Any:
    from keel.tracking import fluent

    started = None
    try:
        logger = prepare()
        run = fluent.active_run()
        if run is None:
            run = started = fluent.start_run(tags={"keel.autolog": framework})
    except Exception as exc:  # noqa: BLE001 - no store, say: the fit still runs, unlogged
        warn_once("start logging this fit", exc)
        return call()
    try:
        result = call()
    except BaseException as exc:
        if started is not None:
            # the run records the failure (status, keel.error tag) as a `with keel.start_run()` block would
            try:
                started.__exit__(type(exc), exc, exc.__traceback__)
            except Exception:  # noqa: BLE001 - never hide the user's exception
                pass
        raise
    try:
        logger(run, result)
    except Exception as exc:  # noqa: BLE001 - logging never breaks the user's fit
        warn_once(f"log the {framework} fit", exc)
    if started is not None:
        try:
            started.end(RunStatus.FINISHED)
        except Exception as exc:  # noqa: BLE001
            warn_once("end the run it started", exc)
    return result


def method_patch(owner: type, name: str, framework: str, prepare: Callable[..., Logger]) -> Patch:
    """A patch of ``owner.name`` (a method): ``prepare(self, args, kwargs)`` returns the logger."""
    original = owner.__dict__[name]

    @functools.wraps(original)  # keeps __wrapped__: inspect.signature (scikit-learn's metadata routing) sees the original
    def replacement(self: Any, *args: Any, **kwargs: Any) -> Any:
        return logged_call(framework, lambda: original(self, *args, **kwargs), lambda: prepare(self, args, kwargs))

    replacement.__keel_autolog__ = framework  # type: ignore[attr-defined]  # what tells a patched function apart
    return Patch(owner, name, original, replacement)


def function_patch(owner: Any, name: str, framework: str, prepare: Callable[[dict[str, Any]], Logger]) -> Patch:
    """A patch of the module function ``owner.name``: ``prepare(arguments)`` (bound by name, defaults applied;
    it may add keyword arguments, such as a callback that records evaluations) returns the logger."""
    import inspect

    original = getattr(owner, name)
    signature = inspect.signature(original)

    @functools.wraps(original)
    def replacement(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        # prepare runs first (in logged_call) and may fill `arguments`; the call reads them afterwards
        return logged_call(framework, lambda: original(**arguments), lambda: prepare(arguments))

    replacement.__keel_autolog__ = framework  # type: ignore[attr-defined]
    return Patch(owner, name, original, replacement)
