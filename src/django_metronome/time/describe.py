"""
Schedules in words: ``"At 08:00 on Monday through Friday (Asia/Seoul)"``.

Pure, like the rest of the time core: crontab expressions (and the APScheduler
triggers that are plain crontabs) are described field by field.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from cronsim import CronSim

from .crontab import DAY_NAMES, MONTH_NAMES, NUMBER, CronExpression, parse
from .zones import as_zoneinfo

__all__ = ["describe"]


_WEEKDAY_WORDS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTH_WORDS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_STEP = re.compile(r"\*/([0-9]+)")


def describe(expression: str | CronExpression, tz_name: str | tzinfo | None = "UTC") -> str:
    """
    Describe a crontab expression in English, with its time zone.

    ``describe("0 8 * * 1-5", "Asia/Seoul")`` is ``"At 08:00 on Monday through
    Friday (Asia/Seoul)"``. Common shapes get a short phrase; the rest get a
    longer, field-by-field one.
    """
    expr = parse(expression)
    zone = as_zoneinfo(tz_name)
    phrase = _describe_common(expr)
    if phrase is None:
        phrase = _describe_generic(expr)
    return f"{phrase} ({zone.key})"


def _describe_common(expr: CronExpression) -> str | None:
    fields = expr.fields
    second = fields[0] if expr.has_seconds else "0"
    minute, hour, dom, month, dow = fields[-5:]
    days = _describe_days(dom, month, dow)
    if days is None:
        return None

    if second != "0":
        if (minute, hour) != ("*", "*") or days:
            return None
        if second == "*":
            return "Every second"
        step = _STEP.fullmatch(second)
        return f"Every {step.group(1)} seconds" if step else None

    time: str | None = None
    minutes = _plain_numbers(minute)
    hours = _plain_numbers(hour)
    if hour == "*":
        if minute == "*":
            time = "Every minute"
        elif step := _STEP.fullmatch(minute):
            time = f"Every {step.group(1)} minutes"
        elif minutes is not None:
            label = "minute" if len(minutes) == 1 else "minutes"
            time = f"Every hour at {label} {_and_list([str(m) for m in minutes])}"
    elif (step := _STEP.fullmatch(hour)) and minutes is not None and len(minutes) == 1:
        time = f"Every {step.group(1)} hours at minute {minutes[0]}"
    elif minutes is not None and hours is not None and len(minutes) * len(hours) <= 6:
        time = "At " + _and_list([f"{h:02d}:{m:02d}" for h in hours for m in minutes])
        if not days:
            days = " every day"
    if time is None:
        return None
    return time + days


def _describe_days(dom: str, month: str, dow: str) -> str | None:
    """Return '' for every day, ' on ...' for a common restriction, None for anything else."""
    month_word = ""
    if month != "*":
        months = _plain_numbers(month, MONTH_NAMES, 1)
        if months is None or len(months) != 1:
            return None
        month_word = _MONTH_WORDS[months[0] - 1]
    in_month = f" in {month_word}" if month_word else ""
    if dom == "*" and dow == "*":
        return f" every day{in_month}" if month_word else ""
    if dom == "*":
        weekdays = _weekdays(dow)
        if weekdays == "every day":
            return f" every day{in_month}" if month_word else ""
        return f" on {weekdays}{in_month}" if weekdays else None
    if dow != "*":
        return None  # both day fields restricted: cron ORs them, say it field by field
    month_part = f"every {month_word}" if month_word else "every month"
    if dom == "L":
        return f" on the last day of {month_part}"
    if dom == "LW":
        return f" on the last weekday of {month_part}"
    days = _plain_numbers(dom)
    if days is None or len(days) > 4:
        return None
    if month_word and len(days) == 1:
        return f" on {month_word} {days[0]}"
    return f" on the {_and_list([_ordinal(day) for day in days])} of {month_part}"


def _weekdays(dow: str) -> str | None:
    numbers = _plain_numbers(dow, DAY_NAMES, 0, allow_ranges=True)
    if numbers is None:
        return None
    days = {n % 7 for n in numbers}
    if len(days) == 7:
        return "every day"
    # A run of three or more days reads "Friday through Monday", even across Sunday.
    for start in days:
        if len(days) >= 3 and days == {(start + i) % 7 for i in range(len(days))}:
            end = (start + len(days) - 1) % 7
            return f"{_WEEKDAY_WORDS[start]} through {_WEEKDAY_WORDS[end]}"
    # Otherwise list them Monday first, Sunday last, as people write SAT,SUN.
    ordered = sorted(days, key=lambda n: (n + 6) % 7)
    return _and_list([_WEEKDAY_WORDS[n] for n in ordered])


def _plain_numbers(
    text: str,
    names: tuple[str, ...] = (),
    base: int = 0,
    *,
    allow_ranges: bool = False,
) -> list[int] | None:
    """The values of a list of plain numbers (and step-free ranges if allowed), else None."""
    values: set[int] = set()
    for item in text.split(","):
        first, dash, last = item.partition("-")
        if dash and not allow_ranges:
            return None
        bounds = []
        for token in (first, last) if dash else (first,):
            if NUMBER.fullmatch(token):
                bounds.append(int(token))
            elif token in names:
                bounds.append(names.index(token) + base)
            else:
                return None
        values.update(range(bounds[0], bounds[-1] + 1))
    return sorted(values)


def _describe_generic(expr: CronExpression) -> str:
    try:
        # cronsim's explainer covers the long tail (L, #, steps in odd places).
        return CronSim(expr.text, datetime(2000, 1, 1)).explain()
    except Exception:  # pragma: no cover - a description must never fail
        return f"On the schedule {expr.text}"


def _and_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _ordinal(number: int) -> str:
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"
