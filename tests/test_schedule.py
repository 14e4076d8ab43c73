"""Scheduling rules as pure functions: cron forms, time zones, daylight saving, catch-up."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from jupyter_orch.server.cron import (
    backoff_seconds,
    catch_up,
    newest_fires,
    next_fire,
    parse_cron,
    parse_timezone,
)
from jupyter_orch.server.errors import InvalidRequest

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")


def at(text: str) -> datetime:
    """An aware UTC time from ISO text."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(expr: str, zone: str, start: str, count: int) -> list[str]:
    """The next `count` instants after `start`, as local ISO times."""
    cron, tz = parse_cron(expr), parse_timezone(zone)
    moment = datetime.fromisoformat(start).astimezone(UTC)
    out = []
    for _ in range(count):
        found = next_fire(cron, tz, moment)
        assert found is not None
        moment = found
        out.append(moment.astimezone(tz).isoformat())
    return out


def test_five_fields_have_minute_precision() -> None:
    assert fires("*/15 * * * *", "UTC", "2026-01-01T00:07:00+00:00", 3) == [
        "2026-01-01T00:15:00+00:00",
        "2026-01-01T00:30:00+00:00",
        "2026-01-01T00:45:00+00:00",
    ]


def test_six_fields_put_seconds_first() -> None:
    assert fires("*/2 * * * * *", "UTC", "2026-01-01T00:00:00+00:00", 3) == [
        "2026-01-01T00:00:02+00:00",
        "2026-01-01T00:00:04+00:00",
        "2026-01-01T00:00:06+00:00",
    ]
    # "30 0 * * * *": second 30 of minute 0 of every hour, not minute 30.
    assert fires("30 0 * * * *", "UTC", "2026-01-01T00:00:00+00:00", 2) == [
        "2026-01-01T00:00:30+00:00",
        "2026-01-01T01:00:30+00:00",
    ]


def test_wallaroos_six_fields_end_with_a_year() -> None:
    # Wallaroo's documented form: second minute hour day month year.
    noon = "0 0 12 1-15 2 2027"
    assert fires(noon, "UTC", "2026-12-03T00:00:00+00:00", 2) == [
        "2027-02-01T12:00:00+00:00",
        "2027-02-02T12:00:00+00:00",
    ]
    cron = parse_cron(noon, after=at("2026-12-03T00:00:00"))
    assert cron.year and cron.every_hour is False
    assert next_fire(cron, parse_timezone("UTC"), at("2027-02-15T12:00:00")) is None  # all done
    # Years in a range or a list; a seconds-first schedule's weekday field stays a weekday.
    assert fires("30 15 9 1 1 2027,2029", "UTC", "2028-01-01T00:00:00+00:00", 1) == [
        "2029-01-01T09:15:30+00:00"
    ]
    assert fires("0 0 9 * * 5", "UTC", "2026-01-01T00:00:00+00:00", 1) == [
        "2026-01-02T09:00:00+00:00"  # the first Friday
    ]


def test_a_schedule_whose_years_are_past_never_fires_again() -> None:
    with pytest.raises(InvalidRequest, match="never fires again") as caught:
        parse_cron("0 0 12 1-15 2 2024", after=at("2026-12-03T00:00:00"))
    assert caught.value.field == "schedule"
    assert parse_cron("0 0 12 1-15 2 2024", after=at("2024-02-03T00:00:00")).year


def test_newest_fires_of_a_schedule_with_future_years_is_empty() -> None:
    cron, tz = parse_cron("0 0 12 1-15 2 2030"), parse_timezone("UTC")
    assert newest_fires(cron, tz, at("2026-01-01T00:00:00"), at("2026-12-01T00:00:00"), 5) == (
        [],
        False,
    )


def test_macros() -> None:
    assert fires("@hourly", "UTC", "2026-01-01T00:10:00+00:00", 1) == ["2026-01-01T01:00:00+00:00"]
    assert fires("@daily", "UTC", "2026-01-01T00:10:00+00:00", 1) == ["2026-01-02T00:00:00+00:00"]


def test_time_zone_is_the_wall_clock_of_the_schedule() -> None:
    assert fires("0 9 * * *", "America/New_York", "2026-01-05T00:00:00+00:00", 1) == [
        "2026-01-05T09:00:00-05:00"
    ]


def test_spring_forward_neither_skips_nor_doubles() -> None:
    # 2026-03-08 02:00 does not exist in New York: the daily 02:30 run happens once, at 03:00.
    got = fires("30 2 * * *", "America/New_York", "2026-03-07T03:00:00-05:00", 3)
    assert got == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
    ]
    # Every 20 minutes across the gap: each real instant at most once, none lost after it.
    got = fires("*/20 * * * *", "America/New_York", "2026-03-08T01:30:00-05:00", 4)
    assert got == [
        "2026-03-08T01:40:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T03:20:00-04:00",
        "2026-03-08T03:40:00-04:00",
    ]


def test_fall_back_runs_the_repeated_hour_once() -> None:
    # 2026-11-01 01:00-02:00 happens twice in New York: a 01:30 daily run happens once.
    got = fires("30 1 * * *", "America/New_York", "2026-10-31T12:00:00-04:00", 3)
    assert got == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
        "2026-11-03T01:30:00-05:00",
    ]
    instants = [datetime.fromisoformat(t) for t in got]
    assert len(set(instants)) == 3


