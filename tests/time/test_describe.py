"""
Schedules in words, in English and in Korean, for every shape of trigger.

The time core speaks English by default; given ``django.utils.translation``
(the Django layer's ``words``) it speaks the active language through the
package's catalogue (``locale/ko``). Korean orders the parts its own way: the
days first, then the time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.utils import translation

from django_metronome.time.describe import describe
from django_metronome.time.preview import describe_trigger
from django_metronome.time.text import ENGLISH, duration
from django_metronome.time.triggers import CrontabTrigger

SEOUL = ZoneInfo("Asia/Seoul")


def korean(expression: str, zone: str = "Asia/Seoul") -> str:
    with translation.override("ko"):
        return describe(expression, zone, translation)


# --- crontab expressions ----------------------------------------------------------------------

#: (expression, zone, English, Korean): the common shapes, then the long tail.
CRONTABS = [
    (
        "0 8 * * 1-5",
        "Asia/Seoul",
        "At 08:00 on Monday through Friday (Asia/Seoul)",
        "매주 월요일부터 금요일까지 08:00 (Asia/Seoul)",
    ),
    ("0 8 * * *", "Asia/Seoul", "At 08:00 every day (Asia/Seoul)", "매일 08:00 (Asia/Seoul)"),
    ("*/5 * * * *", "UTC", "Every 5 minutes (UTC)", "5분마다 (UTC)"),
    ("* * * * *", "UTC", "Every minute (UTC)", "매분 (UTC)"),
    (
        "*/15 * * * 1-5",
        "UTC",
        "Every 15 minutes on Monday through Friday (UTC)",
        "매주 월요일부터 금요일까지 15분마다 (UTC)",
    ),
    ("@hourly", "UTC", "Every hour at minute 0 (UTC)", "매시 0분 (UTC)"),
    ("5,35 * * * *", "UTC", "Every hour at minutes 5 and 35 (UTC)", "매시 5, 35분 (UTC)"),
    ("0 */2 * * *", "UTC", "Every 2 hours at minute 0 (UTC)", "2시간마다 0분 (UTC)"),
    ("0 8,17 * * *", "UTC", "At 08:00 and 17:00 every day (UTC)", "매일 08:00, 17:00 (UTC)"),
    ("@weekly", "UTC", "At 00:00 on Sunday (UTC)", "매주 일요일 00:00 (UTC)"),
    ("@monthly", "UTC", "At 00:00 on the 1st of every month (UTC)", "매월 1일 00:00 (UTC)"),
    ("@yearly", "UTC", "At 00:00 on January 1 (UTC)", "매년 1월 1일 00:00 (UTC)"),
    (
        "0 8 * * sat,sun",
        "UTC",
        "At 08:00 on Saturday and Sunday (UTC)",
        "매주 토요일, 일요일 08:00 (UTC)",
    ),
    (
        "0 8 * * 5-7",
        "UTC",
        "At 08:00 on Friday through Sunday (UTC)",
        "매주 금요일부터 일요일까지 08:00 (UTC)",
    ),
    (
        "0 8 * * 1,3,5",
        "UTC",
        "At 08:00 on Monday, Wednesday and Friday (UTC)",
        "매주 월요일, 수요일, 금요일 08:00 (UTC)",
    ),
    (
        "0 8 2,3,11,22 * *",
        "UTC",
        "At 08:00 on the 2nd, 3rd, 11th and 22nd of every month (UTC)",
        "매월 2일, 3일, 11일, 22일 08:00 (UTC)",
    ),
    (
        "15 10 L * *",
        "UTC",
        "At 10:15 on the last day of every month (UTC)",
        "매월 마지막 날 10:15 (UTC)",
    ),
    (
        "0 18 LW * *",
        "UTC",
        "At 18:00 on the last weekday of every month (UTC)",
        "매월 마지막 평일 18:00 (UTC)",
    ),
    ("0 8 * 1 *", "UTC", "At 08:00 every day in January (UTC)", "매년 1월 매일 08:00 (UTC)"),
    (
        "0 8 * DEC 1-5",
        "UTC",
        "At 08:00 on Monday through Friday in December (UTC)",
        "매년 12월의 월요일부터 금요일까지 08:00 (UTC)",
    ),
    (
        "0 8 L FEB *",
        "UTC",
        "At 08:00 on the last day of every February (UTC)",
        "매년 2월 마지막 날 08:00 (UTC)",
    ),
    ("0 12 25 12 *", "UTC", "At 12:00 on December 25 (UTC)", "매년 12월 25일 12:00 (UTC)"),
    ("*/10 * * * * *", "UTC", "Every 10 seconds (UTC)", "10초마다 (UTC)"),
    ("* * * * * *", "UTC", "Every second (UTC)", "매초 (UTC)"),
    # DST-relevant: a fixed time that the spring change skips and the autumn one repeats.
    (
        "30 2 * * *",
        "Europe/Berlin",
        "At 02:30 every day (Europe/Berlin)",
        "매일 02:30 (Europe/Berlin)",
    ),
    (
        "30 1 * * 0",
        "America/New_York",
        "At 01:30 on Sunday (America/New_York)",
        "매주 일요일 01:30 (America/New_York)",
    ),
    # The long tail, field by field (cronsim's explainer in English).
    ("30 0 8 * * *", "UTC", "At 08:00:30 every day (UTC)", "매일 08:00:30 (UTC)"),
    (
        "0 9 * * MON#2",
        "UTC",
        "At 09:00 on the second Monday of the month (UTC)",
        "매월 둘째 월요일 09:00 (UTC)",
    ),
    (
        "0 9-17 * * 1-5",
        "UTC",
        "At minute 0 past every hour from 9 through 17 on Monday through Friday (UTC)",
        "매주 월요일부터 금요일까지 9시부터 17시까지 매시 0분 (UTC)",
    ),
    # Both day fields restricted: cron runs on the days that match EITHER of them.
    (
        "0 12 1,15 * MON",
        "UTC",
        "At 12:00 on the first and the 15th day of month and on Monday (UTC)",
        "매월 1일, 15일 또는 매주 월요일 12:00 (UTC)",
    ),
    (
        "0 0 LW * 5L",
        "UTC",
        None,
        "매월 마지막 평일 또는 매월 마지막 금요일 00:00 (UTC)",
    ),
    ("0 8 1 3 MON", "UTC", None, "3월의 1일 또는 월요일 08:00 (UTC)"),
    ("0 8 */2 * *", "UTC", None, "2일마다 08:00 (UTC)"),
]


@pytest.mark.parametrize(("expression", "zone", "english", "words"), CRONTABS)
def test_crontab_in_english_and_korean(
    expression: str, zone: str, english: str | None, words: str
) -> None:
    if english is not None:
        assert describe(expression, zone) == english
        assert describe(expression, zone, ENGLISH) == english
    assert korean(expression, zone) == words


def test_english_is_the_default_and_the_fallback() -> None:
    """No language, English, or a language without this catalogue: English sentences."""
    english = "At 08:00 on Monday through Friday (Asia/Seoul)"
    for language in ("en", "en-gb", "fr"):
        with translation.override(language):
            # Django's own French has "lundi" for "Monday": the names keep a context of
            # their own, so a French project reads one language, not two.
            assert describe("0 8 * * 1-5", "Asia/Seoul", translation) == english
    with translation.override(None):
        assert describe("0 8 * * 1-5", "Asia/Seoul", translation) == english


def test_the_or_rule_reads_as_or_in_korean_and_fires_on_either_day() -> None:
    """The words say "or": the trigger indeed fires on the 1st (a Thursday) and on Mondays."""
    trigger = CrontabTrigger("0 12 1,15 * MON", timezone="UTC")
    start = datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))
    fires, previous = [], None
    for _ in range(4):
        previous = trigger.get_next_fire_time(previous, previous or start)
        fires.append(previous.day)
    assert fires == [1, 5, 12, 15]  # the 1st (Thursday), Mondays 5 and 12, the 15th
    with translation.override("ko"):
        assert " 또는 " in describe_trigger(trigger, translation)


# --- other triggers -----------------------------------------------------------------------------

#: (trigger, English, Korean).
TRIGGERS = [
    (IntervalTrigger(minutes=5, timezone="UTC"), "Every 5 minutes (UTC)", "5분마다 (UTC)"),
    (IntervalTrigger(hours=1, timezone="UTC"), "Every hour (UTC)", "매시간 (UTC)"),
    (IntervalTrigger(days=1, timezone=SEOUL), "Every day (Asia/Seoul)", "매일 (Asia/Seoul)"),
    (IntervalTrigger(days=2, timezone=SEOUL), "Every 2 days (Asia/Seoul)", "2일마다 (Asia/Seoul)"),
    (IntervalTrigger(seconds=90, timezone="UTC"), "Every 90 seconds (UTC)", "90초마다 (UTC)"),
    (IntervalTrigger(seconds=1.5, timezone="UTC"), "Every 1.5 seconds (UTC)", "1.5초마다 (UTC)"),
    (
        DateTrigger(datetime(2026, 3, 1, 8, 0, tzinfo=SEOUL)),
        "Once, at 2026-03-01 08:00:00+09:00",
        "2026-03-01 08:00:00+09:00에 한 번",
    ),
    (
        CalendarIntervalTrigger(months=1, hour=8, timezone=SEOUL),
        "Every month at 08:00 (Asia/Seoul)",
        "매월 08:00 (Asia/Seoul)",
    ),
    (
        CalendarIntervalTrigger(weeks=2, hour=9, minute=30, timezone="UTC"),
        "Every 2 weeks at 09:30 (UTC)",
        "2주마다 09:30 (UTC)",
    ),
    (
        CalendarIntervalTrigger(years=1, months=6, timezone="UTC"),
        "Every 1 year and 6 months at 00:00 (UTC)",
        "1년, 6개월마다 00:00 (UTC)",
    ),
    (
        CronTrigger(day_of_week="mon-fri", hour=8, timezone=SEOUL),
        "At 08:00 on Monday through Friday (Asia/Seoul)",
        "매주 월요일부터 금요일까지 08:00 (Asia/Seoul)",
    ),
    (
        OrTrigger([CronTrigger(hour=8, timezone=SEOUL), IntervalTrigger(hours=3, timezone="UTC")]),
        "Whenever one of these fires: At 08:00 every day (Asia/Seoul); Every 3 hours (UTC)",
        "다음 일정 중 하나가 가리킬 때마다: 매일 08:00 (Asia/Seoul); 3시간마다 (UTC)",
    ),
    (
        AndTrigger(
            [
                CronTrigger(day_of_week="sat,sun", hour="*", timezone="UTC"),
                IntervalTrigger(hours=2, timezone="UTC"),
            ]
        ),
        "When all of these fire at once: Every hour at minute 0 on Saturday and Sunday (UTC); "
        "Every 2 hours (UTC)",
        "다음 일정이 모두 같은 시각을 가리킬 때: 매주 토요일, 일요일 매시 0분 (UTC); "
        "2시간마다 (UTC)",
    ),
]


@pytest.mark.parametrize(("trigger", "english", "words"), TRIGGERS)
def test_trigger_in_english_and_korean(trigger, english: str, words: str) -> None:
    assert describe_trigger(trigger) == english
    with translation.override("ko"):
        assert describe_trigger(trigger, translation) == words


# --- lengths of time ------------------------------------------------------------------------------

DURATIONS = [
    (0, "0 s", "0초"),
    (0.0004, "< 1 ms", "1ms 미만"),
    (0.85, "850 ms", "850ms"),
    (4.25, "4.25 s", "4.25초"),
    (5, "5 s", "5초"),
    (185, "3 min 5 s", "3분 5초"),
    (3780, "1 h 3 min", "1시간 3분"),
    (183600, "2 d 3 h", "2일 3시간"),
    (timedelta(hours=-2), "-2 h", "-2시간"),
]


@pytest.mark.parametrize(("value", "english", "words"), DURATIONS)
def test_durations_in_english_and_korean(value, english: str, words: str) -> None:
    assert duration(value) == english
    with translation.override("ko"):
        assert duration(value, words=translation) == words
