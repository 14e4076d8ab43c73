"""Reading request fields with messages that name what is wrong."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import Any, TypeVar

from .errors import InvalidRequest

E = TypeVar("E", bound=Enum)
_MISSING = object()


def parse_json_object(raw: bytes, what: str = "body") -> dict[str, Any]:
    """A JSON object from raw bytes; InvalidRequest otherwise."""
    if not raw.strip():
        return {}  # an empty body is an empty request: every field takes its default
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(what, f"is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidRequest(what, "must be a JSON object")
    return value


class Fields:
    """Typed access to the fields of one JSON request body."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def _get(self, name: str, required: bool) -> Any:
        value = self.body.get(name, _MISSING)
        if value is _MISSING or (value is None and not required):
            if required:
                raise InvalidRequest(name, "is required")
            return None
        if value is None:
            raise InvalidRequest(name, "must not be null")
        return value

    def integer(
        self,
        name: str,
        required: bool = True,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        """An integer field (booleans are not integers here)."""
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequest(name, f"must be an integer, not {_kind(value)}")
        if minimum is not None and value < minimum:
            raise InvalidRequest(name, f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise InvalidRequest(name, f"must be at most {maximum}")
        return value

    def number(
        self, name: str, required: bool = True, minimum: float | None = None
    ) -> float | None:
        """A number field (integer or not; booleans are not numbers here)."""
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidRequest(name, f"must be a number, not {_kind(value)}")
        if minimum is not None and value < minimum:
            raise InvalidRequest(name, f"must be at least {minimum}")
        return float(value)

    def req_integer(self, name: str, minimum: int | None = None) -> int:
        """A required integer field."""
        value = self.integer(name, True, minimum)
        assert value is not None
        return value

    def string(self, name: str, required: bool = True) -> str | None:
        """A string field."""
        value = self._get(name, required)
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(name, f"must be a string, not {_kind(value)}")
        return value

    def uuid(self, name: str) -> str:
        """A required UUID string field, returned in canonical form."""
        value = self.string(name)
        assert value is not None
        return as_uuid(name, value)

    def opt_uuid(self, name: str) -> str | None:
        """An optional UUID string field."""
        value = self.string(name, required=False)
        return as_uuid(name, value) if value is not None else None

    def boolean(self, name: str, required: bool = False) -> bool | None:
        """A boolean field."""
        value = self._get(name, required)
        if value is not None and not isinstance(value, bool):
            raise InvalidRequest(name, f"must be true or false, not {_kind(value)}")
        return value

    def mapping(self, name: str, default: dict[str, Any] | None = None) -> dict[str, Any]:
        """A JSON object field (the task arguments)."""
        value = self._get(name, required=default is None)
        if value is None:
            return dict(default or {})
        if not isinstance(value, dict):
            raise InvalidRequest(name, f"must be a JSON object, not {_kind(value)}")
        return value

    def items(self, name: str, item: type) -> list[Any]:
        """A list field whose items all have one type (absent or null: empty)."""
        value = self._get(name, required=False)
        if value is None:
            return []
        if not isinstance(value, list):
            raise InvalidRequest(name, f"must be a list, not {_kind(value)}")
        for element in value:
            if isinstance(element, bool) or not isinstance(element, item):
                raise InvalidRequest(name, f"items must be {item.__name__}s")
        return value

    def enum(self, name: str, enum: type[E], value: Any) -> E:
        """A value checked against an Enum's words."""
        try:
            return enum(value)
        except ValueError:
            words = ", ".join(e.value for e in enum)
            raise InvalidRequest(name, f"{value!r} is not one of {words}") from None

    def time(self, name: str) -> datetime | None:
        """An optional ISO 8601 time with a timezone (in UTC)."""
        value = self._get(name, required=False)
        return None if value is None else _parse_time(name, value)

    def time_range(self, name: str = "time_range") -> tuple[datetime, datetime] | None:
        """A `[from, to]` pair of ISO 8601 times with a timezone."""
        value = self._get(name, required=False)
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 2:
            raise InvalidRequest(name, "must be a list of two ISO 8601 times [from, to]")
        start, end = (_parse_time(name, v) for v in value)
        if end < start:
            raise InvalidRequest(name, "ends before it starts")
        return start, end


def as_uuid(name: str, value: str) -> str:
    """A UUID in canonical form; InvalidRequest when the value is not one."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidRequest(name, f"{value!r} is not a UUID") from None


def _parse_time(name: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise InvalidRequest(name, "times must be ISO 8601 strings")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(name, f"{value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise InvalidRequest(name, f"{value!r} has no timezone")
    return parsed.astimezone(timezone.utc)  # stored times are UTC and compared as text


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)
