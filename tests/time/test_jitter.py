"""
Deterministic jitter: a pure function of (job id, nominal time), below the gap to the next fire.

Pure: no Django, no clock (every ``now`` is an argument).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from hypothesis import given, settings
from hypothesis import strategies as st

from django_metronome.time.codecs import decode_trigger, encode_trigger
from django_metronome.time.firing import plan_fires
from django_metronome.time.jitter import (
    JitteredTrigger,
    jitter_offset,
    nominal_time,
    with_deterministic_jitter,
)
from django_metronome.time.preview import next_fire_times
from django_metronome.time.triggers import CrontabTrigger, next_fire_time

SEOUL = ZoneInfo("Asia/Seoul")
START = datetime(2026, 3, 1, tzinfo=SEOUL)

keys = st.text(min_size=1, max_size=40)
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=200, deadline=None)
@given(key=keys, nominal=instants, bound_us=st.integers(min_value=0, max_value=10**12))
def test_the_offset_is_pure_and_below_its_bound(key, nominal, bound_us):
    bound = timedelta(microseconds=bound_us)
    offset = jitter_offset(key, nominal, bound)
    assert offset == jitter_offset(key, nominal, bound)
    # The same instant read in another zone gives the same offset.
    assert offset == jitter_offset(key, nominal.astimezone(SEOUL), bound)
    assert timedelta(0) <= offset
    assert offset < bound or bound_us == 0


@settings(max_examples=60, deadline=None)
@given(
    key=keys,
    seconds=st.integers(min_value=1, max_value=7200),
    jitter=st.floats(min_value=0.001, max_value=20_000, allow_nan=False),
    start_offset=st.integers(min_value=0, max_value=10**6),
)
def test_jittered_fires_keep_their_order_and_their_nominal_times(
    key, seconds, jitter, start_offset
):
    inner = IntervalTrigger(seconds=seconds, start_date=START, timezone=SEOUL)
    trigger = JitteredTrigger(inner, jitter, key)
    now = START + timedelta(seconds=start_offset)
    fires = next_fire_times(trigger, 8, now)
    assert len(fires) == 8
    assert fires[0] >= now
    for earlier, later in itertools.pairwise(fires):
        assert earlier < later
    for fire in fires:
        nominal = trigger.nominal_of(fire)
        following = next_fire_time(inner, nominal, nominal)
        assert next_fire_time(inner, None, nominal) == nominal  # a fire of the schedule
        assert nominal <= fire < following  # below the gap to the next nominal fire
        assert fire - nominal < timedelta(seconds=jitter)
    # Another process (a decoded copy) computes the same times.
    copy = decode_trigger(encode_trigger(trigger))
    assert next_fire_times(copy, 8, now) == fires


def test_two_jobs_on_one_schedule_spread_out():
    inner = CrontabTrigger("0 8 * * *", "Asia/Seoul")
    a = next_fire_times(JitteredTrigger(inner, 600, "report-a"), 5, START)
    b = next_fire_times(JitteredTrigger(inner, 600, "report-b"), 5, START)
    assert a != b
    assert all(fire.hour == 8 and fire.minute < 10 for fire in a + b)


def test_a_time_set_by_hand_is_its_own_nominal_time():
    trigger = JitteredTrigger(CrontabTrigger("0 8 * * *", "Asia/Seoul"), 600, "job")
    by_hand = datetime(2026, 3, 2, 13, 17, tzinfo=SEOUL)
    assert trigger.nominal_of(by_hand) == by_hand
    assert nominal_time(trigger, by_hand) is None
    following = trigger.get_next_fire_time(by_hand, by_hand)
    assert trigger.nominal_of(following) == datetime(2026, 3, 3, 8, 0, tzinfo=SEOUL)


def test_apscheduler_jitter_becomes_deterministic_and_is_stored_as_such():
    cron = CronTrigger(hour=8, timezone=SEOUL, jitter=120)
    trigger = with_deterministic_jitter(cron, "the-job")
    assert isinstance(trigger, JitteredTrigger)
    assert cron.jitter is None  # the wrapped trigger is exact
    data = encode_trigger(trigger)
    assert data["type"] == "jittered" and data["jitter"] == 120 and data["key"] == "the-job"
    assert encode_trigger(decode_trigger(data)) == data
    plain = CronTrigger(hour=8, timezone=SEOUL)
    assert with_deterministic_jitter(plain, "x") is plain


def test_a_stored_trigger_of_an_older_release_keeps_its_random_jitter():
    # Rows written before deterministic jitter load unchanged.
    old = {
        "type": "interval",
        "interval": {"days": 0, "seconds": 60, "microseconds": 0},
        "start_date": "2026-03-01T00:00:00+09:00[Asia/Seoul]",
        "end_date": None,
        "timezone": "Asia/Seoul",
        "jitter": 5,
    }
    trigger = decode_trigger(old)
    assert isinstance(trigger, IntervalTrigger) and trigger.jitter == 5
    assert encode_trigger(trigger) == old


def test_jitter_inside_a_combining_trigger_is_refused():
    from apscheduler.triggers.combining import OrTrigger

    combined = OrTrigger([CronTrigger(hour=8, jitter=5), CronTrigger(hour=9)])
    with pytest.raises(ValueError, match="give jitter= to the combining trigger"):
        with_deterministic_jitter(combined, "x")


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "5", True])
def test_bad_jitter_is_refused(bad):
    with pytest.raises((TypeError, ValueError), match="jitter"):
        JitteredTrigger(CronTrigger(hour=8), bad, "x")


def test_the_catch_up_plan_steps_through_jittered_fires():
    trigger = JitteredTrigger(IntervalTrigger(minutes=10, start_date=START), 300, "job")
    first = trigger.get_next_fire_time(None, START)
    now = START + timedelta(minutes=35)
    plan = plan_fires(
        lambda previous, at: next_fire_time(trigger, previous, at),
        first,
        now,
        policy="all",
        grace=None,
        coalesce=False,
    )
    assert [trigger.nominal_of(fire) for fire in plan.run][:3] == [
        START,
        START + timedelta(minutes=10),
        START + timedelta(minutes=20),
    ]
    assert all(fire <= now for fire in plan.run)
    assert plan.next_run_time is not None and plan.next_run_time > now
