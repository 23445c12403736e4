"""Crontab syntax, validation messages, UTC evaluation and descriptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from django_metronome.crontab import (
    CronError,
    CronExpression,
    as_zoneinfo,
    describe,
    next_after,
    parse,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(expression: str, start: str, count: int, zone: str = "UTC") -> list[str]:
    """The next ``count`` fires after ``start`` (ISO, with offset), as ISO strings in ``zone``."""
    tz = ZoneInfo(zone)
    after = datetime.fromisoformat(start)
    if after.tzinfo is None:
        after = after.replace(tzinfo=tz)
    result = []
    for _ in range(count):
        after = next_after(expression, tz, after)
        assert after is not None
        result.append(after.isoformat())
    return result


# --- parse ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "fixed"),
    [
        ("30 2 * * *", True),
        ("0 0-23/2 * * *", True),  # a step, but the hour field does not start with *
        ("30 1-3 * * *", True),
        ("0,30 8,17 * * *", True),
        ("@daily", True),
        ("@midnight", True),
        ("@weekly", True),
        ("@monthly", True),
        ("@yearly", True),
        ("@annually", True),
        ("0 */2 * * *", False),  # the same hours as 0 0-23/2, yet a wildcard job
        ("*/5 * * * *", False),
        ("5 * * * *", False),
        ("* 8 * * *", False),
        ("@hourly", False),
        ("0 30 2 * * *", True),  # 6 fields: minute and hour decide
        ("* 30 2 * * *", True),
        ("0 0 */2 * * *", False),
        ("0 * 2 * * *", False),
    ],
)
def test_fixed_time_follows_the_debian_rule(expression: str, fixed: bool) -> None:
    assert parse(expression).is_fixed_time is fixed


def test_parse_normalises() -> None:
    expr = parse("  0   8 *\t* mon-fri ")
    assert expr == CronExpression(text="0 8 * * MON-FRI", has_seconds=False, is_fixed_time=True)
    assert expr.source == "0 8 * * mon-fri"
    assert expr.fields == ("0", "8", "*", "*", "MON-FRI")
    assert str(expr) == "0 8 * * mon-fri"


def test_parse_six_fields() -> None:
    expr = parse("*/10 * * * * *")
    assert expr.has_seconds
    assert expr.fields[0] == "*/10"
    assert not expr.is_fixed_time


@pytest.mark.parametrize(
    ("alias", "text"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_aliases_expand(alias: str, text: str) -> None:
    expr = parse(alias)
    assert expr.text == text
    assert str(expr) == alias


def test_equality_ignores_how_it_was_written() -> None:
    assert parse("@daily") == parse("0 0 * * *")
    assert parse("0 8 * * mon-fri") == parse("0 8 * * MON-FRI")
    assert parse("0 8 * * 1-5") != parse("0 8 * * MON-FRI")  # equal schedules, other text


def test_parse_passes_expressions_through_and_refuses_other_types() -> None:
    expr = parse("@daily")
    assert parse(expr) is expr
    with pytest.raises(TypeError, match="must be a str, not int"):
        parse(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 1 JAN,JUL *",
        "0 0 * * SUN-SAT",
        "0 0 * * 0-7",
        "0 0 * * 7",
        "5/15 * * * *",
        "1-59/2 */3 1-31/7 */2 *",
        "0 0 L * *",
        "0 0 LW * *",
        "0 0 1,L * *",
        "0 0 * * 5L",
        "0 0 * * FRI#3",
        "0 0 * * 1#1,5L",
        "0 0 31 * *",
        "0 0 30 2 MON",  # both day fields restricted: cron ORs them, so Mondays fire
        "0 0 29 2 *",
        "59 23 31 12 6",
        "0 0 0 * * *",
    ],
)
def test_accepted_syntax(expression: str) -> None:
    assert parse(expression).text == " ".join(expression.split()).upper()


# --- error messages --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "61 * * * *",
            "Bad crontab expression '61 * * * *': the minute field has 61, which is outside 0-59.",
        ),
        (
            "0 24 * * *",
            "Bad crontab expression '0 24 * * *': the hour field has 24, which is outside 0-23.",
        ),
        (
            "0 0 0 * *",
            "Bad crontab expression '0 0 0 * *': the day-of-month field has 0, which is "
            "outside 1-31.",
        ),
        (
            "0 0 * 13 *",
            "Bad crontab expression '0 0 * 13 *': the month field has 13, which is outside 1-12.",
        ),
        (
            "0 0 * * 8",
            "Bad crontab expression '0 0 * * 8': the day-of-week field has 8, which is "
            "outside 0-7.",
        ),
        (
            "60 0 0 * * *",
            "Bad crontab expression '60 0 0 * * *': the second field has 60, which is "
            "outside 0-59.",
        ),
        (
            "0 0 * * fun",
            "Bad crontab expression '0 0 * * fun': the day-of-week field has 'fun', which "
            "is not a number or a day name (SUN-SAT).",
        ),
        (
            "0 0 * jam *",
            "Bad crontab expression '0 0 * jam *': the month field has 'jam', which is not "
            "a number or a month name (JAN-DEC).",
        ),
        (
            "x * * * *",
            "Bad crontab expression 'x * * * *': the minute field has 'x', which is not a number.",
        ),
        (
            "0 0 * * FRI-MON",
            "Bad crontab expression '0 0 * * FRI-MON': the day-of-week field has the range "
            "FRI-MON, which runs backwards, and cron would never match it; write it as a "
            "list instead, such as FRI-SAT,SUN-MON.",
        ),
        (
            "0 0 * * 6-0",
            "Bad crontab expression '0 0 * * 6-0': the day-of-week field has the range 6-0, "
            "which runs backwards, and cron would never match it; write it as a list "
            "instead, such as 6,0.",
        ),
        (
            "0 22-2 * * *",
            "Bad crontab expression '0 22-2 * * *': the hour field has the range 22-2, "
            "which runs backwards, and cron would never match it; write it as a list "
            "instead, such as 22-23,0-2.",
        ),
        (
            "*/0 * * * *",
            "Bad crontab expression '*/0 * * * *': the minute field has the step /0; a "
            "step must be 1 or more.",
        ),
        (
            "*/x * * * *",
            "Bad crontab expression '*/x * * * *': the minute field has the step '/x', "
            "which is not a number.",
        ),
        (
            "1,,2 * * * *",
            "Bad crontab expression '1,,2 * * * *': the minute field has an empty list "
            "item; remove the extra comma.",
        ),
        (
            "1- * * * *",
            "Bad crontab expression '1- * * * *': the minute field has a range or step "
            "with a missing value.",
        ),
        (
            "0 0 ? * *",
            "Bad crontab expression '0 0 ? * *': the day-of-month field has '?', which is "
            "Quartz syntax; write '*' instead.",
        ),
        (
            "0 0 15W * *",
            "Bad crontab expression '0 0 15W * *': the day-of-month field has '15W'; of "
            "the 'W' forms only LW (the last weekday of the month) is supported.",
        ),
        (
            "L * * * *",
            "Bad crontab expression 'L * * * *': the minute field has 'L'; L is only "
            "allowed in the day-of-month field (L, LW) and the day-of-week field (nL).",
        ),
        (
            "0 0 * * FRIL",
            "Bad crontab expression '0 0 * * FRIL': the day-of-week field has 'FRIL'; 'nL' "
            "(the last given weekday of the month) takes a day number 0-7 before the L, "
            "such as 5L for the last Friday.",
        ),
        (
            "0 0 * * 9L",
            "Bad crontab expression '0 0 * * 9L': the day-of-week field has 9, which is "
            "outside 0-7.",
        ),
        (
            "0 0 * * MON#6",
            "Bad crontab expression '0 0 * * MON#6': the day-of-week field has 'MON#6'; "
            "the number after # must be 1-5.",
        ),
        (
            "0 0 30 2 *",
            "Bad crontab expression '0 0 30 2 *': no allowed month has a day 30, so the "
            "job would never run.",
        ),
        (
            "0 0 31 4,6 *",
            "Bad crontab expression '0 0 31 4,6 *': no allowed month has a day 31, so the "
            "job would never run.",
        ),
        (
            "* * *",
            "Bad crontab expression '* * *': it has 3 fields; write 5 (minute hour "
            "day-of-month month day-of-week) or 6 (a seconds field, then those 5).",
        ),
        (
            "* * * * * * *",
            "Bad crontab expression '* * * * * * *': it has 7 fields; write 5 (minute "
            "hour day-of-month month day-of-week) or 6 (a seconds field, then those 5).",
        ),
        (
            "   ",
            "Bad crontab expression '   ': it is empty. Write 5 fields (minute hour "
            "day-of-month month day-of-week), 6 with a leading seconds field, or an alias "
            "such as @daily.",
        ),
        (
            "@reboot",
            "Bad crontab expression '@reboot': @reboot runs when the cron daemon starts, "
            "which a scheduler cannot express; schedule a one-off 'date' job when your "
            "process starts instead.",
        ),
        (
            "@fortnightly",
            "Bad crontab expression '@fortnightly': unknown alias @fortnightly; use one "
            "of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly.",
        ),
    ],
)
def test_error_messages(expression: str, message: str) -> None:
    with pytest.raises(CronError) as info:
        parse(expression)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_unknown_time_zone_is_named() -> None:
    with pytest.raises(CronError) as info:
        as_zoneinfo("Mars/Olympus_Mons")
    assert str(info.value) == (
        "Unknown time zone 'Mars/Olympus_Mons'; use an IANA name such as 'Europe/Berlin' or 'UTC'."
    )
    with pytest.raises(CronError, match=r"Unknown time zone '\.\./etc'"):
        as_zoneinfo("../etc")


def test_fixed_offsets_are_refused() -> None:
    with pytest.raises(CronError) as info:
        as_zoneinfo(timezone(timedelta(hours=9)))
    assert str(info.value) == (
        "The time zone datetime.timezone(datetime.timedelta(seconds=32400)) has no IANA "
        "name; crontab schedules need one, such as 'Europe/Berlin' or 'UTC'."
    )


def test_as_zoneinfo_accepts_names_zones_and_utc() -> None:
    assert as_zoneinfo("Asia/Seoul") == ZoneInfo("Asia/Seoul")
    assert as_zoneinfo(ZoneInfo("Asia/Seoul")) is ZoneInfo("Asia/Seoul")
    assert as_zoneinfo(UTC) == ZoneInfo("UTC")
    assert as_zoneinfo(None) == ZoneInfo("UTC")
    assert as_zoneinfo(None, default="Europe/Berlin") == ZoneInfo("Europe/Berlin")


# --- evaluation (UTC; DST is in test_dst.py) -----------------------------------------------


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        ("*/20 * * * *", "2026-01-01T00:00", ["00:20", "00:40", "01:00"]),
        ("5/20 * * * *", "2026-01-01T00:00", ["00:05", "00:25", "00:45"]),
        ("0 0-23/8 * * *", "2026-01-01T00:00", ["08:00", "16:00", "00:00"]),
        ("*/20 * * * * *", "2026-01-01T00:00", ["00:00:20", "00:00:40", "00:01:00"]),
    ],
)
def test_steps(expression: str, start: str, expected: list[str]) -> None:
    got = fires(expression, start + "+00:00", len(expected))
    width = len(expected[0])
    assert [text[11 : 11 + width] for text in got] == expected


@pytest.mark.parametrize(
    ("expression", "start", "expected_days"),
    [
        # Day-of-month and day-of-week both restricted: either may match (OR).
        ("0 0 13 * FRI", "2026-02-01", ["2026-02-06", "2026-02-13", "2026-02-20"]),
        # One of them starts with *: both must match (AND): odd-numbered Fridays.
        ("0 0 */2 * FRI", "2026-01-01", ["2026-01-09", "2026-01-23", "2026-02-13"]),
        ("0 0 * * 7", "2026-01-01", ["2026-01-04", "2026-01-11", "2026-01-18"]),
        ("0 0 * * 0", "2026-01-01", ["2026-01-04", "2026-01-11", "2026-01-18"]),
        ("0 0 L * *", "2026-02-01", ["2026-02-28", "2026-03-31", "2026-04-30"]),
        ("0 0 LW * *", "2026-05-01", ["2026-05-29", "2026-06-30", "2026-07-31"]),
        ("0 0 * * 5L", "2026-01-01", ["2026-01-30", "2026-02-27", "2026-03-27"]),
        ("0 0 * * MON#2", "2026-01-01", ["2026-01-12", "2026-02-09", "2026-03-09"]),
        ("0 0 29 2 *", "2026-01-01", ["2028-02-29", "2032-02-29", "2036-02-29"]),
        ("@weekly", "2026-01-01", ["2026-01-04", "2026-01-11", "2026-01-18"]),
        ("@monthly", "2026-01-01", ["2026-02-01", "2026-03-01", "2026-04-01"]),
        ("@yearly", "2026-01-01", ["2027-01-01", "2028-01-01", "2029-01-01"]),
    ],
)
def test_days(expression: str, start: str, expected_days: list[str]) -> None:
    got = fires(expression, start + "T00:00+00:00", len(expected_days))
    assert [text[:10] for text in got] == expected_days


def test_next_after_is_strictly_after() -> None:
    tz = ZoneInfo("UTC")
    assert next_after("0 8 * * *", tz, utc("2026-01-01T08:00:00")) == utc("2026-01-02T08:00")
    assert next_after("0 8 * * *", tz, utc("2026-01-01T07:59:59.999999")) == utc("2026-01-01T08:00")
    assert next_after("0 8 * * *", tz, utc("2026-01-01T08:00:00.000001")) == utc("2026-01-02T08:00")


def test_next_after_returns_the_zone_it_was_given() -> None:
    seoul = ZoneInfo("Asia/Seoul")
    result = next_after("0 8 * * *", seoul, utc("2025-12-31T20:00"))
    assert result is not None
    assert result.tzinfo is seoul
    assert result.isoformat() == "2026-01-01T08:00:00+09:00"


def test_next_after_accepts_a_zone_name() -> None:
    result = next_after("0 8 * * *", "Asia/Seoul", utc("2025-12-31T20:00"))  # type: ignore[arg-type]
    assert result is not None
    assert result.isoformat() == "2026-01-01T08:00:00+09:00"


def test_next_after_needs_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="needs an aware datetime"):
        next_after("* * * * *", ZoneInfo("UTC"), datetime(2026, 1, 1))


def test_none_when_the_schedule_runs_off_the_calendar() -> None:
    assert next_after("0 0 1 1 *", ZoneInfo("UTC"), utc("9999-06-01T00:00")) is None
    assert next_after("*/5 * * * *", ZoneInfo("UTC"), utc("9999-12-31T23:58")) is None
    assert next_after("0 0 1 1 *", ZoneInfo("Europe/Berlin"), utc("9999-06-01T00:00")) is None


# --- describe ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "zone", "text"),
    [
        ("0 8 * * *", "Asia/Seoul", "At 08:00 every day (Asia/Seoul)"),
        ("*/5 * * * *", "UTC", "Every 5 minutes (UTC)"),
        ("10 8 * * 1-5", "Asia/Seoul", "At 08:10 on Monday through Friday (Asia/Seoul)"),
        ("10 8 * * mon-fri", "UTC", "At 08:10 on Monday through Friday (UTC)"),
        ("* * * * *", "UTC", "Every minute (UTC)"),
        ("*/15 * * * 1-5", "UTC", "Every 15 minutes on Monday through Friday (UTC)"),
        ("0 * * * *", "UTC", "Every hour at minute 0 (UTC)"),
        ("@hourly", "UTC", "Every hour at minute 0 (UTC)"),
        ("5,35 * * * *", "UTC", "Every hour at minutes 5 and 35 (UTC)"),
        ("0 */2 * * *", "UTC", "Every 2 hours at minute 0 (UTC)"),
        ("0 8,17 * * *", "UTC", "At 08:00 and 17:00 every day (UTC)"),
        ("0,30 9 * * *", "UTC", "At 09:00 and 09:30 every day (UTC)"),
        ("@daily", "Europe/Berlin", "At 00:00 every day (Europe/Berlin)"),
        ("@weekly", "UTC", "At 00:00 on Sunday (UTC)"),
        ("@monthly", "UTC", "At 00:00 on the 1st of every month (UTC)"),
        ("@yearly", "UTC", "At 00:00 on January 1 (UTC)"),
        ("0 8 * * sat,sun", "UTC", "At 08:00 on Saturday and Sunday (UTC)"),
        ("0 8 * * 0,6", "UTC", "At 08:00 on Saturday and Sunday (UTC)"),
        ("0 8 * * 5-7", "UTC", "At 08:00 on Friday through Sunday (UTC)"),
        ("0 8 * * 0-2", "UTC", "At 08:00 on Sunday through Tuesday (UTC)"),
        ("0 8 * * 1,3,5", "UTC", "At 08:00 on Monday, Wednesday and Friday (UTC)"),
        ("0 8 * * 0-6", "UTC", "At 08:00 every day (UTC)"),
        ("0 8 1,15 * *", "UTC", "At 08:00 on the 1st and 15th of every month (UTC)"),
        (
            "0 8 2,3,11,22 * *",
            "UTC",
            "At 08:00 on the 2nd, 3rd, 11th and 22nd of every month (UTC)",
        ),
        ("15 10 L * *", "UTC", "At 10:15 on the last day of every month (UTC)"),
        ("0 18 LW * *", "UTC", "At 18:00 on the last weekday of every month (UTC)"),
        ("0 8 * 1 *", "UTC", "At 08:00 every day in January (UTC)"),
        ("0 8 * DEC 1-5", "UTC", "At 08:00 on Monday through Friday in December (UTC)"),
        ("0 8 L FEB *", "UTC", "At 08:00 on the last day of every February (UTC)"),
        ("0 12 25 12 *", "UTC", "At 12:00 on December 25 (UTC)"),
        ("*/10 * * * * *", "UTC", "Every 10 seconds (UTC)"),
        ("* * * * * *", "UTC", "Every second (UTC)"),
        ("0 30 8 * * *", "UTC", "At 08:30 every day (UTC)"),
        # The long tail gets a field-by-field phrase.
        ("30 0 8 * * *", "UTC", "At 08:00:30 every day (UTC)"),
        ("0 9 * * MON#2", "UTC", "At 09:00 on the second Monday of the month (UTC)"),
        (
            "0 9-17 * * 1-5",
            "UTC",
            "At minute 0 past every hour from 9 through 17 on Monday through Friday (UTC)",
        ),
        (
            "0 12 1,15 * MON",
            "UTC",
            "At 12:00 on the first and the 15th day of month and on Monday (UTC)",
        ),
    ],
)
def test_describe(expression: str, zone: str, text: str) -> None:
    assert describe(expression, zone) == text


def test_describe_refuses_unknown_zones() -> None:
    with pytest.raises(CronError, match="Unknown time zone 'Nowhere'"):
        describe("0 8 * * *", "Nowhere")
