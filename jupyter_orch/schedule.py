"""When scheduled runs fire: pure functions over cron strings, time zones and instants.

Cron strings have 5 fields (minute precision), 6 fields with the seconds **first**
(`*/2 * * * * *` = every two seconds), or a macro (`@hourly`, `@daily`, ...). Times are computed
on the task's wall clock, then turned into UTC instants with two rules that make daylight-saving
changes neither skip nor double a run:

- a wall time that does not exist (the hour skipped in spring) fires once, at the first instant
  after the gap;
- a wall time that happens twice (the hour repeated in autumn) fires once, the first time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .errors import InvalidRequest

UTC = timezone.utc
MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


@dataclass(frozen=True)
class Cron:
    """A checked cron string: its text and whether it has a seconds field (first)."""

    expr: str
    seconds: bool

    def iterator(self, start: datetime) -> croniter:
        """A croniter over naive wall-clock times after `start`."""
        return croniter(self.expr, start, second_at_beginning=self.seconds)


def parse_cron(expr: str) -> Cron:
    """A Cron from a user's string; InvalidRequest naming the problem otherwise."""
    text = " ".join(expr.split())
    if not text:
        raise InvalidRequest("schedule", "must not be empty")
    if text.lower() in MACROS:
        return Cron(text.lower(), seconds=False)
    fields = text.split(" ")
    if len(fields) not in (5, 6):
        raise InvalidRequest(
            "schedule",
            f"{expr!r} has {len(fields)} fields; use 5 (minute hour day month weekday), "
            "6 (second first), or a macro such as @hourly",
        )
    seconds = len(fields) == 6
    if not croniter.is_valid(text, second_at_beginning=seconds):
        raise InvalidRequest("schedule", f"{expr!r} is not a valid cron string")
    return Cron(text, seconds)


def parse_timezone(name: str | None) -> ZoneInfo:
    """The IANA time zone of a task (UTC when none is given)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest("timezone", f"{name!r} is not an IANA time zone name") from None


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    """Whether a naive wall time happens at all in the zone (not inside a spring gap)."""
    back = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return back == wall


def to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall time, by the two daylight-saving rules above."""
    if _exists(wall, zone):
        return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    moment = wall.replace(second=0, microsecond=0)
    for _ in range(48 * 60):  # gaps are at most a day long, and start on a whole minute
        moment += timedelta(minutes=1)
        if _exists(moment, zone):
            break
    return moment.replace(tzinfo=zone, fold=0).astimezone(UTC)


def next_fire(cron: Cron, zone: ZoneInfo, after: datetime) -> datetime:
    """The first instant strictly after `after` (aware) at which the schedule fires."""
    it = cron.iterator(after.astimezone(zone).replace(tzinfo=None))
    for _ in range(100_000):
        instant = to_instant(it.get_next(datetime), zone)
        if instant > after:  # a repeated or collapsed wall time already fired
            return instant
    raise InvalidRequest("schedule", f"{cron.expr!r} never fires")  # pragma: no cover


def fires_between(
    cron: Cron, zone: ZoneInfo, after: datetime, until: datetime, limit: int
) -> tuple[list[datetime], int]:
    """The newest `limit` instants in (after, until], and how many there were in all."""
    found: list[datetime] = []
    total = 0
    instant = next_fire(cron, zone, after)
    while instant <= until:
        total += 1
        found.append(instant)
        if len(found) > limit:
            found.pop(0)
        if total > 10_000_000:  # a bound on any loop: ~4 months of every-second fires
            break
        instant = next_fire(cron, zone, instant)
    return found, total


@dataclass(frozen=True)
class Catchup:
    """What to do about instants missed while no scheduler ran."""

    run: datetime | None
    missed: list[datetime]
    missed_total: int


def catch_up(
    cron: Cron,
    zone: ZoneInfo,
    last: datetime,
    now: datetime,
    deadline_seconds: float,
    keep: int = 100,
) -> Catchup:
    """Run the latest missed instant if within the deadline; the others are missed."""
    instants, total = fires_between(cron, zone, last, now, keep + 1)
    if not instants:
        return Catchup(None, [], 0)
    latest = instants[-1]
    if (now - latest).total_seconds() <= deadline_seconds:
        return Catchup(latest, instants[:-1][-keep:], total - 1)
    return Catchup(None, instants[-keep:], total)


def backoff_seconds(failures: int, first: float = 1.0, ceiling: float = 60.0) -> float:
    """Delay before the next run of a continuous task after `failures` fast failures."""
    if failures <= 0:
        return 0.0
    return float(min(ceiling, first * 2.0 ** (failures - 1)))
