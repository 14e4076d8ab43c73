"""When scheduled runs fire: pure functions over cron strings, time zones and instants.

Cron strings have 5 fields (minute precision), 6 fields with the seconds **first**
(`*/2 * * * * *` = every two seconds), or a macro (`@hourly`, `@daily`, ...). Wallaroo's six
fields with a trailing **year** instead of a weekday (`0 0 12 1-15 2 2024`: second, minute,
hour, day, month, year) are read as such: a weekday is never above 7, a year always is.

Times are computed on the task's wall clock, then turned into UTC instants with two rules that
make daylight-saving changes neither skip nor double a run:

- a wall time that does not exist (the hour skipped in spring) fires once, at the first instant
  after the gap;
- a wall time that happens twice (the hour repeated in autumn) fires once, the first time;
  except in schedules whose hour field is `*` (`*/20 * * * *`, `@hourly`, `* * * * * *`), which
  keep their rhythm through the repeated hour, as they do through any other: an hourly schedule
  runs at 01:00 both times 01:00 comes, an hour apart, and every-20-minutes is never silent for
  80 minutes. (Daily and other fixed-hour schedules still run once.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cron_descriptor import ExpressionDescriptor, FormatException, Options
from croniter import CroniterBadDateError, croniter

from .errors import InvalidRequest

UTC = timezone.utc
#: The macros croniter takes, as the five fields they stand for.
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class Cron:
    """A checked cron string: its text, whether it has a seconds field (first), and whether
    its last field is a year (Wallaroo's form, seconds first too)."""

    expr: str
    seconds: bool
    year: bool = False

    @property
    def every_hour(self) -> bool:
        """Whether the hour field is `*`: the schedule fires the same way in every hour."""
        if self.expr.startswith("@"):
            return self.expr == "@hourly"
        return self.expr.split(" ")[2 if self.seconds else 1] == "*"

    def iterator(self, start: datetime) -> croniter:
        """A croniter over naive wall-clock times after `start`."""
        if self.year:
            return croniter(_croniter_with_year(self.expr), start)
        return croniter(self.expr, start, second_at_beginning=self.seconds)

    def describe(self) -> str:
        """The schedule in English words, on a 24-hour clock (`At 09:00, Monday through
        Friday`; six fields read with the seconds first, as here), by cron-descriptor; a form
        it cannot read is shown as the cron text itself."""
        options = Options()
        options.use_24hour_time_format = True
        options.verbose = False
        try:
            words: str = ExpressionDescriptor(
                MACROS.get(self.expr, self.expr), options
            ).get_description()
            return words
        except (FormatException, ValueError, IndexError, KeyError):
            return f"cron {self.expr}"


def _croniter_with_year(expr: str) -> str:
    """`second minute hour day month year` in croniter's seven-field order (minute hour day
    month weekday second year)."""
    second, minute, hour, day, month, year = expr.split(" ")
    return f"{minute} {hour} {day} {month} * {second} {year}"


def _is_year_field(field: str) -> bool:
    """Whether a sixth field names years (a number above 7, where a weekday never is)."""
    return any(int(n) > 7 for n in re.findall(r"\d+", field.split("/", maxsplit=1)[0]))


def parse_cron(expr: str, after: datetime | None = None) -> Cron:
    """A Cron from a user's string; InvalidRequest naming the problem otherwise. A schedule
    with years must still fire after `after` (now when not given)."""
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
            "6 (second minute hour day month weekday, or second minute hour day month year), "
            "or a macro such as @hourly",
        )
    seconds = len(fields) == 6
    year = seconds and _is_year_field(fields[5])
    valid = (
        croniter.is_valid(_croniter_with_year(text))
        if year
        else croniter.is_valid(text, second_at_beginning=seconds)
    )
    if not valid:
        raise InvalidRequest("schedule", f"{expr!r} is not a valid cron string")
    cron = Cron(text, seconds, year)
    try:
        # croniter gives up after a bounded search (years, not forever): a date no calendar
        # has, such as 31 February, never comes.
        cron.iterator(_PROBE_START).get_next(datetime)
    except CroniterBadDateError:
        raise InvalidRequest("schedule", f"{expr!r} never fires (no date matches it)") from None
    if year:
        start = (after or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
        try:
            # The wall clock of any time zone is at most 14 hours behind UTC.
            cron.iterator(start - timedelta(hours=14)).get_next(datetime)
        except CroniterBadDateError:
            message = f"{expr!r} never fires again (its years are past)"
            raise InvalidRequest("schedule", message) from None
    return cron


#: Where the check that a schedule fires at all starts: a leap year's first instant.
_PROBE_START = datetime(2000, 1, 1)


def parse_timezone(name: str | None) -> ZoneInfo:
    """The IANA time zone of a task (UTC when none is given)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, a name too long
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


def next_fire(cron: Cron, zone: ZoneInfo, after: datetime) -> datetime | None:
    """The first instant strictly after `after` (aware) at which the schedule fires; None
    once a schedule with years has no instant left."""
    try:
        first = _next_first_time(cron, zone, after)
    except CroniterBadDateError:
        return None
    if cron.every_hour:
        again = _next_second_time(cron, zone, after)
        if again is not None and again < first:
            return again
    return first


@lru_cache(maxsize=4096)
def stored_cron(expr: str) -> Cron:
    """A stored (already checked) schedule, parsed once: tasks of a listing share a few."""
    return parse_cron(expr)


@lru_cache(maxsize=4096)
def describe(expr: str) -> str:
    """A stored schedule in words."""
    try:
        return stored_cron(expr).describe()
    except InvalidRequest:  # stored by a version that took it: shown, not refused
        return f"cron {expr}"


@lru_cache(maxsize=4096)
def fires_from(expr: str, zone_name: str | None, first: datetime, count: int) -> list[datetime]:
    """`count` instants of a stored schedule from its next one, `first`, in its zone (many
    tasks of a listing share a schedule and its next instant)."""
    zone = parse_timezone(zone_name)
    return [first.astimezone(zone), *upcoming(stored_cron(expr), zone, first, count - 1)]


def upcoming(cron: Cron, zone: ZoneInfo, after: datetime, count: int) -> list[datetime]:
    """The next `count` instants after `after`, each in the zone (ISO text shows its offset);
    fewer if the schedule ends (its years run out)."""
    fires: list[datetime] = []
    for _ in range(count):
        fire = next_fire(cron, zone, after)
        if fire is None:
            break
        fires.append(fire.astimezone(zone))
        after = fire
    return fires


def _next_first_time(cron: Cron, zone: ZoneInfo, after: datetime) -> datetime:
    """The next instant of the wall-clock rules: a repeated wall time counts the first time."""
    it = cron.iterator(after.astimezone(zone).replace(tzinfo=None))
    for _ in range(100_000):
        instant = to_instant(it.get_next(datetime), zone)
        if instant > after:  # a repeated or collapsed wall time already fired
            return instant
    raise InvalidRequest("schedule", f"{cron.expr!r} never fires")  # pragma: no cover


#: Farther than any clock change (at most 2 hours): a repeated wall time near `after` is
#: looked for only when the zone's offset differs across this span around it.
_SHIFT_SPAN = timedelta(hours=3)


@dataclass(frozen=True)
class _SetBack:
    """A clock set back: wall times in [start, end) happen a second time, at `offset`."""

    offset: timedelta
    start: datetime
    end: datetime

    def second_times(
        self, cron: Cron, after: datetime, until: datetime, limit: int
    ) -> list[datetime]:
        """The second times in (after, until] at which the schedule fires, oldest first."""
        begin = max(self.start - timedelta(seconds=1), (after + self.offset).replace(tzinfo=None))
        it = cron.iterator(begin)
        found: list[datetime] = []
        while len(found) < limit:
            try:
                wall = it.get_next(datetime)
            except CroniterBadDateError:  # a schedule with years: none after them
                break
            instant = (wall - self.offset).replace(tzinfo=UTC)
            if wall >= self.end or instant > until:
                break
            found.append(instant)
        return found


def _set_back(zone: ZoneInfo, low: datetime, high: datetime) -> _SetBack | None:
    """The clock set back between `low` and `high` (at most one change apart), if any."""
    before, later = low.astimezone(zone).utcoffset(), high.astimezone(zone).utcoffset()
    if before is None or later is None or later >= before:
        return None
    while (high - low) > timedelta(seconds=1):  # the moment the clock is set back
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    change = high.replace(microsecond=0)
    start, end = (change + later).replace(tzinfo=None), (change + before).replace(tzinfo=None)
    return _SetBack(later, start, end)


def _set_backs(zone: ZoneInfo, first: datetime, last: datetime) -> list[_SetBack]:
    """Every clock set back between two instants (looked for in steps shorter than the
    shortest time between two clock changes)."""
    found = []
    low = first - _SHIFT_SPAN
    while low < last + _SHIFT_SPAN:
        high = low + _SHIFT_SPAN
        change = _set_back(zone, low, high)
        if change is not None:
            found.append(change)
        low = high
    return found


def _next_second_time(cron: Cron, zone: ZoneInfo, after: datetime) -> datetime | None:
    """The next instant > `after` at which a repeated wall time happens the second time."""
    change = _set_back(zone, after - _SHIFT_SPAN, after + _SHIFT_SPAN)
    if change is None:
        return None  # no clock set back around `after`
    found = change.second_times(cron, after, after + 2 * _SHIFT_SPAN, 1)
    return found[0] if found else None


def newest_fires(
    cron: Cron, zone: ZoneInfo, after: datetime, until: datetime, limit: int
) -> tuple[list[datetime], bool]:
    """The newest `limit` instants in (after, until], oldest first, and whether there were more.

    Walks back from `until`, so the cost follows `limit`, not the length of the span: a day of
    downtime of an every-second schedule costs as much as a minute of it.
    """
    found: list[datetime] = []
    if until <= after:
        return found, False
    # croniter steps back strictly before its start; instants are whole seconds.
    start = until.astimezone(zone).replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)
    it = cron.iterator(start)
    newest: datetime | None = None
    for _ in range(limit * 4 + 100_000):  # bounded: collapsed wall times only repeat a few
        try:
            wall = it.get_prev(datetime)
        except CroniterBadDateError:  # a schedule with years: none before them
            return _with_second_times(cron, zone, after, until, found[::-1], limit, False)
        instant = to_instant(wall, zone)
        if instant <= after:
            return _with_second_times(cron, zone, after, until, found[::-1], limit, False)
        if instant > until or (newest is not None and instant >= newest):
            continue  # past `until`, or a wall time that collapsed onto a later instant
        if len(found) == limit:
            return _with_second_times(cron, zone, after, until, found[::-1], limit, True)
        found.append(instant)
        newest = instant
    return found[::-1], True  # pragma: no cover


def _with_second_times(
    cron: Cron,
    zone: ZoneInfo,
    after: datetime,
    until: datetime,
    first_times: list[datetime],
    limit: int,
    more: bool,
) -> tuple[list[datetime], bool]:
    """Add the second times of repeated wall times (hourly-rhythm schedules only)."""
    if not cron.every_hour:
        return first_times, more
    oldest = first_times[0] if first_times and more else after
    again = [
        instant
        for change in _set_backs(zone, oldest, until)
        for instant in change.second_times(cron, after, until, limit)
    ]
    if not again:
        return first_times, more
    merged = sorted(set(first_times) | set(again))
    return merged[-limit:], more or len(merged) > limit


@dataclass(frozen=True)
class Catchup:
    """What to do about instants missed while no scheduler ran."""

    run: datetime | None
    missed: list[datetime]
    more_missed: bool  # instants older than `missed` were missed too (not listed)


def catch_up(
    cron: Cron,
    zone: ZoneInfo,
    last: datetime,
    now: datetime,
    deadline_seconds: float,
    keep: int = 100,
) -> Catchup:
    """Run the latest missed instant if within the deadline; the others are missed.

    At most `keep` missed instants are listed (the newest); the cost follows `keep`."""
    instants, more = newest_fires(cron, zone, last, now, keep + 1)
    if not instants:
        return Catchup(None, [], False)
    latest = instants[-1]
    if (now - latest).total_seconds() <= deadline_seconds:
        return Catchup(latest, instants[:-1][-keep:], more)
    return Catchup(None, instants[-keep:], more or len(instants) > keep)


def backoff_seconds(failures: int, first: float = 1.0, ceiling: float = 60.0) -> float:
    """Delay before the next run of a continuous task after `failures` fast failures."""
    if failures <= 0:
        return 0.0
    return float(min(ceiling, first * 2.0 ** (failures - 1)))