def test_fall_back_keeps_the_rhythm_of_schedules_that_fire_every_hour() -> None:
    # Every 20 minutes: 01:00-01:40 run both times they happen, never 80 silent minutes.
    got = fires("*/20 * * * *", "America/New_York", "2026-11-01T00:50:00-04:00", 7)
    assert got == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:20:00-04:00",
        "2026-11-01T01:40:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:20:00-05:00",
        "2026-11-01T01:40:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]
    # Hourly: two runs an hour apart at 01:00; from inside the repeated hour, the next one.
    assert fires("@hourly", "America/New_York", "2026-11-01T01:30:00-04:00", 2) == [
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]
    assert fires("* * * * * *", "America/New_York", "2026-11-01T01:59:59-04:00", 2) == [
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:00:01-05:00",
    ]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("* * * *", "has 4 fields"),
        ("* * * * * * *", "has 7 fields"),
        ("61 * * * *", "not a valid cron string"),
        ("@sometimes", "has 1 fields"),
        ("  ", "must not be empty"),
    ],
)
def test_invalid_schedules_name_the_problem(expr: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        parse_cron(expr)
    assert caught.value.field == "schedule"


@pytest.mark.parametrize("expr", ["0 0 31 2 *", "0 0 30 2 *", "0 0 0 31 4,6,9,11 *"])
def test_schedules_that_never_fire_are_refused(expr: str) -> None:
    with pytest.raises(InvalidRequest, match="never fires") as caught:
        parse_cron(expr)
    assert caught.value.field == "schedule"
    assert parse_cron("0 0 29 2 *").expr == "0 0 29 2 *"  # rare, but it fires


@pytest.mark.parametrize("name", ["Mars/Olympus", "Europe", "x" * 5000, "../../etc/passwd", ""])
def test_invalid_time_zone(name: str) -> None:
    with pytest.raises(InvalidRequest, match="not an IANA time zone") as caught:
        parse_timezone(name or " ")
    assert caught.value.field == "timezone"
    assert parse_timezone(None) == ZoneInfo("UTC")


def test_catch_up_runs_only_the_latest_instant_within_the_deadline() -> None:
    cron, tz = parse_cron("* * * * *"), parse_timezone("UTC")
    last, moment = at("2026-01-01T00:00:00"), at("2026-01-01T00:10:30")
    outcome = catch_up(cron, tz, last, moment, deadline_seconds=60)
    assert outcome.run == at("2026-01-01T00:10:00")
    assert outcome.missed == [at(f"2026-01-01T00:{m:02d}:00") for m in range(1, 10)]
    assert outcome.more_missed is False


def test_catch_up_past_the_deadline_runs_nothing() -> None:
    cron, tz = parse_cron("0 * * * *"), parse_timezone("UTC")
    outcome = catch_up(cron, tz, at("2026-01-01T00:00:00"), at("2026-01-01T05:30:00"), 600)
    assert outcome.run is None
    assert len(outcome.missed) == 5 and outcome.more_missed is False


def test_catch_up_records_a_bounded_number_of_missed_instants() -> None:
    cron, tz = parse_cron("* * * * * *"), parse_timezone("UTC")
    start = at("2026-01-01T00:00:00")
    outcome = catch_up(cron, tz, start, start + timedelta(hours=1), 10, keep=100)
    assert outcome.run == start + timedelta(hours=1)
    assert len(outcome.missed) == 100 and outcome.more_missed is True
    assert outcome.missed[-1] == start + timedelta(hours=1) - timedelta(seconds=1)


def test_nothing_missed() -> None:
    cron, tz = parse_cron("0 0 * * *"), parse_timezone("UTC")
    outcome = catch_up(cron, tz, at("2026-01-01T00:00:00"), at("2026-01-01T12:00:00"), 60)
    assert outcome.run is None and outcome.missed == []
    instants, more = newest_fires(cron, tz, at("2026-01-01T00:00:00"), at("2026-01-03T00:00:00"), 5)
    assert not more and instants == [at("2026-01-02T00:00:00"), at("2026-01-03T00:00:00")]


def test_newest_fires_walks_back_from_the_end() -> None:
    """A year of an every-second schedule costs what its newest few instants cost."""
    cron, tz = parse_cron("* * * * * *"), parse_timezone("UTC")
    until = at("2027-01-01T00:00:00.500000")
    instants, more = newest_fires(cron, tz, until - timedelta(days=365), until, 3)
    assert more
    assert instants == [until.replace(microsecond=0) - timedelta(seconds=s) for s in (2, 1, 0)]
    # The span's own ends: `after` excluded, `until` included.
    instants, more = newest_fires(cron, tz, at("2026-01-01T00:00:00"), at("2026-01-01T00:00:02"), 5)
    assert not more and instants == [at("2026-01-01T00:00:01"), at("2026-01-01T00:00:02")]


def test_newest_fires_agrees_with_next_fire_across_daylight_saving() -> None:
    """Walking back gives the instants walking forward gives, gap and repeated hour included."""
    tz = parse_timezone("Europe/Paris")
    for expr in ("*/20 * * * *", "30 2 * * *", "0 * * * *"):
        cron = parse_cron(expr)
        for start, end in (
            ("2026-03-28T20:00:00", "2026-03-30T04:00:00"),
            ("2026-10-24T20:00:00", "2026-10-26T04:00:00"),
        ):
            after, until = at(start), at(end)
            forward, moment = [], next_fire(cron, tz, after)
            while moment <= until:
                forward.append(moment)
                moment = next_fire(cron, tz, moment)
            backward, more = newest_fires(cron, tz, after, until, 1000)
            assert not more and backward == forward, expr


def test_backoff_doubles_from_one_second_to_a_minute() -> None:
    assert [backoff_seconds(n) for n in range(9)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]
