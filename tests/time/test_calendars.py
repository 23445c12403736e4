"""
Business days: fires on weekends, holidays and chosen dates skipped or moved, by rule.

Pure: no Django, no clock. The holiday calendars are the ``holidays`` package's.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from hypothesis import given, settings
from hypothesis import strategies as st

from django_metronome.time.calendars import BusinessDays, business_days
from django_metronome.time.codecs import decode_trigger, encode_trigger
from django_metronome.time.firing import FirePlan
from django_metronome.time.jitter import JitteredTrigger
from django_metronome.time.preview import describe_trigger, next_fire_times
from django_metronome.time.triggers import CrontabTrigger
from django_metronome.time.wrappers import with_exclusions, wrap_trigger

SEOUL = ZoneInfo("Asia/Seoul")
EIGHT = CrontabTrigger("0 8 * * *", "Asia/Seoul")
KOREA = holidays.country_holidays("KR")


def at8(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 8, tzinfo=SEOUL)


def test_korean_business_days_skip_weekends_and_chuseok():
    trigger = business_days(EIGHT, KOREA)
    fires = next_fire_times(trigger, 6, datetime(2026, 9, 22, tzinfo=SEOUL))
    # 2026-09-24..26: Chuseok; 27: Sunday; 10-03 National Foundation Day (a Saturday,
    # observed Monday 10-05).
    assert [f.date() for f in fires] == [
        date(2026, 9, 22),
        date(2026, 9, 23),
        date(2026, 9, 28),
        date(2026, 9, 29),
        date(2026, 9, 30),
        date(2026, 10, 1),
    ]
    assert describe_trigger(trigger) == "At 08:00 every day (Asia/Seoul) on Korean business days"


def test_next_and_previous_business_day_rules_move_the_fire():
    first_of_month = CrontabTrigger("0 8 1 * *", "Asia/Seoul")
    start = datetime(2026, 10, 15, tzinfo=SEOUL)
    later = next_fire_times(business_days(first_of_month, KOREA, rule="next"), 4, start)
    earlier = next_fire_times(business_days(first_of_month, KOREA, rule="previous"), 4, start)
    # 2026-11-01 is a Sunday, 2027-01-01 New Year's Day (a Friday).
    assert later == [
        at8(date(2026, 11, 2)),
        at8(date(2026, 12, 1)),
        at8(date(2027, 1, 4)),
        at8(date(2027, 2, 1)),
    ]
    assert earlier == [
        at8(date(2026, 10, 30)),
        at8(date(2026, 12, 1)),
        at8(date(2026, 12, 31)),
        at8(date(2027, 2, 1)),
    ]


def test_moved_fires_fold_into_a_fire_of_the_same_time():
    every_day = BusinessDays(EIGHT, rule="next", dates=[date(2026, 5, 5)], weekdays=range(7))
    fires = next_fire_times(every_day, 3, datetime(2026, 5, 4, 9, tzinfo=SEOUL))
    assert fires == [at8(date(2026, 5, 6)), at8(date(2026, 5, 7)), at8(date(2026, 5, 8))]


def test_explicit_dates_and_the_calendar_are_stored_by_name():
    trigger = business_days(
        CronTrigger(hour=8, timezone=SEOUL), [KOREA, date(2026, 12, 24), "2026-12-31"]
    )
    data = encode_trigger(trigger)
    assert data["type"] == "businessdays"
    assert data["country"] == "KR" and data["subdivision"] is None
    assert data["dates"] == ["2026-12-24", "2026-12-31"]
    assert encode_trigger(decode_trigger(data)) == data
    assert trigger.excluded(date(2026, 12, 24)) == "excluded date"
    assert trigger.excluded(date(2026, 12, 25)) == "Christmas Day"
    assert trigger.excluded(date(2026, 12, 26)) == "Saturday"
    assert trigger.excluded(date(2026, 12, 28)) is None


def test_subdivisions_and_markets():
    calendar = holidays.country_holidays("US", subdiv="CA")
    california = business_days(EIGHT, calendar)
    assert (california.country, california.subdivision) == ("US", "CA")
    assert california.excluded(date(2026, 3, 31)) == calendar.get(date(2026, 3, 31))
    assert "Chavez" in california.excluded(date(2026, 3, 31)).replace("á", "a")
    nyse = business_days(EIGHT, holidays.financial_holidays("NYSE"))
    assert nyse.market == "XNYS" and nyse.excluded(date(2026, 4, 3)) == "Good Friday"
    assert describe_trigger(nyse).endswith("on business days in XNYS")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"rule": "sometimes"}, "Unknown business-day rule"),
        ({"weekdays": [7]}, "weekdays must be numbers"),
        ({"dates": [datetime(2026, 1, 1)]}, "must be datetime.date objects"),
        ({"country": "XX"}, "No holiday calendar for country 'XX'"),
        ({"subdivision": "CA"}, "subdivision needs a country"),
    ],
)
def test_bad_arguments_are_refused_with_what_to_do(arguments, message):
    with pytest.raises((TypeError, ValueError), match=message):
        BusinessDays(EIGHT, **arguments)


def test_moving_rules_need_a_trigger_without_history():
    with pytest.raises(ValueError, match="Use rule='skip'"):
        BusinessDays(DateTrigger(datetime(2026, 1, 1, tzinfo=UTC)), rule="next")
    with pytest.raises(TypeError, match="exclude takes holiday calendars"):
        business_days(EIGHT, [3])
    with pytest.raises(ValueError, match="needs exclude="):
        wrap_trigger(EIGHT, key="x", on_excluded="next")


def test_a_schedule_only_on_holidays_is_refused_when_asked_for_its_next_fire():
    new_year = CrontabTrigger("0 8 1 1 *", "Asia/Seoul")
    trigger = business_days(new_year, KOREA)
    with pytest.raises(ValueError, match="fires only on excluded days"):
        trigger.get_next_fire_time(None, datetime(2026, 2, 1, tzinfo=SEOUL))


def test_holiday_fires_are_listed_for_the_ledger_with_their_names():
    trigger = wrap_trigger(CronTrigger(hour=8, timezone=SEOUL, jitter=60), key="k", exclude=KOREA)
    assert isinstance(trigger, JitteredTrigger) and isinstance(trigger.trigger, BusinessDays)
    previous = trigger.get_next_fire_time(None, datetime(2026, 9, 23, tzinfo=SEOUL))
    following = trigger.get_next_fire_time(previous, previous)
    assert following.date() == date(2026, 9, 28)
    plan = with_exclusions(FirePlan((previous,), (), (), following), trigger, previous)
    # Weekends are outside the schedule, not exceptions to it: only holidays are listed.
    assert plan.excluded == (
        (at8(date(2026, 9, 24)), "Skipped: not a business day (The day preceding Chuseok)."),
        (at8(date(2026, 9, 25)), "Skipped: not a business day (Chuseok)."),
        (at8(date(2026, 9, 26)), "Skipped: not a business day (The second day of Chuseok)."),
    )
    assert describe_trigger(trigger).endswith("on Korean business days, up to 1 min later")


# --- properties --------------------------------------------------------------------------

excluded_dates = st.sets(
    st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 3, 31)), max_size=40
)
weekday_sets = st.sets(st.integers(min_value=0, max_value=6), min_size=1)
hours = st.sets(st.integers(min_value=0, max_value=23), min_size=1, max_size=3)


@settings(max_examples=25, deadline=None)
@given(
    dates=excluded_dates,
    weekdays=weekday_sets,
    fire_hours=hours,
    rule=st.sampled_from(["skip", "next", "previous"]),
)
def test_fires_land_on_business_days_move_forward_and_follow_their_rule(
    dates, weekdays, fire_hours, rule
):
    hour_list = ",".join(str(h) for h in sorted(fire_hours))
    inner = CrontabTrigger(f"0 {hour_list} * * *", "Asia/Seoul")
    trigger = BusinessDays(inner, rule=rule, dates=dates, weekdays=weekdays)
    start = datetime(2026, 1, 10, tzinfo=SEOUL)
    fires = next_fire_times(trigger, 30, start)
    assert fires, "a schedule with business days always fires"
    assert fires[0] >= start
    for earlier, later in itertools.pairwise(fires):
        assert earlier < later
    for fire in fires:
        assert trigger.excluded(fire.date()) is None
        assert fire.hour in fire_hours and fire.minute == 0
    if rule == "skip":
        # Exactly the schedule's fires on business days, none left out.
        plain = [f for f in next_fire_times(inner, 1000, start) if f <= fires[-1]]
        assert fires == [f for f in plain if trigger.excluded(f.date()) is None]
    else:
        # Every fire of the schedule on an excluded day reappears on the business day
        # its rule names, at the same wall time, unless one is already there.
        wanted = set()
        for fire in next_fire_times(inner, 1000, start):
            if fire > fires[-1] - timedelta(days=61):
                break
            moved = trigger._shift(fire)
            if moved is not None and start <= moved <= fires[-1]:
                wanted.add(moved)
        assert wanted <= set(fires) | {f for f in wanted if f < start}


def test_an_interval_schedule_skips_too():
    trigger = BusinessDays(
        IntervalTrigger(hours=12, start_date=datetime(2026, 1, 1, tzinfo=SEOUL)),
        dates=[date(2026, 1, 2)],
    )
    fires = next_fire_times(trigger, 3, datetime(2026, 1, 1, 1, tzinfo=SEOUL))
    assert [f.day for f in fires] == [1, 5, 5]


class Marked:
    """A catalogue that marks each pattern it is asked for: the words come from it."""

    def gettext(self, message):
        return f"<{message}>"

    def ngettext(self, singular, plural, number):
        return f"<{singular if number == 1 else plural}>"

    def pgettext(self, context, message):
        return f"<{message}>"

    def npgettext(self, context, singular, plural, number):
        return f"<{singular if number == 1 else plural}>"


def test_descriptions_are_whole_translatable_patterns():
    trigger = wrap_trigger(
        CronTrigger(hour=8, timezone=SEOUL, jitter=60),
        key="k",
        exclude=[KOREA, date(2026, 12, 24)],
        on_excluded="next",
        max_runs=2,
    )
    text = describe_trigger(trigger, Marked())
    assert text.startswith("<<<<<<")  # jitter, limits, moved, dates, calendar, the schedule
    for pattern in (
        "{schedule}, up to {jitter} later",
        "{schedule}, at most {count} successful runs",
        "{schedule}, moved to the next business day",
        "{schedule}, except {count} date",
        "{schedule} on Korean business days",
    ):
        head = pattern.split("{schedule}")[1]
        assert head.split("{")[0] in text


def test_a_fire_moved_into_a_dst_gap_is_at_the_jump_as_cron_runs_it():
    new_york = ZoneInfo("America/New_York")
    trigger = BusinessDays(
        CrontabTrigger("30 2 * * *", "America/New_York"),
        rule="next",
        dates=[date(2026, 3, 7)],
        weekdays=range(7),
    )
    fires = next_fire_times(trigger, 3, datetime(2026, 3, 6, 12, tzinfo=new_york))
    # 03-07 moves to 03-08 02:30, which the clocks skip: 03:00, the day's own fire.
    assert fires == [
        datetime(2026, 3, 8, 3, 0, tzinfo=new_york),
        datetime(2026, 3, 9, 2, 30, tzinfo=new_york),
        datetime(2026, 3, 10, 2, 30, tzinfo=new_york),
    ]
