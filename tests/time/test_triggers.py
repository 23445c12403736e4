"""CrontabTrigger, the APScheduler cron bridge, and the next-fire dispatcher."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from hypothesis import given, settings
from hypothesis import strategies as st

from django_metronome.crontab import CronError
from django_metronome.serialization import decode_trigger, encode_trigger, trigger_timezone
from django_metronome.triggers import (
    CrontabTrigger,
    TriggerLoopError,
    cron_trigger_as_crontab,
    debian_next_fire_time,
    next_fire_time,
    seek_function,
)
from tests.time.test_properties import transitions

NY = ZoneInfo("America/New_York")
SEOUL = ZoneInfo("Asia/Seoul")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def steps(next_fire: Any, start: datetime, count: int) -> list[str]:
    """The first ``count`` fires from ``start``: (None, now), then (previous, previous)."""
    fire = next_fire(None, start)
    result = []
    while fire is not None and len(result) < count:
        result.append(fire.isoformat())
        fire = next_fire(fire, fire)
    return result


# --- CrontabTrigger ----------------------------------------------------------------------


def test_first_fire_may_be_now_and_later_ones_follow_the_previous() -> None:
    trigger = CrontabTrigger("0 8 * * *", "Asia/Seoul")
    eight = at("2026-01-01T08:00:00+09:00")
    assert trigger.get_next_fire_time(None, eight) == eight
    assert trigger.get_next_fire_time(None, eight + timedelta(microseconds=1)) == eight + timedelta(
        days=1
    )
    assert trigger.get_next_fire_time(eight, eight) == eight + timedelta(days=1)
    # Catching up: the fire after the previous one, even if that is before now.
    assert trigger.get_next_fire_time(eight, eight + timedelta(days=5)) == eight + timedelta(days=1)


def test_fires_come_back_in_the_trigger_zone() -> None:
    fire = CrontabTrigger("0 8 * * *", "Asia/Seoul").get_next_fire_time(
        None, at("2026-01-01T00:00Z")
    )
    assert fire is not None
    assert fire.tzinfo is SEOUL
    assert fire.isoformat() == "2026-01-02T08:00:00+09:00"


def test_dst_rules_apply() -> None:
    trigger = CrontabTrigger("30 2 * * *", NY)
    assert steps(trigger.get_next_fire_time, at("2026-03-07T12:00-05:00"), 2) == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]


def test_time_zone_forms() -> None:
    assert CrontabTrigger("* * * * *").timezone == ZoneInfo("UTC")
    assert CrontabTrigger("* * * * *", None).timezone == ZoneInfo("UTC")
    assert CrontabTrigger("* * * * *", "Asia/Seoul").timezone is SEOUL
    assert CrontabTrigger("* * * * *", SEOUL).timezone is SEOUL
    assert CrontabTrigger("* * * * *", UTC).timezone == ZoneInfo("UTC")
    with pytest.raises(CronError, match="Unknown time zone 'Asia/Nowhere'"):
        CrontabTrigger("* * * * *", "Asia/Nowhere")


def test_bad_expressions_are_refused() -> None:
    with pytest.raises(CronError, match="the minute field has 61"):
        CrontabTrigger("61 * * * *")


def test_text_forms() -> None:
    trigger = CrontabTrigger("0  8 * * mon-fri", "Asia/Seoul")
    assert trigger.expression == "0 8 * * mon-fri"
    assert str(trigger) == "crontab[0 8 * * mon-fri, Asia/Seoul]"
    assert repr(trigger) == "CrontabTrigger('0 8 * * mon-fri', timezone='Asia/Seoul')"
    assert trigger.describe() == "At 08:00 on Monday through Friday (Asia/Seoul)"
    assert str(CrontabTrigger("@daily")) == "crontab[@daily, UTC]"
    assert trigger.cron.is_fixed_time


def test_equality_and_hash() -> None:
    a = CrontabTrigger("0 8 * * *", "Asia/Seoul")
    assert a == CrontabTrigger("0 8 * * *", SEOUL)
    assert hash(a) == hash(CrontabTrigger("0 8 * * *", SEOUL))
    assert CrontabTrigger("@daily") == CrontabTrigger("0 0 * * *")
    assert a != CrontabTrigger("0 8 * * *", "Asia/Tokyo")
    assert a != CrontabTrigger("0 9 * * *", "Asia/Seoul")
    assert a != "crontab[0 8 * * *, Asia/Seoul]"


def test_pickle_round_trip() -> None:
    trigger = CrontabTrigger("*/5 9-17 * * 1-5", "Europe/Berlin")
    copy = pickle.loads(pickle.dumps(trigger))
    assert copy == trigger
    assert copy.expression == trigger.expression
    assert trigger.__getstate__() == {
        "version": 1,
        "expression": "*/5 9-17 * * 1-5",
        "timezone": "Europe/Berlin",
    }


def test_state_from_a_newer_release_is_refused() -> None:
    trigger = CrontabTrigger.__new__(CrontabTrigger)
    with pytest.raises(ValueError, match="version 2 of CrontabTrigger, but only version 1"):
        trigger.__setstate__({"version": 2, "expression": "* * * * *", "timezone": "UTC"})


def test_json_codec_round_trip() -> None:
    trigger = CrontabTrigger("@daily", "America/Santiago")
    data = encode_trigger(trigger)
    assert data == {"type": "crontab", "expression": "@daily", "timezone": "America/Santiago"}
    restored = decode_trigger(data)
    assert isinstance(restored, CrontabTrigger)
    assert restored == trigger
    assert str(restored) == "crontab[@daily, America/Santiago]"
    assert trigger_timezone(restored) == ZoneInfo("America/Santiago")


def test_json_codec_inside_combining_triggers() -> None:
    trigger = OrTrigger(
        [CrontabTrigger("0 8 * * *", "Asia/Seoul"), CronTrigger(hour=9, timezone=UTC)]
    )
    restored = decode_trigger(encode_trigger(trigger))
    assert isinstance(restored, OrTrigger)
    assert restored.triggers[0] == CrontabTrigger("0 8 * * *", "Asia/Seoul")


def test_json_codec_refuses_a_bad_stored_expression() -> None:
    with pytest.raises(CronError, match="the hour field has 25"):
        decode_trigger({"type": "crontab", "expression": "0 25 * * *", "timezone": "UTC"})


def test_works_in_an_apscheduler_scheduler() -> None:
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        job = scheduler.add_job(print, CrontabTrigger("0 8 * * *", "Asia/Seoul"), id="seoul")
        assert job.next_run_time is not None
        assert job.next_run_time.tzinfo is SEOUL
        assert (job.next_run_time.hour, job.next_run_time.minute) == (8, 0)
        assert "trigger: crontab[0 8 * * *, Asia/Seoul]" in str(job)
    finally:
        scheduler.shutdown(wait=False)


# --- cron_trigger_as_crontab -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "crontab"),
    [
        ({"hour": 8}, "0 8 * * *"),
        ({"hour": 8, "minute": 10}, "10 8 * * *"),
        ({"minute": "*/5"}, "*/5 * * * *"),
        ({"minute": "5/15"}, "5/15 * * * *"),
        ({"hour": "*/2"}, "0 */2 * * *"),  # stays a wildcard job
        ({"hour": "0-23/2"}, "0 0-23/2 * * *"),  # stays a fixed-time job
        ({"hour": "8,17", "minute": "0,30"}, "0,30 8,17 * * *"),
        ({"day_of_week": "mon-fri", "hour": 8}, "0 8 * * 1-5"),
        ({"day_of_week": "sat,sun", "hour": 8}, "0 8 * * 6-7"),
        ({"day_of_week": "sun", "hour": 8}, "0 8 * * 7"),
        ({"day_of_week": 0, "hour": 8}, "0 8 * * 1"),  # APScheduler's 0 is Monday
        ({"day_of_week": "4-6", "hour": 8}, "0 8 * * 5-7"),
        ({"day_of_week": "*/2", "hour": 8}, "0 8 * * 1,3,5,7"),  # Mon, Wed, Fri, Sun
        ({"day_of_week": "mon-sun", "hour": 8}, "0 8 * * *"),
        ({"day": "*/2", "day_of_week": "fri"}, "0 0 */2 * 5"),  # AND in both
        ({"day": "1-31", "day_of_week": "mon"}, "0 0 * * 1"),
        ({"month": "jan-mar"}, "0 0 1 1-3 *"),
        ({"month": "6", "day": 15, "hour": 12}, "0 12 15 6 *"),
        ({"year": "*", "week": "*", "hour": 8}, "0 8 * * *"),
    ],
)
def test_plain_cron_triggers_have_a_crontab(fields: dict[str, Any], crontab: str) -> None:
    assert cron_trigger_as_crontab(CronTrigger(**fields, timezone=UTC)) == crontab


@pytest.mark.parametrize(
    "fields",
    [
        {"day": "last"},
        {"day": "2nd fri"},
        {"day": "last fri"},
        {"second": "*/10"},
        {"second": 30, "hour": 8},
        {},  # every second
        {"year": 2026},
        {"week": 1},
        {"day": 1, "day_of_week": "mon"},  # APScheduler ANDs these, cron would OR them
        {"day_of_week": "*/2", "day": "1-7"},
        {"day": 31, "month": 2},  # never fires
    ],
)
def test_other_cron_triggers_have_none(fields: dict[str, Any]) -> None:
    assert cron_trigger_as_crontab(CronTrigger(**fields, timezone=UTC)) is None


# --- debian_next_fire_time -------------------------------------------------------------------


def debian(trigger: CronTrigger) -> Any:
    return lambda previous, now: debian_next_fire_time(trigger, previous, now)


def test_reference_usage_gets_debian_dst_rules() -> None:
    spring = CronTrigger(hour=2, minute=30, timezone=NY)
    assert steps(debian(spring), at("2026-03-07T12:00-05:00"), 2) == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]
    fall = CronTrigger(hour=1, minute=30, timezone=NY)
    assert steps(debian(fall), at("2026-10-31T12:00-04:00"), 2) == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]
    wildcard = CronTrigger(minute=30, timezone=NY)
    assert steps(debian(wildcard), at("2026-11-01T01:00-04:00"), 3) == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-01T02:30:00-05:00",
    ]


def test_results_are_in_the_trigger_zone() -> None:
    fire = debian_next_fire_time(
        CronTrigger(hour=8, timezone="UTC"), None, at("2026-01-01T09:00+09:00")
    )
    assert fire is not None
    assert fire.tzinfo is UTC  # APScheduler turns "UTC" into datetime.timezone.utc
    assert fire.isoformat() == "2026-01-01T08:00:00+00:00"


def test_start_and_end_dates_are_inclusive() -> None:
    trigger = CronTrigger(
        hour=8,
        start_date=at("2026-01-05T08:00+09:00"),
        end_date=at("2026-01-07T08:00+09:00"),
        timezone=SEOUL,
    )
    assert steps(debian(trigger), at("2026-01-01T00:00+09:00"), 5) == [
        "2026-01-05T08:00:00+09:00",
        "2026-01-06T08:00:00+09:00",
        "2026-01-07T08:00:00+09:00",
    ]
    # start_date holds even when a previous fire before it is passed in.
    assert debian_next_fire_time(
        trigger, at("2026-01-01T08:00+09:00"), at("2026-01-01T08:00+09:00")
    ) == at("2026-01-05T08:00+09:00")


def test_jitter_is_applied_and_clamped_to_the_end_date() -> None:
    trigger = CronTrigger(hour=8, jitter=30, timezone=UTC)
    for _ in range(20):
        fire = debian_next_fire_time(trigger, None, at("2026-01-01T00:00Z"))
        assert fire is not None
        assert at("2026-01-01T08:00Z") <= fire <= at("2026-01-01T08:00:30Z")
    clamped = CronTrigger(hour=8, jitter=3600, end_date=at("2026-01-01T08:00:01Z"), timezone=UTC)
    for _ in range(20):
        fire = debian_next_fire_time(clamped, None, at("2026-01-01T00:00Z"))
        assert fire is not None
        assert at("2026-01-01T08:00Z") <= fire <= at("2026-01-01T08:00:01Z")


@pytest.mark.parametrize(
    "trigger",
    [
        CronTrigger(day="last fri", hour=8, timezone=NY),
        CronTrigger(second="*/20", minute=0, timezone=NY),
        CronTrigger(day=13, day_of_week="fri", timezone=NY),
        CronTrigger(hour=8, timezone=timezone(timedelta(hours=9))),  # no IANA name
    ],
    ids=["last-fri", "seconds", "day-and-weekday", "fixed-offset"],
)
def test_other_cron_triggers_keep_apschedulers_evaluation(trigger: CronTrigger) -> None:
    start = at("2026-01-01T00:00-05:00")
    assert steps(debian(trigger), start, 6) == steps(trigger.get_next_fire_time, start, 6)


# --- next_fire_time ---------------------------------------------------------------------------


def dispatch(trigger: BaseTrigger) -> Any:
    return lambda previous, now: next_fire_time(trigger, previous, now)


def test_dispatcher_passes_other_triggers_through() -> None:
    interval = IntervalTrigger(hours=1, start_date=at("2026-01-01T00:00Z"))
    start = at("2026-01-01T00:30Z")
    assert steps(dispatch(interval), start, 3) == steps(interval.get_next_fire_time, start, 3)
    crontab = CrontabTrigger("30 2 * * *", NY)
    assert steps(dispatch(crontab), start, 3) == steps(crontab.get_next_fire_time, start, 3)


def test_or_trigger_children_get_debian_rules() -> None:
    trigger = OrTrigger(
        [CronTrigger(hour=2, minute=30, timezone=NY), CronTrigger(hour=12, timezone=NY)]
    )
    assert steps(dispatch(trigger), at("2026-03-07T13:00-05:00"), 3) == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T12:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]


def test_and_trigger_moves_on_where_apscheduler_would_hang() -> None:
    # APScheduler 3.11's AndTrigger keeps asking its cron triggers for the fire
    # after previous_fire_time, gets the same disagreeing answers, and loops.
    first_monday = AndTrigger(
        [CronTrigger(day_of_week="mon", timezone=UTC), CronTrigger(day="1-7", timezone=UTC)]
    )
    assert steps(dispatch(first_monday), at("2026-01-01T00:00Z"), 3) == [
        "2026-01-05T00:00:00+00:00",
        "2026-02-02T00:00:00+00:00",
        "2026-03-02T00:00:00+00:00",
    ]


def test_and_trigger_that_never_agrees_raises() -> None:
    never = AndTrigger([DateTrigger(at("2026-01-01T00:00Z")), DateTrigger(at("2026-01-02T00:00Z"))])
    with pytest.raises(TriggerLoopError, match="found no time all its triggers agree on in 10000"):
        next_fire_time(never, None, at("2025-12-01T00:00Z"))


def test_and_trigger_ends_when_a_child_ends() -> None:
    trigger = AndTrigger([CronTrigger(hour=8, timezone=UTC), DateTrigger(at("2026-01-02T08:00Z"))])
    assert steps(dispatch(trigger), at("2026-01-01T00:00Z"), 5) == ["2026-01-02T08:00:00+00:00"]


# --- seek_function ---------------------------------------------------------------------------


def test_seek_function_only_for_history_free_triggers() -> None:
    assert seek_function(CrontabTrigger("* * * * *")) is not None
    assert seek_function(CronTrigger(hour=8)) is not None
    assert seek_function(IntervalTrigger(seconds=5)) is not None
    assert seek_function(OrTrigger([CronTrigger(hour=8), IntervalTrigger(seconds=5)])) is not None
    assert seek_function(CronTrigger(hour=8, jitter=5)) is None
    assert seek_function(IntervalTrigger(seconds=5, jitter=1)) is None
    assert seek_function(DateTrigger(at("2026-01-01T00:00Z"))) is None
    assert seek_function(CalendarIntervalTrigger(days=1, timezone=UTC)) is None
    assert (
        seek_function(OrTrigger([CronTrigger(hour=8), DateTrigger(at("2026-01-01T00:00Z"))]))
        is None
    )


def test_seek_is_the_first_fire_at_or_after() -> None:
    seek = seek_function(CrontabTrigger("*/15 * * * *"))
    assert seek is not None
    assert seek(at("2026-01-01T00:15Z")) == at("2026-01-01T00:15Z")
    assert seek(at("2026-01-01T00:15:01Z")) == at("2026-01-01T00:30Z")


# --- agreement, property-based ---------------------------------------------------------------

WEEKDAYS = [  # (APScheduler, crontab): the same days
    ("mon-fri", "MON-FRI"),
    ("sat,sun", "SAT,SUN"),
    ("0", "1"),
    ("6", "0"),
    ("4-6", "5-7"),
    ("tue,thu", "2,4"),
]


@st.composite
def plain_schedules(draw: st.DrawFn, high: int) -> str:
    kind = draw(
        st.sampled_from(["star", "step", "value", "range", "range-step", "start-step", "list"])
    )
    if kind == "star":
        return "*"
    if kind == "step":
        return f"*/{draw(st.integers(1, high // 2))}"
    if kind == "value":
        return str(draw(st.integers(0, high)))
    first = draw(st.integers(0, high - 2))
    last = draw(st.integers(first + 1, high))
    if kind == "range":
        return f"{first}-{last}"
    if kind == "range-step":
        return f"{first}-{last}/{draw(st.integers(1, last - first))}"
    if kind == "start-step":
        return f"{first}/{draw(st.integers(1, high - first))}"
    values = draw(st.lists(st.integers(0, high), min_size=2, max_size=4, unique=True))
    return ",".join(map(str, values))


@st.composite
def equivalent_pairs(draw: st.DrawFn) -> tuple[dict[str, str], str]:
    """An APScheduler CronTrigger's fields and the crontab string meaning the same."""
    minute = draw(plain_schedules(59))
    hour = draw(plain_schedules(23))
    day = draw(st.sampled_from(["*", "*", "*/2", "10", "1-15", "28-31"]))
    month = draw(st.sampled_from(["*", "*", "3", "10-12", "*/3"]))
    aps_dow, cron_dow = draw(st.sampled_from([("*", "*"), ("*", "*"), *WEEKDAYS]))
    if not day.startswith("*") and aps_dow != "*":
        day = "*"  # both restricted: APScheduler ANDs them, cron ORs them
    fields = {"minute": minute, "hour": hour, "day": day, "month": month, "day_of_week": aps_dow}
    return fields, f"{minute} {hour} {day} {month} {cron_dow}"


