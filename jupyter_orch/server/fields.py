"""Reading request fields with messages that name what is wrong.

Every value a client sends is either a value of its field or an `InvalidRequest` naming the
field: bodies are strict JSON (finite numbers, Unicode text, a bounded depth) and integers lie
within bounds that SQLite, the clock and JavaScript's numbers all hold.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from enum import Enum
from typing import Any, NoReturn, TypeVar

from .errors import InvalidRequest

E = TypeVar("E", bound=Enum)
_MISSING = object()

#: The largest integer any field takes (and minus it the smallest): JavaScript reads JSON
#: numbers as doubles, exact up to 2**53, and SQLite's 64-bit integers hold it.
MAX_INTEGER = 2**53 - 1
#: A duration in seconds (`starting_deadline_seconds`): at most 366 days.
MAX_SECONDS = 366 * 24 * 3600
#: A run's `timeout`: at most 24 days, the bound the API documents. (It was chosen under one
#: poll()'s longest sleep, 2**31 - 1 ms or 24.8 days; the supervisor now waits for a later
#: deadline in several sleeps, so a spec with any timeout or grace period is safe.)
MAX_TIMEOUT = 24 * 24 * 3600
#: A run's log cap (`max_log_bytes`): from 1 MiB (a head and a tail of some lines each) to 1 TiB.
MIN_LOG_BYTES, MAX_LOG_BYTES = 1 << 20, 1 << 40
#: Days of retention (`keep_days`): at most 100 years.
MAX_DAYS = 36_600
#: How deep arrays and objects nest in a field's value (`{}` is 1 deep, `{"a": []}` 2): far
#: under Python's recursion limit, so encoding or storing a value never runs out of stack.
MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")
_DECIMAL = re.compile("-?[0-9]{1,20}")


def parse_json_object(raw: bytes, what: str = "body") -> dict[str, Any]:
    """A JSON object from raw bytes; InvalidRequest otherwise."""
    if not raw.strip():
        return {}  # an empty body is an empty request: every field takes its default
    try:
        value = json.loads(raw, parse_constant=_non_finite(what), parse_float=_finite(what))
    except RecursionError:
        raise InvalidRequest(what, f"is nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(what, f"is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidRequest(what, "must be a JSON object")
    for key, item in value.items():
        _check_text(what, key)
        _check_value(key, item)
    return value


def _non_finite(what: str) -> Callable[[str], NoReturn]:
    def refuse(word: str) -> NoReturn:
        raise InvalidRequest(what, f"{word} is not a finite number (JSON has no NaN or Infinity)")

    return refuse


def _finite(what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        number = float(text)
        if not math.isfinite(number):
            raise InvalidRequest(what, f"{text[:40]} is not a finite number (out of range)")
        return number

    return parse


def _check_value(field: str, value: Any) -> None:
    """Walk a field's value without recursion: bounded depth, Unicode text only."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_text(field, item)
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise InvalidRequest(field, f"is nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            for key in item:
                _check_text(field, key)
            item = list(item.values())
        pending.extend((child, depth + 1) for child in item)


def _check_text(field: str, text: str) -> None:
    # A lone surrogate parses from a JSON escape but is no character: no database, file
    # system or UTF-8 encoder takes it.
    if _SURROGATE.search(text):
        raise InvalidRequest(field, "holds a lone surrogate (\\ud800-\\udfff), not Unicode text")


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
        """An integer field within bounds (at most ±MAX_INTEGER whatever the bounds asked)."""
        value = self._get(name, required)
        if value is None:
            return None
        return _as_integer(name, value, minimum, maximum)

    def integers(
        self, name: str, minimum: int | None = None, maximum: int | None = None
    ) -> list[int]:
        """A list of integers within bounds (absent or null: empty)."""
        values = self._list(name)
        try:
            return [_as_integer(name, value, minimum, maximum) for value in values]
        except InvalidRequest as exc:
            raise InvalidRequest(name, "items " + exc.message.split(": ", 1)[1]) from None

    def number(
        self,
        name: str,
        required: bool = True,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float | None:
        """A number field (integer or not; booleans are not numbers here); always finite."""
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidRequest(name, f"must be a number, not {_kind(value)}")
        _check_bounds(name, value, minimum, maximum)
        return float(value)

    def req_integer(self, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
        """A required integer field."""
        value = self.integer(name, True, minimum, maximum)
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
        value = self._list(name)
        for element in value:
            if isinstance(element, bool) or not isinstance(element, item):
                raise InvalidRequest(name, f"items must be {item.__name__}s")
        return value

    def _list(self, name: str) -> list[Any]:
        value = self._get(name, required=False)
        if value is None:
            return []
        if not isinstance(value, list):
            raise InvalidRequest(name, f"must be a list, not {_kind(value)}")
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


def query_integer(
    name: str, text: str, minimum: int | None = None, maximum: int | None = None
) -> int:
    """A decimal integer of a query string, within bounds; InvalidRequest naming it otherwise."""
    if _DECIMAL.fullmatch(text) is None:
        raise InvalidRequest(name, f"{text[:40]!r} is not a decimal integer")
    return _as_integer(name, int(text), minimum, maximum)


def as_uuid(name: str, value: str) -> str:
    """A UUID in canonical form; InvalidRequest when the value is not one."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidRequest(name, f"{value!r} is not a UUID") from None


def _as_integer(name: str, value: Any, minimum: int | None, maximum: int | None) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema's integers include 1.0: so do ours (bounds next)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(name, f"must be an integer, not {_kind(value)}")
    low = -MAX_INTEGER if minimum is None else max(minimum, -MAX_INTEGER)
    high = MAX_INTEGER if maximum is None else min(maximum, MAX_INTEGER)
    _check_bounds(name, value, low, high)
    return value


def _check_bounds(name: str, value: float, low: float | None, high: float | None) -> None:
    if low is not None and value < low:
        raise InvalidRequest(name, f"must be at least {low}")
    if high is not None and value > high:
        raise InvalidRequest(name, f"must be at most {high}")


def _parse_time(name: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise InvalidRequest(name, "times must be ISO 8601 strings")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(name, f"{value[:100]!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise InvalidRequest(name, f"{value[:100]!r} has no timezone")
    try:
        return parsed.astimezone(timezone.utc)  # stored times are UTC and compared as text
    except OverflowError:
        raise InvalidRequest(name, f"{value!r} is out of range in UTC (years 1 to 9999)") from None


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)
