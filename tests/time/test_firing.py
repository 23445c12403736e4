"""plan_fires: which due fires run, which are missed, which are folded away."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from hypothesis import given, settings
from hypothesis import strategies as st

from django_metronome.firing import MISFIRE_POLICIES, FirePlan, plan_fires
from django_metronome.time import firing
from django_metronome.triggers import CrontabTrigger, seek_function

MINUTE = timedelta(minutes=1)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
EVERY_MINUTE = CrontabTrigger("* * * * *").get_next_fire_time


def minutes(*offsets: int) -> tuple[datetime, ...]:
    return tuple(T0 + n * MINUTE for n in offsets)


def plan(now_offset: float, **options: object) -> FirePlan:
    """Plan an every-minute job whose next run was T0, at T0 + now_offset minutes."""
    options.setdefault("grace", timedelta(seconds=90))
    options.setdefault("coalesce", False)
    return plan_fires(EVERY_MINUTE, T0, T0 + now_offset * MINUTE, **options)  # type: ignore[arg-type]


def test_nothing_due() -> None:
    result = plan(-0.5)
    assert result == FirePlan(run=(), missed=(), skipped=(), next_run_time=T0, summary="")


def test_a_fire_exactly_at_now_is_due() -> None:
    result = plan(0)
    assert result.run == minutes(0)
    assert result.next_run_time == T0 + MINUTE


def test_on_time_fires_all_run() -> None:
    # now = T0+1.5 min, grace 90 s: T0 (90 s late) and T0+1 are on time.
    result = plan(1.5)
    assert result.run == minutes(0, 1)
    assert result.missed == ()
    assert result.skipped == ()
    assert result.next_run_time == T0 + 2 * MINUTE


def test_coalesce_runs_the_latest_on_time_fire() -> None:
    result = plan(1.5, coalesce=True)
    assert result.run == minutes(1)
    assert result.skipped == minutes(0)
    assert result.missed == ()


def test_once_runs_the_latest_misfire_when_nothing_is_on_time() -> None:
    # now = T0+4.5, grace 10 s: every due fire (T0..T0+4) is late.
    result = plan(4.5, grace=timedelta(seconds=10))
    assert result.run == minutes(4)
    assert result.missed == tuple((fire, T0 + 4.5 * MINUTE - fire) for fire in minutes(0, 1, 2, 3))
    assert result.missed[0][1] == timedelta(minutes=4, seconds=30)
    assert result.skipped == ()
    assert result.next_run_time == T0 + 5 * MINUTE


def test_once_misses_every_misfire_when_an_on_time_fire_runs() -> None:
    result = plan(4.5, grace=timedelta(seconds=40))  # T0+4 is 30 s late: on time
    assert result.run == minutes(4)
    assert [fire for fire, _ in result.missed] == list(minutes(0, 1, 2, 3))


def test_all_runs_each_misfire_up_to_the_limit() -> None:
    result = plan(6.5, grace=timedelta(seconds=10), policy="all", max_catch_up=3)
    assert result.run == minutes(4, 5, 6)
    assert [fire for fire, _ in result.missed] == list(minutes(0, 1, 2, 3))
    everything = plan(6.5, grace=timedelta(seconds=10), policy="all")
    assert everything.run == minutes(0, 1, 2, 3, 4, 5, 6)
    assert everything.missed == ()


def test_all_with_on_time_fires_and_coalesce() -> None:
    # Coalescing folds on-time fires only; late ones still run one by one under "all".
    result = plan(6.5, grace=timedelta(seconds=100), policy="all", coalesce=True, max_catch_up=2)
    assert result.run == minutes(3, 4, 6)
    assert result.skipped == minutes(5)
    assert [fire for fire, _ in result.missed] == list(minutes(0, 1, 2))


def test_skip_misses_every_misfire() -> None:
    result = plan(6.5, grace=timedelta(seconds=100), policy="skip")
    assert result.run == minutes(5, 6)
    assert [fire for fire, _ in result.missed] == list(minutes(0, 1, 2, 3, 4))
    late = plan(6.5, grace=timedelta(seconds=10), policy="skip")
    assert late.run == ()
    assert len(late.missed) == 7
    assert late.next_run_time == T0 + 7 * MINUTE


def test_no_grace_limit_means_every_fire_is_on_time() -> None:
    result = plan(600.5, grace=None, coalesce=True)
    assert result.run == minutes(600)
    assert len(result.skipped) == 600
    assert result.missed == ()


def test_zero_grace_means_only_a_fire_at_now_is_on_time() -> None:
    assert plan(3, grace=timedelta(0)).run == minutes(3)
    assert [fire for fire, _ in plan(3, grace=timedelta(0)).missed] == list(minutes(0, 1, 2))


def test_the_schedule_ending_gives_no_next_run_time() -> None:
    trigger = DateTrigger(T0)
    result = plan_fires(trigger.get_next_fire_time, T0, T0 + MINUTE, grace=None, coalesce=True)
    assert result.run == (T0,)
    assert result.next_run_time is None


def test_more_due_fires_than_listed_are_summarised() -> None:
    result = plan(11.5, grace=timedelta(seconds=10), max_listed=5)
    assert result.run == minutes(11)
    assert [fire for fire, _ in result.missed] == list(minutes(7, 8, 9, 10))
    assert result.summary == (
        "7 further missed fires between 2026-01-01T12:00:00+00:00 and "
        "2026-01-01T12:06:00+00:00 are not listed."
    )
    assert result.next_run_time == T0 + 12 * MINUTE


def test_a_single_unlisted_fire() -> None:
    result = plan(5.5, grace=timedelta(seconds=10), max_listed=5)
    assert result.summary == (
        "1 further missed fire between 2026-01-01T12:00:00+00:00 and "
        "2026-01-01T12:00:00+00:00 is not listed."
    )


def test_many_one_second_fires_are_stepped_through_by_default() -> None:
    trigger = IntervalTrigger(seconds=1, start_date=T0)
    now = T0 + timedelta(hours=2)
    result = plan_fires(
        trigger.get_next_fire_time, T0, now, grace=timedelta(seconds=10), coalesce=True
    )
    assert result.run == (now,)
    assert len(result.skipped) == 10
    assert len(result.missed) == 1000 - 11
    assert result.summary == (
        "6201 further missed fires between 2026-01-01T12:00:00+00:00 and "
        "2026-01-01T13:43:20+00:00 are not listed."
    )
    assert result.next_run_time == now + timedelta(seconds=1)


def test_seek_jumps_over_a_week_of_one_second_fires() -> None:
    trigger = CrontabTrigger("* * * * * *")
    now = T0 + timedelta(days=7)
    started = time.perf_counter()
    result = plan_fires(
        trigger.get_next_fire_time,
        T0,
        now,
        grace=timedelta(seconds=10),
        coalesce=True,
        seek=seek_function(trigger),
    )
    assert time.perf_counter() - started < 2  # stepping would take ~10 s
    assert result.run == (now,)
    assert result.skipped == tuple(now - timedelta(seconds=n) for n in range(10, 0, -1))
    assert [fire for fire, _ in result.missed] == [
        now - timedelta(seconds=n) for n in range(999, 10, -1)
    ]
    assert result.next_run_time == now + timedelta(seconds=1)
    assert result.summary.startswith("At least ")
    assert result.summary.endswith(
        " further missed fires between 2026-01-01T12:00:00+00:00 and "
        "2026-01-08T11:43:20+00:00 are not listed."
    )


def test_seek_gives_the_same_plan_when_few_fires_are_due() -> None:
    trigger = CrontabTrigger("*/5 * * * *")
    now = T0 + timedelta(minutes=42)
    options = {"grace": timedelta(minutes=6), "coalesce": False, "policy": "all"}
    plain = plan_fires(trigger.get_next_fire_time, T0, now, **options)  # type: ignore[arg-type]
    sought = plan_fires(trigger.get_next_fire_time, T0, now, seek=seek_function(trigger), **options)  # type: ignore[arg-type]
    assert plain == sought
    assert sought.summary == ""


def test_fires_in_a_repeated_hour_are_compared_as_instants() -> None:
    # Fire times and now in the same zone: Python compares those by wall time
    # alone, so 01:45 EDT would look later than 01:15 EST.
    ny = ZoneInfo("America/New_York")
    trigger = CrontabTrigger("*/30 * * * *", ny)
    first = datetime(2026, 11, 1, 1, 0, tzinfo=ny)  # EDT
    now = datetime(2026, 11, 1, 1, 15, fold=1, tzinfo=ny)  # EST, 75 minutes later
    result = plan_fires(trigger.get_next_fire_time, first, now, grace=None, coalesce=False)
    assert [fire.isoformat() for fire in result.run] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:00:00-05:00",
    ]
    assert result.next_run_time is not None
    assert result.next_run_time.isoformat() == "2026-11-01T01:30:00-05:00"
    late = plan_fires(
        trigger.get_next_fire_time, first, now, grace=timedelta(minutes=20), coalesce=False
    )
    assert [(fire.isoformat(), lateness) for fire, lateness in late.missed] == [
        ("2026-11-01T01:00:00-04:00", timedelta(minutes=75)),
        ("2026-11-01T01:30:00-04:00", timedelta(minutes=45)),
    ]


def test_validation() -> None:
    with pytest.raises(ValueError) as info:
        plan(1, policy="sometimes")
    assert (
        str(info.value) == "Unknown misfire policy 'sometimes'; use one of 'once', 'all', 'skip'."
    )
    with pytest.raises(ValueError, match="grace must be zero or more"):
        plan(1, grace=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="max_catch_up must be 1 or more, got 0; to run no missed"):
        plan(1, policy="all", max_catch_up=0)
    with pytest.raises(ValueError, match="max_listed must be 1 or more, got 0"):
        plan(1, max_listed=0)
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        plan_fires(EVERY_MINUTE, T0, datetime(2026, 1, 1), grace=None, coalesce=False)


def test_a_trigger_that_does_not_move_forward_is_reported() -> None:
    def stuck(previous: datetime | None, now: datetime) -> datetime:
        return T0

    with pytest.raises(RuntimeError) as info:
        plan_fires(stuck, T0, T0 + MINUTE, grace=None, coalesce=False)
    assert str(info.value) == (
        "The trigger gave 2026-01-01T12:00:00+00:00 as the fire after "
        "2026-01-01T12:00:00+00:00; a trigger must move forward. Fix its get_next_fire_time()."
    )


@settings(max_examples=300, deadline=None)
@given(
    due=st.integers(0, 40),
    lateness=st.integers(0, 59),
    grace=st.one_of(st.none(), st.integers(0, 3000).map(lambda s: timedelta(seconds=s))),
    coalesce=st.booleans(),
    policy=st.sampled_from(MISFIRE_POLICIES),
    max_catch_up=st.integers(1, 10),
    max_listed=st.integers(1, 50),
)
def test_every_due_fire_is_accounted_for_once(
    due: int,
    lateness: int,
    grace: timedelta | None,
    coalesce: bool,
    policy: str,
    max_catch_up: int,
    max_listed: int,
) -> None:
    now = T0 + due * MINUTE + timedelta(seconds=lateness)
    result = plan_fires(
        EVERY_MINUTE,
        T0,
        now,
        policy=policy,
        grace=grace,
        coalesce=coalesce,
        max_catch_up=max_catch_up,
        max_listed=max_listed,
    )
    all_due = list(minutes(*range(due + 1)))
    listed = all_due[-max_listed:]
    missed = [fire for fire, _ in result.missed]
    placed = sorted([*result.run, *missed, *result.skipped])
    assert placed == listed  # each listed fire in exactly one place
    assert list(result.run) == sorted(result.run)
    assert all(late == now - fire for fire, late in result.missed)
    assert result.next_run_time == T0 + (due + 1) * MINUTE
    unlisted = len(all_due) - len(listed)
    assert bool(result.summary) == bool(unlisted)
    if unlisted:
        assert result.summary.startswith(f"{unlisted} further missed fire")

    on_time = [f for f in listed if grace is None or now - f <= grace]
    misfired = [f for f in listed if f not in on_time]
    runs_on_time = [f for f in result.run if f in on_time]
    runs_late = [f for f in result.run if f in misfired]
    assert runs_on_time == (on_time[-1:] if coalesce else on_time)
    assert list(result.skipped) == (on_time[:-1] if coalesce else [])
    if policy == "once":
        assert runs_late == (misfired[-1:] if not on_time else [])
    elif policy == "all":
        assert runs_late == misfired[-max_catch_up:]
    else:
        assert runs_late == []


# --- the one-fire fast path agrees with stepping through the fires ---------------------------


@given(
    due_ago=st.integers(min_value=0, max_value=7200),
    period=st.one_of(st.none(), st.integers(min_value=1, max_value=7200)),
    grace=st.one_of(st.none(), st.integers(min_value=0, max_value=3600)),
    policy=st.sampled_from(MISFIRE_POLICIES),
    coalesce=st.booleans(),
)
def test_a_single_due_fire_is_planned_as_by_stepping(
    due_ago: int, period: int | None, grace: int | None, policy: str, coalesce: bool
) -> None:
    now = datetime(2030, 3, 30, 12, 0, 0, 250000, tzinfo=UTC)
    first = now - timedelta(seconds=due_ago)

    def next_fire(previous: datetime | None, at: datetime) -> datetime | None:
        if period is None:
            return None if previous is not None else first
        return (previous or first) + timedelta(seconds=period)

    options = {
        "policy": policy,
        "grace": None if grace is None else timedelta(seconds=grace),
        "coalesce": coalesce,
    }
    planned = plan_fires(next_fire, first, now, **options)
    stepped = firing._plan_stepping(
        next_fire, first, now, max_catch_up=100, max_listed=1000, seek=None, **options
    )
    assert planned == stepped
