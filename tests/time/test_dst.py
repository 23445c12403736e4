"""
DST transitions across zones with different rules, with the expected instants written out.

The 2026 transitions used (local wall times):

* America/New_York: Mar 8 02:00 EST -> 03:00 EDT; Nov 1 02:00 EDT -> 01:00 EST.
* Europe/Berlin: Mar 29 02:00 CET -> 03:00 CEST; Oct 25 03:00 CEST -> 02:00 CET.
* America/Santiago: Apr 5 00:00 -03 -> Apr 4 23:00 -04 (23:00-24:00 on Apr 4
  happens twice); Sep 6 00:00 -04 -> 01:00 -03 (midnight does not exist).
* Australia/Lord_Howe (30-minute DST): Apr 5 02:00 +11 -> 01:30 +10:30;
  Oct 4 02:00 +10:30 -> 02:30 +11.
* Pacific/Chatham (+12:45/+13:45): Apr 5 03:45 +13:45 -> 02:45 +12:45;
  Sep 27 02:45 +12:45 -> 03:45 +13:45.

Fixed-time jobs (neither minute nor hour starts with *) run at the end of a
gap and once in a repeated hour; wildcard jobs skip the gap and run in both
passes.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from django_metronome.crontab import next_after

# fmt: off
CASES = [
    # --- America/New_York ---
    ("ny-fixed-gap", "America/New_York", "30 2 * * *", "2026-03-07T12:00-05:00",
     ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]),
    ("ny-fixed-range-gap", "America/New_York", "30 1-3 * * *", "2026-03-08T00:00-05:00",
     ["2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"]),
    ("ny-wildcard-gap", "America/New_York", "30 * * * *", "2026-03-08T00:00-05:00",
     ["2026-03-08T00:30:00-05:00", "2026-03-08T01:30:00-05:00",
      "2026-03-08T03:30:00-04:00", "2026-03-08T04:30:00-04:00"]),
    ("ny-wildcard-step-hour-gap", "America/New_York", "30 */2 * * *", "2026-03-08T00:00-05:00",
     ["2026-03-08T00:30:00-05:00", "2026-03-08T04:30:00-04:00"]),
    ("ny-fixed-fold", "America/New_York", "30 1 * * *", "2026-10-31T12:00-04:00",
     ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]),
    ("ny-fixed-list-fold", "America/New_York", "0,30 1 * * *", "2026-10-31T12:00-04:00",
     ["2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:00:00-05:00"]),
    ("ny-wildcard-fold", "America/New_York", "30 * * * *", "2026-11-01T00:00-04:00",
     ["2026-11-01T00:30:00-04:00", "2026-11-01T01:30:00-04:00",
      "2026-11-01T01:30:00-05:00", "2026-11-01T02:30:00-05:00"]),
    ("ny-wildcard-minutes-fold", "America/New_York", "*/20 1 * * *", "2026-11-01T00:00-04:00",
     ["2026-11-01T01:00:00-04:00", "2026-11-01T01:20:00-04:00", "2026-11-01T01:40:00-04:00",
      "2026-11-01T01:00:00-05:00", "2026-11-01T01:20:00-05:00", "2026-11-01T01:40:00-05:00",
      "2026-11-02T01:00:00-05:00"]),
    # Start in the second pass: the 01:30 slot already ran in the first (cronsim's edge case).
    ("ny-fixed-start-in-second-pass", "America/New_York", "30 1 * * *", "2026-11-01T01:15-05:00",
     ["2026-11-02T01:30:00-05:00"]),
    ("ny-fixed-list-start-in-second-pass", "America/New_York", "0,30 1,2 * * *",
     "2026-11-01T01:10-05:00",
     ["2026-11-01T02:00:00-05:00", "2026-11-01T02:30:00-05:00"]),
    # Six fields: the same rules (cronsim alone would skip the gap and run twice).
    ("ny-six-fields-gap", "America/New_York", "0 30 2 * * *", "2026-03-07T12:00-05:00",
     ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]),
    ("ny-six-fields-fold", "America/New_York", "15 30 1 * * *", "2026-10-31T12:00-04:00",
     ["2026-11-01T01:30:15-04:00", "2026-11-02T01:30:15-05:00"]),
    ("ny-six-fields-wildcard-fold", "America/New_York", "0 */30 1 * * *",
     "2026-11-01T01:45-04:00",
     ["2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-02T01:00:00-05:00"]),
    # --- Europe/Berlin ---
    ("berlin-fixed-gap", "Europe/Berlin", "30 2 * * *", "2026-03-28T12:00+01:00",
     ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]),
    # 02:00 moves to 03:00, where the 03:00 slot also is: one run, not two.
    ("berlin-fixed-gap-collides", "Europe/Berlin", "0 2,3 * * *", "2026-03-28T12:00+01:00",
     ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"]),
    ("berlin-wildcard-gap", "Europe/Berlin", "*/30 * * * *", "2026-03-29T01:15+01:00",
     ["2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00"]),
    ("berlin-fixed-fold", "Europe/Berlin", "30 2 * * *", "2026-10-24T12:00+02:00",
     ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]),
    ("berlin-wildcard-fold", "Europe/Berlin", "*/30 * * * *", "2026-10-25T01:45+02:00",
     ["2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
      "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00", "2026-10-25T03:00:00+01:00"]),
    # --- America/Santiago: the change happens at midnight ---
    ("santiago-fixed-midnight-gap", "America/Santiago", "0 0 * * *", "2026-09-05T12:00-04:00",
     ["2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"]),
    ("santiago-fixed-gap", "America/Santiago", "30 0 * * *", "2026-09-05T12:00-04:00",
     ["2026-09-06T01:00:00-03:00", "2026-09-07T00:30:00-03:00"]),
    ("santiago-daily-alias-gap", "America/Santiago", "@daily", "2026-09-05T12:00-04:00",
     ["2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"]),
    ("santiago-wildcard-gap", "America/Santiago", "*/30 * * * *", "2026-09-05T23:15-04:00",
     ["2026-09-05T23:30:00-04:00", "2026-09-06T01:00:00-03:00", "2026-09-06T01:30:00-03:00"]),
    # A wildcard job whose only hour is the missing one waits for next year's Sep 6.
    ("santiago-wildcard-only-in-gap", "America/Santiago", "*/30 0 6 9 *", "2026-09-05T12:00-04:00",
     ["2027-09-06T00:00:00-03:00"]),
    ("santiago-fixed-fold", "America/Santiago", "30 23 * * *", "2026-04-04T12:00-03:00",
     ["2026-04-04T23:30:00-03:00", "2026-04-05T23:30:00-04:00"]),
    ("santiago-fixed-midnight-after-fold", "America/Santiago", "0 0 * * *",
     "2026-04-04T12:00-03:00",
     ["2026-04-05T00:00:00-04:00", "2026-04-06T00:00:00-04:00"]),
    ("santiago-wildcard-fold", "America/Santiago", "30 * * * *", "2026-04-04T22:00-03:00",
     ["2026-04-04T22:30:00-03:00", "2026-04-04T23:30:00-03:00",
      "2026-04-04T23:30:00-04:00", "2026-04-05T00:30:00-04:00"]),
    # --- Australia/Lord_Howe: a 30-minute shift ---
    ("lord-howe-fixed-gap", "Australia/Lord_Howe", "15 2 * * *", "2026-10-03T12:00+10:30",
     ["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"]),
    ("lord-howe-fixed-gap-start", "Australia/Lord_Howe", "0 2 * * *", "2026-10-03T12:00+10:30",
     ["2026-10-04T02:30:00+11:00", "2026-10-05T02:00:00+11:00"]),
    ("lord-howe-wildcard-gap", "Australia/Lord_Howe", "*/15 * * * *", "2026-10-04T01:50+10:30",
     ["2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00"]),
    ("lord-howe-fixed-fold", "Australia/Lord_Howe", "45 1 * * *", "2026-04-04T12:00+11:00",
     ["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"]),
    ("lord-howe-wildcard-fold", "Australia/Lord_Howe", "*/15 * * * *", "2026-04-05T01:10+11:00",
     ["2026-04-05T01:15:00+11:00", "2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00",
      "2026-04-05T01:30:00+10:30", "2026-04-05T01:45:00+10:30", "2026-04-05T02:00:00+10:30"]),
    # --- Pacific/Chatham: +12:45 / +13:45 ---
    ("chatham-fixed-gap", "Pacific/Chatham", "0 3 * * *", "2026-09-26T12:00+12:45",
     ["2026-09-27T03:45:00+13:45", "2026-09-28T03:00:00+13:45"]),
    ("chatham-fixed-gap-odd-minute", "Pacific/Chatham", "47 2 * * *", "2026-09-26T12:00+12:45",
     ["2026-09-27T03:45:00+13:45", "2026-09-28T02:47:00+13:45"]),
    ("chatham-wildcard-gap", "Pacific/Chatham", "47 * * * *", "2026-09-27T01:00+12:45",
     ["2026-09-27T01:47:00+12:45", "2026-09-27T03:47:00+13:45"]),
    ("chatham-fixed-fold", "Pacific/Chatham", "0 3 * * *", "2026-04-04T12:00+13:45",
     ["2026-04-05T03:00:00+13:45", "2026-04-06T03:00:00+12:45"]),
    # APScheduler 3.11 gives 02:47+12:45 and then 03:47+13:45: one instant, twice.
    ("chatham-wildcard-fold", "Pacific/Chatham", "47 * * * *", "2026-04-05T02:00+13:45",
     ["2026-04-05T02:47:00+13:45", "2026-04-05T02:47:00+12:45", "2026-04-05T03:47:00+12:45"]),
]
# fmt: on


@pytest.mark.parametrize(
    ("zone", "expression", "start", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_dst_transitions(zone: str, expression: str, start: str, expected: list[str]) -> None:
    tz = ZoneInfo(zone)
    after = datetime.fromisoformat(start)
    got = []
    for _ in expected:
        after = next_after(expression, tz, after)
        assert after is not None
        got.append(after.isoformat())
    assert got == expected


def test_results_carry_the_right_fold() -> None:
    tz = ZoneInfo("America/New_York")
    first = next_after("30 * * * *", tz, datetime.fromisoformat("2026-11-01T01:00-04:00"))
    second = next_after("30 * * * *", tz, first)  # type: ignore[arg-type]
    assert first is not None and second is not None
    assert (first.fold, second.fold) == (0, 1)
    assert first.replace(tzinfo=None) == second.replace(tzinfo=None)  # the same wall time


def test_a_start_in_the_zone_itself_is_read_by_its_fold() -> None:
    # 01:15 EST (second pass) given in the zone, not in UTC: Python compares two
    # datetimes sharing a tzinfo by wall time, so this needs care inside.
    tz = ZoneInfo("America/New_York")
    start = datetime(2026, 11, 1, 1, 15, fold=1, tzinfo=tz)
    result = next_after("30 1 * * *", tz, start)
    assert result is not None
    assert result.isoformat() == "2026-11-02T01:30:00-05:00"
    wildcard = next_after("30 * * * *", tz, start)
    assert wildcard is not None
    assert wildcard.isoformat() == "2026-11-01T01:30:00-05:00"


def test_skipped_day_runs_once_after_it() -> None:
    # Samoa skipped 2011-12-30 entirely. Debian's daemon would treat a 24 h jump
    # as a clock correction and not catch up; we run the day's job once after it.
    tz = ZoneInfo("Pacific/Apia")
    after = datetime.fromisoformat("2011-12-29T13:00-10:00")
    first = next_after("0 12 * * *", tz, after)
    assert first is not None
    assert first.isoformat() == "2011-12-31T00:00:00+14:00"
    assert next_after("0 12 * * *", tz, first).isoformat() == "2011-12-31T12:00:00+14:00"  # type: ignore[union-attr]
