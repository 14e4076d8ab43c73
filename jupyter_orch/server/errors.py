"""Errors of the orchestration core; the HTTP layer maps each to a status code."""

from __future__ import annotations

import errno
import sqlite3

_SQLITE_FULL = 13  # the result code of a write refused for want of room


class OrchError(Exception):
    """Base of every error the core raises on purpose; `status` is the HTTP code it maps to."""

    status = 400
    reason = "Bad Request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(OrchError):
    """A request field is missing, of the wrong type, or out of range."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class ArchiveError(OrchError):
    """An uploaded archive breaks a rule (not a zip, no main.py, a path escaping ...)."""

    reason = "Invalid Archive"


class TooLarge(OrchError):
    """A request body or archive is over a configured limit."""

    status = 413
    reason = "Payload Too Large"


class Forbidden(OrchError):
    """The request is not authenticated or not authorized."""

    status = 403
    reason = "Forbidden"


class Missing(OrchError):
    """An id names nothing that exists."""

    status = 404
    reason = "Not Found"

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident} not found")
        self.kind = kind
        self.ident = ident


class WrongState(OrchError):
    """The object's current state forbids the request."""

    status = 409
    reason = "Conflict"


class NoOutput(OrchError):
    """A run has no notebook output (a script's run, or a notebook's not written yet); the
    message says which."""

    status = 404
    reason = "Not Found"


class InsufficientStorage(OrchError):
    """The data directory's disk (or the user's quota on it) is full."""

    status = 507
    reason = "Insufficient Storage"

    def __init__(self, doing: str) -> None:
        super().__init__(
            f"{doing}: the server's disk is full (no space left in its data directory); "
            "nothing was kept. Free some space and try again."
        )


def disk_full(exc: BaseException) -> bool:
    """Whether an error says the disk is full: ENOSPC or EDQUOT, or SQLite's SQLITE_FULL."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.OperationalError):
        return getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL or (
            "database or disk is full" in str(exc)
        )
    return False
