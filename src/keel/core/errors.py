"""The one exception tree of keel.

::

    KeelError                      every error keel raises on purpose
    ├── InvalidArgument            bad input: names the field, the value, what was expected  (HTTP 400)
    ├── PermissionDenied           the caller may not do this                             (HTTP 403)
    ├── NotFound                   an entity that does not exist                          (HTTP 404)
    ├── Conflict                   a write that contradicts what is stored                (HTTP 409)
    ├── IntegrityError             stored bytes that no longer match their hash           (HTTP 500-free: 409)
    ├── StoreUnavailable           the backend cannot be reached or keeps failing         (HTTP 503)
    └── MissingExtra               an optional dependency is not installed

Stores translate driver errors (sqlalchemy, httpx, fsspec) into this tree, so no
driver exception reaches a user.
"""

from __future__ import annotations

from typing import Any


class KeelError(Exception):
    """Root of every error keel raises on purpose."""

    code = "keel_error"
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InvalidArgument(KeelError):
    """Bad input. The message names the field, the value and what was expected."""

    code = "invalid_argument"
    http_status = 400

    @classmethod
    def for_field(cls, field: str, value: Any, expected: str) -> InvalidArgument:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return cls(f"{field} must be {expected}; got {shown}")


class PermissionDenied(KeelError):
    code = "permission_denied"
    http_status = 403


class NotFound(KeelError):
    code = "not_found"
    http_status = 404


class Conflict(KeelError):
    code = "conflict"
    http_status = 409


class IntegrityError(KeelError):
    """Stored bytes whose hash no longer matches: corrupted or tampered."""

    code = "integrity_error"
    http_status = 409


class StoreUnavailable(KeelError):
    code = "store_unavailable"
    http_status = 503


class MissingExtra(KeelError):
    code = "missing_extra"
    http_status = 501

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f"{module} is not installed; run: pip install 'keel[{extra}]'")


ERRORS_BY_CODE: dict[str, type[KeelError]] = {
    cls.code: cls for cls in (KeelError, InvalidArgument, PermissionDenied, NotFound, Conflict, IntegrityError, StoreUnavailable)
}


def error_from_dict(payload: dict[str, Any], status: int) -> KeelError:
    """Rebuild the error a server sent (used by the REST client)."""
    cls = ERRORS_BY_CODE.get(str(payload.get("code")), KeelError)
    message = str(payload.get("message", f"server answered HTTP {status}"))
    err = cls.__new__(cls)
    KeelError.__init__(err, message)
    return err
