"""Errors of the orchestration core; the HTTP layer maps each to a status code."""

from __future__ import annotations

import errno
import sqlite3

_SQLITE_FULL = 13  # the result code of a write refused for want of room
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6  # another connection holds the lock
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26  # the file is damaged, or not a database at all


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


class Unavailable(OrchError):
    """The executor a request names cannot take runs now (its cluster is unreachable)."""

    status = 422
    reason = "Executor Unavailable"


class RunGone(OrchError):
    """A run's remote side reports for a run that is no longer running here: it must stop."""

    status = 410
    reason = "Gone"


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


class ServiceUnavailable(OrchError):
    """The service cannot answer now (its database is locked or damaged); `retry_after`: the
    seconds after which trying again makes sense, when it does."""

    status = 503
    reason = "Service Unavailable"

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def database_trouble(exc: BaseException, path: object) -> ServiceUnavailable | None:
    """The 503 for an error of the database at `path`: locked by another connection (try
    again), or damaged (what is wrong and how to recover); None for anything else."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc)
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED) or "database is locked" in text:
        return ServiceUnavailable(
            f"the database is busy (another process holds its lock: {text}); try again shortly",
            retry_after=5,
        )
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in text or "not a database" in text:
        return ServiceUnavailable(damaged_database(path, text))
    return None


def damaged_database(path: object, problem: str) -> str:
    """What to say, in answers and in the log, about a database that cannot be read."""
    return (
        f"the orchestration database {path} cannot be read ({problem}). To recover: stop the "
        f"server, move the file aside (keep it: `sqlite3 {path} .recover` may save its rows), "
        "and start the server again, which makes a new, empty database (archives, "
        "environments and run folders stay on disk). Until then the orchestration API answers "
        "503."
    )


def core_error(exc: BaseException | None, what: str, database: object) -> OrchError | None:
    """The error to answer with for `exc`: itself if it is a core error; a 507 for a full
    disk; a 503 for a locked or damaged `database`; None for the unexpected (a 500)."""
    if exc is None or isinstance(exc, OrchError):
        return exc
    if disk_full(exc):
        return InsufficientStorage(what)
    return database_trouble(exc, database)
