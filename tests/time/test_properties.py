"""
Properties of next_after over every DST transition of a set of zones, 2020-2035.

The oracle below is written independently of the implementation: it lists the
matching wall times (cronsim on naive datetimes, i.e. no time zone at all) and
places them on the time line by the Debian rules directly, by brute force.
"""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import given, settings
from hypothesis import strategies as st

from django_metronome.crontab import next_after, parse

ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Europe/Dublin",  # "negative" DST in tzdata: winter is the saving time
    "America/Santiago",  # changes at midnight
    "America/Havana",  # changes at midnight
    "Asia/Tehran",  # changes at midnight (DST until 2022)
    "Australia/Lord_Howe",  # 30-minute shift
    "Pacific/Chatham",  # +12:45 / +13:45
    "Africa/Casablanca",  # suspends DST for Ramadan: four changes some years
    "Asia/Gaza",  # frequent rule changes
    "Pacific/Apia",  # DST until 2021
]


@functools.cache
def transitions(zone: str) -> tuple[datetime, ...]:
    """Every instant (UTC) at which ``zone`` changes its offset, 2020-2035."""
    tz = ZoneInfo(zone)
    found = []
    step = timedelta(hours=12)
    moment = datetime(2020, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(tz).utcoffset()
    while moment < datetime(2036, 1, 1, tzinfo=UTC):
        later = moment + step
        if later.astimezone(tz).utcoffset() != offset:
            low, high = moment, later  # offset(low) == offset != offset(high)
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(tz).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            found.append(high.replace(microsecond=0))
            offset = later.astimezone(tz).utcoffset()
        moment = later
    return tuple(found)


ALL_TRANSITIONS = [(zone, moment) for zone in ZONES for moment in transitions(zone)]


def test_the_zone_set_has_transitions_of_every_kind() -> None:
    assert len(ALL_TRANSITIONS) > 250
    shifts = set()
    for zone, moment in ALL_TRANSITIONS:
        tz = ZoneInfo(zone)
        shifts.add(
            moment.astimezone(tz).utcoffset()
            - (moment - timedelta(seconds=1)).astimezone(tz).utcoffset()  # type: ignore[operator]
        )
    assert {timedelta(minutes=30), timedelta(minutes=-30)} <= shifts  # Lord Howe
    assert {timedelta(hours=1), timedelta(hours=-1)} <= shifts


# --- the oracle ---------------------------------------------------------------------------


def exists(wall: datetime, tz: ZoneInfo) -> bool:
    aware = wall.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall


def oracle(expression: str, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """All fires in (start, end], UTC, by the Debian rules applied by brute force."""
    expr = parse(expression)
    margin = timedelta(hours=3)
    wall = start.astimezone(tz).replace(tzinfo=None) - margin
    last_wall = end.astimezone(tz).replace(tzinfo=None) + margin
    instants: set[datetime] = set()
    for match in CronSim(expr.text, wall):
        if match > last_wall:
            break
        if expr.is_fixed_time:
            # The first occurrence; a missing wall time moves to the next
            # existing minute, i.e. the end of the gap.
            slot = match
            if not exists(slot, tz):
                slot = slot.replace(second=0)
                while not exists(slot, tz):
                    slot += timedelta(minutes=1)
            instants.add(slot.replace(tzinfo=tz, fold=0).astimezone(UTC))
        else:
            # Every real instant whose wall time matches: none in a gap, two in a fold.
            for fold in (0, 1):
                instant = match.replace(tzinfo=tz, fold=fold).astimezone(UTC)
                if instant.astimezone(tz).replace(tzinfo=None) == match:
                    instants.add(instant)
    return sorted(i for i in instants if start < i <= end)


def walk(expression: str, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """next_after from ``start`` until past ``end``, checking each step's basic promises."""
    result = []
    after = start
    while True:
        fire = next_after(expression, tz, after)
        assert fire is not None
        assert fire.tzinfo is tz
        assert fire.astimezone(UTC) > after.astimezone(UTC)  # strictly increasing
        # Never a wall time that does not exist, and the fold says which pass.
        canonical = fire.astimezone(UTC).astimezone(tz)
        assert (fire.replace(tzinfo=None), fire.fold) == (
            canonical.replace(tzinfo=None),
            canonical.fold,
        )
        if fire.astimezone(UTC) > end:
            return result
        result.append(fire.astimezone(UTC))
        after = fire


def test_the_oracle_knows_the_rules() -> None:
    tz = ZoneInfo("America/New_York")
    start = datetime.fromisoformat("2026-03-08T00:00-05:00")
    end = start + timedelta(hours=5)
    assert [f.astimezone(tz).isoformat() for f in oracle("30 2 * * *", tz, start, end)] == [
        "2026-03-08T03:00:00-04:00"
    ]
    fall = datetime.fromisoformat("2026-11-01T00:00-04:00")
    # 00:30 EDT, 01:30 EDT, 01:30 EST, 02:30 EST: four real hours.
    assert len(oracle("30 * * * *", tz, fall, fall + timedelta(hours=4))) == 4
    assert len(oracle("30 1 * * *", tz, fall, fall + timedelta(hours=4))) == 1


# --- properties ----------------------------------------------------------------------------


def minute_or_second_field() -> st.SearchStrategy[str]:
    return st.one_of(
        st.just("*"),
        st.integers(1, 30).map(lambda n: f"*/{n}"),
        st.integers(0, 59).map(str),
        st.tuples(st.integers(0, 59), st.integers(0, 59)).map(lambda ab: f"{min(ab)}-{max(ab)}"),
        st.lists(st.integers(0, 59), min_size=2, max_size=4, unique=True).map(
            lambda items: ",".join(map(str, items))
        ),
        st.tuples(st.integers(0, 30), st.integers(5, 30)).map(lambda a: f"{a[0]}/{a[1]}"),
    )


def hour_field() -> st.SearchStrategy[str]:
    return st.one_of(
        st.just("*"),
        st.integers(1, 6).map(lambda n: f"*/{n}"),
        st.integers(0, 23).map(str),
        st.tuples(st.integers(0, 23), st.integers(0, 23)).map(lambda ab: f"{min(ab)}-{max(ab)}"),
        st.tuples(st.integers(0, 23), st.integers(0, 23), st.integers(1, 4)).map(
            lambda a: f"{min(a[:2])}-{max(a[:2])}/{a[2]}"
        ),
        st.lists(st.integers(0, 23), min_size=2, max_size=4, unique=True).map(
            lambda items: ",".join(map(str, items))
        ),
    )


@st.composite
def expressions(draw: st.DrawFn) -> str:
    minute = draw(minute_or_second_field())
    hour = draw(hour_field())
    dow = draw(st.sampled_from(["*", "*", "*", "1-5", "0,6", "SUN", "MON-SAT"]))
    dom = draw(st.sampled_from(["*", "*", "*", "1-15", "*/2"]))
    if draw(st.booleans()):
        second = draw(st.sampled_from(["0", "30", "*/20", "5,45"]))
        return f"{second} {minute} {hour} {dom} * {dow}"
    return f"{minute} {hour} {dom} * {dow}"


@settings(max_examples=300, deadline=None)
@given(
    transition=st.sampled_from(ALL_TRANSITIONS),
    expression=expressions(),
    offset=st.integers(-3 * 3600, 3600),
)
def test_next_after_matches_the_oracle_around_transitions(
    transition: tuple[str, datetime], expression: str, offset: int
) -> None:
    zone, moment = transition
    tz = ZoneInfo(zone)
    start = moment + timedelta(seconds=offset)
    end = moment + timedelta(hours=2)
    assert walk(expression, tz, start, end) == oracle(expression, tz, start, end)


@settings(max_examples=60, deadline=None)
@given(
    transition=st.sampled_from(ALL_TRANSITIONS),
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    seconds=st.booleans(),
)
def test_fixed_daily_jobs_match_the_oracle(
    transition: tuple[str, datetime], minute: int, hour: int, seconds: bool
) -> None:
    zone, moment = transition
    tz = ZoneInfo(zone)
    expression = f"{'0 ' if seconds else ''}{minute} {hour} * * *"
    start, end = moment - timedelta(days=2), moment + timedelta(days=2)
    assert walk(expression, tz, start, end) == oracle(expression, tz, start, end)


def daily_times_at_risk(zone: str, moment: datetime) -> list[tuple[int, int]]:
    """(hour, minute) of daily jobs that land where a transition moves the clock."""
    tz = ZoneInfo(zone)
    before = (moment - timedelta(seconds=1)).astimezone(tz) + timedelta(seconds=1)
    after = moment.astimezone(tz)
    early = min(before.replace(tzinfo=None), after.replace(tzinfo=None))
    late = max(before.replace(tzinfo=None), after.replace(tzinfo=None))
    middle = early + (late - early) / 2
    return sorted(
        {(t.hour, t.minute) for t in (early, middle, late - timedelta(minutes=1))} | {(12, 0)}
    )


@pytest.mark.parametrize("zone", ZONES)
def test_a_fixed_time_daily_job_fires_once_per_local_day(zone: str) -> None:
    tz = ZoneInfo(zone)
    for moment in transitions(zone):
        for hour, minute in daily_times_at_risk(zone, moment):
            expression = f"{minute} {hour} * * *"
            first_day = moment.astimezone(tz).date() - timedelta(days=2)
            midnight = datetime.combine(first_day, datetime.min.time(), tz).astimezone(UTC)
            start = midnight - timedelta(seconds=1)  # walk() excludes its start
            fires = walk(expression, tz, start, midnight + timedelta(days=6))
            days = [fire.astimezone(tz).date() for fire in fires]
            expected = [first_day + timedelta(days=n) for n in range(5)]
            assert days[:5] == expected, (zone, moment, expression, fires)
            assert len(set(days)) == len(days), (zone, moment, expression, fires)


@settings(max_examples=100, deadline=None)
@given(
    transition=st.sampled_from(ALL_TRANSITIONS),
    step=st.sampled_from([1, 5, 15, 30]),
)
def test_wildcard_jobs_keep_real_time_cadence(transition: tuple[str, datetime], step: int) -> None:
    # */N minutes fires every N real minutes through any transition that shifts
    # by whole multiples of N minutes (all of ours shift by 30 or 60).
    zone, moment = transition
    tz = ZoneInfo(zone)
    shift = abs(
        moment.astimezone(tz).utcoffset()
        - (moment - timedelta(seconds=1)).astimezone(tz).utcoffset()  # type: ignore[operator]
    )
    if shift % timedelta(minutes=step):
        return
    start = moment - timedelta(hours=2)
    fires = walk(f"*/{step} * * * *", tz, start, moment + timedelta(hours=2))
    gaps = {b - a for a, b in itertools.pairwise(fires)}
    assert gaps == {timedelta(minutes=step)}


def test_every_transition_day_is_covered_for_a_midnight_job() -> None:
    # Santiago, Havana and Tehran change the clock at midnight: @daily must still
    # run on each of those days, once.
    for zone in ("America/Santiago", "America/Havana", "Asia/Tehran"):
        tz = ZoneInfo(zone)
        for moment in transitions(zone):
            day: date = (moment + timedelta(hours=1)).astimezone(tz).date()
            start = moment - timedelta(days=1)
            fires = walk("@daily", tz, start, start + timedelta(days=3))
            on_day = [f for f in fires if f.astimezone(tz).date() == day]
            assert len(on_day) == 1, (zone, moment, fires)
