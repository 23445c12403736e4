"""next_fire_times: previews for any trigger, DST-aware, bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from django_metronome.preview import MAX_PREVIEW, next_fire_times
from django_metronome.triggers import CrontabTrigger

NY = ZoneInfo("America/New_York")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def iso(fires: list[datetime]) -> list[str]:
    return [fire.isoformat() for fire in fires]


def test_crontab_preview() -> None:
    fires = next_fire_times(
        CrontabTrigger("0 8 * * 1-5", "Asia/Seoul"), 3, at("2026-01-02T09:00+09:00")
    )
    assert iso(fires) == [
        "2026-01-05T08:00:00+09:00",
        "2026-01-06T08:00:00+09:00",
        "2026-01-07T08:00:00+09:00",
    ]


def test_the_first_fire_may_be_now() -> None:
    fires = next_fire_times(CrontabTrigger("0 8 * * *"), 2, at("2026-01-01T08:00Z"))
    assert iso(fires) == ["2026-01-01T08:00:00+00:00", "2026-01-02T08:00:00+00:00"]


def test_plain_cron_triggers_preview_with_debian_dst_rules() -> None:
    fires = next_fire_times(
        CronTrigger(hour=2, minute=30, timezone=NY), 3, at("2026-03-07T00:00-05:00")
    )
    assert iso(fires) == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]
    fall = next_fire_times(CronTrigger(minute="*/30", timezone=NY), 5, at("2026-11-01T00:45-04:00"))
    assert iso(fall) == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]


def test_interval_preview_keeps_real_time_across_dst() -> None:
    trigger = IntervalTrigger(hours=1, start_date=at("2026-11-01T00:00-04:00"), timezone=NY)
    fires = next_fire_times(trigger, 4, at("2026-11-01T00:00-04:00"))
    assert iso(fires) == [
        "2026-11-01T00:00:00-04:00",
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]


def test_stops_at_the_end_of_the_schedule() -> None:
    assert iso(
        next_fire_times(DateTrigger(at("2026-05-01T12:00Z")), 5, at("2026-01-01T00:00Z"))
    ) == ["2026-05-01T12:00:00+00:00"]
    ending = CronTrigger(hour=8, end_date=at("2026-01-03T08:00Z"), timezone=UTC)
    assert len(next_fire_times(ending, 10, at("2026-01-01T00:00Z"))) == 3
    interval = IntervalTrigger(
        days=1, start_date=at("2026-01-01T00:00Z"), end_date=at("2026-01-02T00:00Z")
    )
    assert len(next_fire_times(interval, 10, at("2026-01-01T00:00Z"))) == 2


def test_calendar_and_combined_triggers() -> None:
    monthly = CalendarIntervalTrigger(months=1, hour=9, start_date="2026-01-31", timezone=UTC)
    assert iso(next_fire_times(monthly, 3, at("2026-01-01T00:00Z"))) == [
        "2026-01-31T09:00:00+00:00",
        "2026-03-31T09:00:00+00:00",  # no February 31st
        "2026-05-31T09:00:00+00:00",
    ]
    either = OrTrigger([CrontabTrigger("0 8 * * *"), CrontabTrigger("0 20 * * *")])
    assert iso(next_fire_times(either, 3, at("2026-01-01T00:00Z"))) == [
        "2026-01-01T08:00:00+00:00",
        "2026-01-01T20:00:00+00:00",
        "2026-01-02T08:00:00+00:00",
    ]


def test_and_trigger_preview_does_not_hang() -> None:
    first_monday = AndTrigger(
        [CronTrigger(day_of_week="mon", timezone=UTC), CronTrigger(day="1-7", timezone=UTC)]
    )
    assert iso(next_fire_times(first_monday, 2, at("2026-01-01T00:00Z"))) == [
        "2026-01-05T00:00:00+00:00",
        "2026-02-02T00:00:00+00:00",
    ]
    never = AndTrigger([DateTrigger(at("2026-01-01T00:00Z")), DateTrigger(at("2026-01-02T00:00Z"))])
    assert next_fire_times(never, 3, at("2025-01-01T00:00Z")) == []


class Stuck(BaseTrigger):
    """A broken trigger: always the same time."""

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)


def test_a_trigger_that_does_not_move_forward_stops_the_preview() -> None:
    assert next_fire_times(Stuck(), 10, at("2025-01-01T00:00Z")) == [
        datetime(2026, 1, 1, tzinfo=UTC)
    ]


def test_jitter_is_left_out_and_the_trigger_untouched() -> None:
    jittery = CronTrigger(hour=8, jitter=600, timezone=UTC)
    combined = OrTrigger(
        [IntervalTrigger(hours=6, jitter=60, start_date=at("2026-01-01T00:00Z"))], jitter=5
    )
    assert iso(next_fire_times(jittery, 2, at("2026-01-01T00:00Z"))) == [
        "2026-01-01T08:00:00+00:00",
        "2026-01-02T08:00:00+00:00",
    ]
    assert iso(next_fire_times(combined, 2, at("2026-01-01T00:00Z"))) == [
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T06:00:00+00:00",
    ]
    assert jittery.jitter == 600
    assert combined.jitter == 5
    assert combined.triggers[0].jitter == 60


def test_now_defaults_to_the_current_time() -> None:
    before = datetime.now(UTC)
    fires = next_fire_times(CrontabTrigger("* * * * *"), 2)
    assert before - timedelta(minutes=1) < fires[0] <= before + timedelta(minutes=1)
    assert fires[1] - fires[0] == timedelta(minutes=1)


def test_bounds() -> None:
    assert next_fire_times(CrontabTrigger("* * * * *"), 0, at("2026-01-01T00:00Z")) == []
    assert (
        len(next_fire_times(CrontabTrigger("* * * * * *"), MAX_PREVIEW, at("2026-01-01T00:00Z")))
        == MAX_PREVIEW
    )
    with pytest.raises(ValueError, match="count must be between 0 and 1000, got 1001"):
        next_fire_times(CrontabTrigger("* * * * *"), MAX_PREVIEW + 1)
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        next_fire_times(CrontabTrigger("* * * * *"), 1, datetime(2026, 1, 1))
