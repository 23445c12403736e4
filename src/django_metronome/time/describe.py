"""
Schedules in words: ``"At 08:00 on Monday through Friday (Asia/Seoul)"``.

Pure, like the rest of the time core: crontab expressions (and the APScheduler
triggers that are plain crontabs) are described field by field. Every phrase
is a whole pattern with named placeholders, asked of ``words`` (see
:mod:`django_metronome.time.text`): English by default, the active language's
catalogue when the Django layer passes ``django.utils.translation``. A
language orders the parts its own way: the pattern ``{time} {days}`` is
``{days} {time}`` in Korean (``매주 월요일부터 금요일까지 08:00``).

The long tail (``L``, ``W``, ``#``, ranges of hours, both day fields
restricted) reads field by field. In English it is cronsim's explainer,
as it always was; a language whose catalogue translates the field-by-field
patterns gets them instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo

from cronsim import CronSim

from .crontab import DAY_NAMES, MONTH_NAMES, NUMBER, CronExpression, parse
from .text import ENGLISH, Words
from .zones import as_zoneinfo

__all__ = ["and_list", "describe", "in_zone", "month_name", "weekday_name"]


_STEP = re.compile(r"\*/([0-9]+)")


def describe(
    expression: str | CronExpression, tz_name: str | tzinfo | None = "UTC", words: Words = ENGLISH
) -> str:
    """
    Describe a crontab expression, with its time zone, in English or through ``words``.

    ``describe("0 8 * * 1-5", "Asia/Seoul")`` is ``"At 08:00 on Monday through
    Friday (Asia/Seoul)"``. Common shapes get a short phrase; the rest get a
    longer, field-by-field one.
    """
    expr = parse(expression)
    zone = as_zoneinfo(tz_name)
    return in_zone(describe_without_zone(expr, words), zone.key, words)


def describe_without_zone(expression: str | CronExpression, words: Words = ENGLISH) -> str:
    """The phrase of :func:`describe` before its zone: ``At 08:00 every day``."""
    expr = parse(expression)
    phrase = _describe_common(expr, words)
    if phrase is None:
        phrase = _describe_generic(expr, words)
    return phrase


def in_zone(phrase: str, zone: str, words: Words = ENGLISH) -> str:
    """``At 08:00 every day (Asia/Seoul)``: a schedule and the zone its times are in."""
    return words.pgettext("schedule", "{schedule} ({zone})").format(schedule=phrase, zone=zone)


def weekday_name(number: int, words: Words = ENGLISH) -> str:
    """``Monday`` for 1 (cron's numbering: 0 and 7 are Sunday)."""
    # Each name is its own literal, with a context: a language this package has no
    # catalogue for keeps the English names of its English sentences.
    day = number % 7
    if day == 0:
        return words.pgettext("weekday", "Sunday")
    if day == 1:
        return words.pgettext("weekday", "Monday")
    if day == 2:
        return words.pgettext("weekday", "Tuesday")
    if day == 3:
        return words.pgettext("weekday", "Wednesday")
    if day == 4:
        return words.pgettext("weekday", "Thursday")
    if day == 5:
        return words.pgettext("weekday", "Friday")
    return words.pgettext("weekday", "Saturday")


def month_name(number: int, words: Words = ENGLISH) -> str:
    """``January`` for 1."""
    names = (
        words.pgettext("month", "January"),
        words.pgettext("month", "February"),
        words.pgettext("month", "March"),
        words.pgettext("month", "April"),
        words.pgettext("month", "May"),
        words.pgettext("month", "June"),
        words.pgettext("month", "July"),
        words.pgettext("month", "August"),
        words.pgettext("month", "September"),
        words.pgettext("month", "October"),
        words.pgettext("month", "November"),
        words.pgettext("month", "December"),
    )
    return names[number - 1]


def and_list(items: list[str], words: Words = ENGLISH) -> str:
    """``Monday, Wednesday and Friday``."""
    if len(items) <= 1:
        return "".join(items)
    head = words.pgettext("list separator", ", ").join(items[:-1])
    return words.pgettext("list", "{items} and {last}").format(items=head, last=items[-1])


def _time_and_days(time: str, days: str, words: Words) -> str:
    if not days:
        return time
    return words.pgettext("schedule", "{time} {days}").format(time=time, days=days)


# --- the common shapes --------------------------------------------------------------------


def _describe_common(expr: CronExpression, words: Words) -> str | None:
    fields = expr.fields
    second = fields[0] if expr.has_seconds else "0"
    minute, hour, dom, month, dow = fields[-5:]
    days = _describe_days(dom, month, dow, words)
    if days is None:
        return None

    if second != "0":
        if (minute, hour) != ("*", "*") or days:
            return None
        if second == "*":
            return words.pgettext("schedule", "Every second")
        step = _STEP.fullmatch(second)
        if not step:
            return None
        count = int(step.group(1))
        return words.npgettext(
            "schedule", "Every {count} second", "Every {count} seconds", count
        ).format(count=count)

    time: str | None = None
    minutes = _plain_numbers(minute)
    hours = _plain_numbers(hour)
    if hour == "*":
        if minute == "*":
            time = words.pgettext("schedule", "Every minute")
        elif step := _STEP.fullmatch(minute):
            count = int(step.group(1))
            time = words.npgettext(
                "schedule", "Every {count} minute", "Every {count} minutes", count
            ).format(count=count)
        elif minutes is not None:
            time = words.npgettext(
                "schedule",
                "Every hour at minute {minutes}",
                "Every hour at minutes {minutes}",
                len(minutes),
            ).format(minutes=and_list([str(m) for m in minutes], words))
    elif (step := _STEP.fullmatch(hour)) and minutes is not None and len(minutes) == 1:
        count = int(step.group(1))
        time = words.npgettext(
            "schedule",
            "Every {count} hour at minute {minute}",
            "Every {count} hours at minute {minute}",
            count,
        ).format(count=count, minute=minutes[0])
    elif minutes is not None and hours is not None and len(minutes) * len(hours) <= 6:
        times = and_list([f"{h:02d}:{m:02d}" for h in hours for m in minutes], words)
        time = words.pgettext("schedule", "At {times}").format(times=times)
        if not days:
            days = words.pgettext("days", "every day")
    if time is None:
        return None
    return _time_and_days(time, days, words)


def _describe_days(dom: str, month: str, dow: str, words: Words) -> str | None:
    """Return '' for every day, a phrase for a common restriction, None for anything else."""
    month_word = ""
    if month != "*":
        months = _plain_numbers(month, MONTH_NAMES, 1)
        if months is None or len(months) != 1:
            return None
        month_word = month_name(months[0], words)
    if dom == "*" and (dow == "*" or _weekdays(dow, words) == ""):
        if not month_word:
            return ""
        return words.pgettext("days", "every day in {month}").format(month=month_word)
    if dom == "*":
        weekdays = _weekdays(dow, words)
        if weekdays is None:
            return None
        if month_word:
            return words.pgettext("days", "on {weekdays} in {month}").format(
                weekdays=weekdays, month=month_word
            )
        return words.pgettext("days", "on {weekdays}").format(weekdays=weekdays)
    if dow != "*":
        return None  # both day fields restricted: cron ORs them, say it field by field
    if dom in ("L", "LW"):
        if dom == "L" and month_word:
            pattern = words.pgettext("days", "on the last day of every {month}")
        elif dom == "L":
            pattern = words.pgettext("days", "on the last day of every month")
        elif month_word:
            pattern = words.pgettext("days", "on the last weekday of every {month}")
        else:
            pattern = words.pgettext("days", "on the last weekday of every month")
        return pattern.format(month=month_word)
    numbers = _plain_numbers(dom)
    if numbers is None or len(numbers) > 4:
        return None
    if month_word and len(numbers) == 1:
        return words.pgettext("days", "on {month} {day}").format(month=month_word, day=numbers[0])
    ordinals = and_list([_ordinal(day, words) for day in numbers], words)
    if month_word:
        return words.pgettext("days", "on the {days} of every {month}").format(
            days=ordinals, month=month_word
        )
    return words.pgettext("days", "on the {days} of every month").format(days=ordinals)


def _weekdays(dow: str, words: Words) -> str | None:
    """The days of a day-of-week field in words; '' for all seven; None if not plain."""
    numbers = _plain_numbers(dow, DAY_NAMES, 0, allow_ranges=True)
    if numbers is None:
        return None
    return _weekday_set({n % 7 for n in numbers}, words)


def _weekday_set(days: set[int], words: Words) -> str:
    if len(days) == 7:
        return ""
    # A run of three or more days reads "Friday through Monday", even across Sunday.
    for start in days:
        if len(days) >= 3 and days == {(start + i) % 7 for i in range(len(days))}:
            end = (start + len(days) - 1) % 7
            return words.pgettext("weekdays", "{first} through {last}").format(
                first=weekday_name(start, words), last=weekday_name(end, words)
            )
    # Otherwise list them Monday first, Sunday last, as people write SAT,SUN.
    ordered = sorted(days, key=lambda n: (n + 6) % 7)
    return and_list([weekday_name(n, words) for n in ordered], words)


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


def _ordinal(number: int, words: Words) -> str:
    # One pattern per English suffix, as Django's humanize does: a language
    # without suffixes translates all four the same way.
    if 10 <= number % 100 <= 20 or number % 10 not in (1, 2, 3):
        pattern = words.pgettext("ordinal day", "{number}th")
    elif number % 10 == 1:
        pattern = words.pgettext("ordinal day", "{number}st")
    elif number % 10 == 2:
        pattern = words.pgettext("ordinal day", "{number}nd")
    else:
        pattern = words.pgettext("ordinal day", "{number}rd")
    return pattern.format(number=number)


# --- the long tail, field by field ----------------------------------------------------------

#: The pattern whose translation says a catalogue has the field-by-field phrases.
_FIELD_BY_FIELD = "{time} on {days}"


def _describe_generic(expr: CronExpression, words: Words) -> str:
    sentence = words.pgettext("cron fields", "{time} on {days}")
    if sentence == _FIELD_BY_FIELD:
        # English (or a language without these patterns): cronsim's explainer.
        try:
            return CronSim(expr.text, datetime(2000, 1, 1)).explain()
        except Exception:  # pragma: no cover - a description must never fail
            return f"On the schedule {expr.text}"
    fields = expr.fields
    second = fields[0] if expr.has_seconds else "0"
    minute, hour, dom, month, dow = fields[-5:]
    return sentence.format(
        time=_generic_time(second, minute, hour, words),
        days=_generic_days(dom, month, dow, words),
    )


@dataclass(frozen=True)
class _Item:
    """One comma-separated item of a crontab field: a value, a range, a step."""

    first: int | None  # None: ``*``
    last: int | None
    step: int | None


def _items(text: str, names: tuple[str, ...] = (), base: int = 0) -> list[_Item] | None:
    found = []
    for item in text.split(","):
        body, slash, step_text = item.partition("/")
        step = int(step_text) if slash else None
        if body == "*":
            found.append(_Item(None, None, step))
            continue
        first_text, dash, last_text = body.partition("-")
        values = []
        for token in (first_text, last_text) if dash else (first_text,):
            if NUMBER.fullmatch(token):
                values.append(int(token))
            elif token in names:
                values.append(names.index(token) + base)
            else:
                return None
        last = values[-1] if dash else (None if step is None else -1)  # -1: to the end
        found.append(_Item(values[0], last, step))
    return found


def _generic_time(second: str, minute: str, hour: str, words: Words) -> str:
    seconds, minutes, hours = _plain_numbers(second), _plain_numbers(minute), _plain_numbers(hour)
    if seconds is not None and minutes is not None and hours is not None:
        if len(seconds) * len(minutes) * len(hours) <= 6:
            times = [
                f"{h:02d}:{m:02d}" if s == 0 and len(seconds) == 1 else f"{h:02d}:{m:02d}:{s:02d}"
                for h in hours
                for m in minutes
                for s in seconds
            ]
            return words.pgettext("schedule", "At {times}").format(times=and_list(times, words))
    hour_words = _field_words(hour, "hour", words)
    minute_words = _field_words(minute, "minute", words)
    if second == "0":
        return words.pgettext("cron fields", "at {minutes} of {hours}").format(
            minutes=minute_words, hours=hour_words
        )
    return words.pgettext("cron fields", "at {seconds} of {minutes} of {hours}").format(
        seconds=_field_words(second, "second", words), minutes=minute_words, hours=hour_words
    )


def _generic_days(dom: str, month: str, dow: str, words: Words) -> str:
    months = "" if month == "*" else _field_words(month, "month", words)
    day_words = "" if dom == "*" else _field_words(dom, "day", words)
    weekday_words, monthly = ("", False) if dow == "*" else _weekday_words(dow, words)
    if weekday_words and not months:
        if monthly:
            pattern = words.pgettext("cron fields", "{weekdays} of every month")
        else:
            pattern = words.pgettext("cron fields", "{weekdays} of every week")
        weekday_words = pattern.format(weekdays=weekday_words)
    if day_words and weekday_words:
        # Both restricted: cron runs on the days that match either field.
        if months:
            pattern = words.pgettext("cron fields", "{days} or {weekdays} of {months}")
        else:
            pattern = words.pgettext("cron fields", "{days} of every month or {weekdays}")
    elif day_words:
        if months:
            pattern = words.pgettext("cron fields", "{days} of {months}")
        elif _STEP.fullmatch(dom):
            pattern = "{days}"  # "every 2 days": already a repetition
        else:
            pattern = words.pgettext("cron fields", "{days} of every month")
    elif weekday_words:
        if months:
            pattern = words.pgettext("cron fields", "{weekdays} of {months}")
        else:
            pattern = "{weekdays}"  # already "of every week" or "of every month"
    elif months:
        pattern = words.pgettext("cron fields", "every day of {months}")
    else:
        pattern = words.pgettext("cron fields", "every day")
    return pattern.format(days=day_words, weekdays=weekday_words, months=months)


def _weekday_words(dow: str, words: Words) -> tuple[str, bool]:
    """
    Plain days as runs and lists; ``MON#2`` and ``5L`` as the nth or last of the month.

    The flag says the days are only such monthly ones.
    """
    plain: set[int] = set()
    special: list[str] = []
    for item in dow.split(","):
        if "#" in item:
            day, _, nth = item.partition("#")
            special.append(
                words.pgettext("cron fields", "the {nth} {weekday}").format(
                    nth=_nth(int(nth), words),
                    weekday=weekday_name(_day_number(day), words),
                )
            )
        elif item.endswith("L"):
            special.append(
                words.pgettext("cron fields", "the last {weekday}").format(
                    weekday=weekday_name(_day_number(item[:-1]), words)
                )
            )
        else:
            plain.update(n % 7 for n in _expand(item, DAY_NAMES, 0, 7))
    pieces = []
    if plain:
        pieces.append(_weekday_set(plain, words) or words.pgettext("cron fields", "any day"))
    return and_list(pieces + special, words), not plain


def _expand(item: str, names: tuple[str, ...], low: int, high: int) -> set[int]:
    """The values of one item (``*``, ``3``, ``1-5``, ``*/2``, ``1-5/2``, ``MON``)."""
    body, slash, step_text = item.partition("/")
    step = int(step_text) if slash else 1
    if body == "*":
        first, last = low, high
    else:
        first_text, dash, last_text = body.partition("-")
        first = _number(first_text, names)
        last = _number(last_text, names) if dash else (high if slash else first)
    return set(range(first, last + 1, step))


def _number(token: str, names: tuple[str, ...]) -> int:
    return int(token) if NUMBER.fullmatch(token) else names.index(token)


def _nth(number: int, words: Words) -> str:
    if number == 1:
        return words.pgettext("nth weekday of the month", "first")
    if number == 2:
        return words.pgettext("nth weekday of the month", "second")
    if number == 3:
        return words.pgettext("nth weekday of the month", "third")
    if number == 4:
        return words.pgettext("nth weekday of the month", "fourth")
    return words.pgettext("nth weekday of the month", "fifth")


def _day_number(token: str) -> int:
    return _number(token, DAY_NAMES)


def _field_words(text: str, unit: str, words: Words) -> str:
    """One field's items in words, e.g. ``9 through 17 o'clock`` or ``every 15 minutes``."""
    if unit == "day" and text in ("L", "LW"):
        if text == "L":
            return words.pgettext("cron fields", "the last day")
        return words.pgettext("cron fields", "the last weekday")
    pieces = []
    for item in text.split(","):
        names, base = (MONTH_NAMES, 1) if unit == "month" else ((), 0)
        parsed = _items(item, names, base)
        if not parsed:
            pieces.append(item)
            continue
        (part,) = parsed
        pieces.append(_item_words(part, unit, words))
    return and_list(pieces, words)


def _item_words(item: _Item, unit: str, words: Words) -> str:
    if item.first is None and item.step is None:
        return _every_unit(unit, words)
    if item.first is None or item.step is not None:
        every = _every_n_units(unit, item.step or 1, words)
        if item.first is None:
            return every
        if item.last in (None, -1):
            return words.pgettext("cron fields", "{every} from {first}").format(
                every=every, first=_value(unit, item.first, words)
            )
        return words.pgettext("cron fields", "{every} from {first} through {last}").format(
            every=every,
            first=_value(unit, item.first, words),
            last=_value(unit, item.last, words),
        )
    if item.last is None:
        return _value(unit, item.first, words)
    if unit in ("second", "minute", "hour"):
        # "every hour from hour 9 through hour 17": a range of times is a repetition.
        return words.pgettext("cron fields", "{every} from {first} through {last}").format(
            every=_every_unit(unit, words),
            first=_value(unit, item.first, words),
            last=_value(unit, item.last, words),
        )
    return words.pgettext("cron fields", "{first} through {last}").format(
        first=_value(unit, item.first, words), last=_value(unit, item.last, words)
    )


def _value(unit: str, number: int, words: Words) -> str:
    if unit == "month":
        return month_name(number, words)
    if unit == "second":
        pattern = words.pgettext("cron fields", "second {number}")
    elif unit == "minute":
        pattern = words.pgettext("cron fields", "minute {number}")
    elif unit == "hour":
        pattern = words.pgettext("cron fields", "hour {number}")
    else:
        pattern = words.pgettext("cron fields", "day {number}")
    return pattern.format(number=number)


def _every_unit(unit: str, words: Words) -> str:
    if unit == "second":
        return words.pgettext("cron fields", "every second")
    if unit == "minute":
        return words.pgettext("cron fields", "every minute")
    if unit == "hour":
        return words.pgettext("cron fields", "every hour")
    if unit == "month":
        return words.pgettext("cron fields", "every month")
    return words.pgettext("cron fields", "every day")


def _every_n_units(unit: str, count: int, words: Words) -> str:
    if unit == "second":
        pattern = words.npgettext(
            "cron fields", "every {count} second", "every {count} seconds", count
        )
    elif unit == "minute":
        pattern = words.npgettext(
            "cron fields", "every {count} minute", "every {count} minutes", count
        )
    elif unit == "hour":
        pattern = words.npgettext("cron fields", "every {count} hour", "every {count} hours", count)
    elif unit == "month":
        pattern = words.npgettext(
            "cron fields", "every {count} month", "every {count} months", count
        )
    else:
        pattern = words.npgettext("cron fields", "every {count} day", "every {count} days", count)
    return pattern.format(count=count)
