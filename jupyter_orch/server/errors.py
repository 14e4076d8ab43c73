"""Errors of the orchestration core; the HTTP layer maps each to a status code."""

from __future__ import annotations


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
