"""What every object of the SDK shares: a server object as last fetched, one with times, a list
that displays as a table; waiting for a state, and paging through a listing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from . import display
from .errors import WaitTimeout

if TYPE_CHECKING:
    from .client import Client

T = TypeVar("T")


def poll(check: Callable[[], T | None], timeout: float | None, what: str) -> T:
    """Call `check` until it gives a value, backing off to 1 s; WaitTimeout at the deadline."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.05
    while (value := check()) is None:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise WaitTimeout(f"{what}: still waiting after {timeout} s")
        time.sleep(delay if left is None else min(delay, left))
        delay = min(delay * 1.5, 1.0)
    return value


def moment(value: object) -> datetime | None:
    """A server time (ISO 8601 with its offset) as an aware `datetime`; None when absent."""
    if not value:
        return None
    text = str(value)
    return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)


def paged(
    client: Client,
    endpoint: str,
    body: Mapping[str, Any],
    page_size: int,
    key: str = "id",
    after: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Every object of a listing paged by keyset (`limit`, `after`), one request per page.

    The server answers newest first; a page starts after the last object of the previous
    one, so each costs the same however deep it is. An object seen on an earlier page (a run
    that changed meanwhile moves to the front) is not given twice.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, not {page_size}")
    seen: set[str] = set()
    while True:
        page: list[dict[str, Any]] = client._post(
            endpoint, given({**body, "limit": page_size}, after=after)
        )
        for item in page:
            if str(item[key]) not in seen:
                seen.add(str(item[key]))
                yield item
        if len(page) < page_size:
            return
        after = str(page[-1][key])


def page_start(after: str | Resource | None) -> str | None:
    """The id a page starts after, given as an id or as the last object of the previous page."""
    return after._key if isinstance(after, Resource) else after


class Resource:
    """A server object as last fetched."""

    kind: ClassVar[str] = "Object"
    columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, client: Client, data: Mapping[str, Any]) -> None:
        self._client = client
        self._data = dict(data)

    @property
    def _key(self) -> str:
        """The object's id as text (what equality, hashing and paging use)."""
        return str(self._data["id"])

    def known_status(self) -> str:
        """The status as last fetched, without asking the server (`status()` asks)."""
        return str(self._data.get("status", ""))

    def to_dict(self) -> dict[str, Any]:
        """The server's answer for this object (a copy)."""
        copied: dict[str, Any] = json.loads(json.dumps(self._data))
        return copied

    def _text(self, field: str) -> str:
        """A field as text; empty when the server did not send it."""
        value = self._data.get(field)
        return "" if value is None else str(value)

    def fields(self) -> list[tuple[str, str]]:
        """Name and value of each field shown when the object is displayed."""
        return []

    def row(self) -> list[str]:
        """The object's cells in a table of its kind (see `columns`)."""
        return []

    def __repr__(self) -> str:
        return display.text_fields(f"{self.kind} {self._key}", self.fields())

    def _repr_html_(self) -> str:
        return display.html_fields(f"{self.kind} {self._key}", self.fields())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Resource) and type(other) is type(self) and other._key == self._key

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key))


R = TypeVar("R", bound=Resource)


class Dated(Resource):
    """A server object with creation and change times."""

    def created_at(self) -> datetime | None:
        """When the object was made."""
        return moment(self._data.get("created_at"))

    def updated_at(self) -> datetime | None:
        """When the object last changed (its status), as last fetched."""
        return moment(self._data.get("updated_at"))


class ResourceList(list[R]):
    """A list of objects that displays as one table."""

    columns: ClassVar[tuple[str, ...]] = ()
    empty: ClassVar[str] = "(none)"

    def to_list(self) -> list[dict[str, Any]]:
        """The server's answers for every item."""
        return [item.to_dict() for item in self]

    def __repr__(self) -> str:
        return display.text_table(self.columns, [item.row() for item in self], self.empty)

    def _repr_html_(self) -> str:
        return display.html_table(self.columns, [item.row() for item in self], self.empty)


def given(body: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """`body` with the optional fields that have a value (None leaves a field out)."""
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def task_query(
    body: Mapping[str, Any],
    killed: bool,
    run_limit: int,
    limit: int | None = None,
    after: str | Resource | None = None,
) -> dict[str, Any]:
    """A `task/list` body: the filters in `body`, then killed, runs per task and paging."""
    return given(
        {**body, "run_limit": run_limit},
        killed=None if killed else False,
        limit=limit,
        after=page_start(after),
    )


def one_schedule(schedule: str | Iterable[str]) -> str:
    """A cron string, also taken as the only item of a list or set (as Wallaroo's SDK allows)."""
    if isinstance(schedule, str):
        return schedule
    items = list(schedule)
    if len(items) != 1 or not isinstance(items[0], str):
        raise ValueError(f"schedule: one cron string, or a list or set of exactly one: {items!r}")
    return items[0]