DST_ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
]


@settings(max_examples=150, deadline=None)
@given(
    pair=equivalent_pairs(),
    zone=st.sampled_from(DST_ZONES),
    which=st.integers(0, 100),
    offset=st.integers(-6 * 3600, 3600),
)
def test_crontab_trigger_and_debian_cron_path_agree(
    pair: tuple[dict[str, str], str], zone: str, which: int, offset: int
) -> None:
    fields, crontab = pair
    moments = transitions(zone)
    start = moments[which % len(moments)] + timedelta(seconds=offset)
    cron = CronTrigger(**fields, timezone=zone)
    assert cron_trigger_as_crontab(cron) is not None
    crontab_trigger = CrontabTrigger(crontab, zone)
    assert steps(debian(cron), start, 8) == steps(crontab_trigger.get_next_fire_time, start, 8)


@settings(max_examples=150, deadline=None)
@given(
    pair=equivalent_pairs(),
    zone=st.sampled_from(["UTC", "Asia/Tokyo", "Asia/Kolkata"]),  # no DST since 1951
    start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31)),
)
def test_crontab_trigger_and_apscheduler_agree_without_dst(
    pair: tuple[dict[str, str], str], zone: str, start: datetime
) -> None:
    fields, crontab = pair
    now = start.replace(tzinfo=ZoneInfo(zone))
    cron = CronTrigger(**fields, timezone=zone)
    crontab_trigger = CrontabTrigger(crontab, zone)
    expected = steps(cron.get_next_fire_time, now, 8)
    assert steps(crontab_trigger.get_next_fire_time, now, 8) == expected
    assert steps(debian(cron), now, 8) == expected
