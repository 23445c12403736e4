"""
Refusing a bad job when it is added, with a message that names the part.

Every way of adding a job (``scheduler.add_job``, ``@scheduler.scheduled_job``,
``django_metronome.add_job``, ``modify_job`` and ``reschedule_job``) goes
through these checks before any query, so that the same mistake gives the same
message on SQLite, PostgreSQL and MariaDB, and the keyword forms of APScheduler's
triggers (``"cron", day_of_week="MOM"``) are explained as well as crontab
strings are:

* a trigger argument that is wrong is named, with its value and, for names
  (weekdays, months, time zones, arguments), the closest right ones;
* an interval must move forward and be at least ``METRONOME["MIN_INTERVAL"]``
  (one second by default): each fire writes a row to the run history;
* ``start_date`` may not be after ``end_date``;

No Django here: the caller passes the interval floor.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import convert_to_datetime

from ..exceptions import InvalidTrigger, InvalidTriggerArgument, UnknownTrigger
from .triggers import CrontabTrigger
from .zones import unknown_zone_message

__all__ = [
    "InvalidTrigger",
    "InvalidTriggerArgument",
    "UnknownTrigger",
    "check_trigger",
    "create_trigger",
]


# --- building triggers -------------------------------------------------------------

#: What APScheduler's named triggers are, for naming their arguments.
TRIGGER_CLASSES: dict[str, type[BaseTrigger]] = {
    "cron": CronTrigger,
    "interval": IntervalTrigger,
    "date": DateTrigger,
    "calendarinterval": CalendarIntervalTrigger,
    "and": AndTrigger,
    "or": OrTrigger,
    "crontab": CrontabTrigger,
}

_NAMES = {
    "day_of_week": ("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
    "month": ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
}
_FIELD_HINTS = {
    "year": "a year (4 digits)",
    "month": "1-12 or jan-dec",
    "day": "1-31, last, or a weekday's position such as 'last fri' or '2nd mon'",
    "week": "an ISO week number, 1-53",
    "day_of_week": "0-6 or mon-sun (0 is Monday, unlike crontab strings)",
    "hour": "0-23",
    "minute": "0-59",
    "second": "0-59",
}
_DATE_ARGUMENTS = ("run_date", "start_date", "end_date")
_INTERVAL_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


def create_trigger(
    create: Callable[[Any, dict[str, Any]], BaseTrigger],
    trigger: Any,
    trigger_args: dict[str, Any],
    known: Mapping[str, Any],
    min_interval: float,
) -> BaseTrigger:
    """
    Build a trigger with ``create`` (APScheduler's factory), then check it.

    Whatever ``create`` raises about an argument is raised again as an
    :class:`InvalidTrigger` that names the argument and its value and suggests
    close names; ``known`` holds the trigger names the scheduler knows.
    """
    if isinstance(trigger, str):
        _check_trigger_name(trigger, known)
        if trigger != "crontab":  # a crontab string's own errors already say it all
            _check_zone_argument(trigger, trigger_args)
    try:
        built = create(trigger, trigger_args)
    except InvalidTrigger:
        raise
    except (TypeError, ValueError, LookupError, OverflowError) as exc:
        name = trigger if isinstance(trigger, str) else type(trigger).__name__
        message = _explain(name, trigger_args, exc)
        if message is None:
            raise
        kind = InvalidTriggerArgument if isinstance(exc, TypeError) else InvalidTrigger
        raise kind(message) from exc
    check_trigger(built, min_interval)
    return built


def _check_trigger_name(name: str, known: Mapping[str, Any]) -> None:
    if name in known or name == "crontab":
        return
    names = sorted({*known, "crontab"})
    close = difflib.get_close_matches(name.lower(), names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownTrigger(
        f"Unknown trigger {name!r}.{hint} Use one of {', '.join(map(repr, names))}, a "
        "trigger instance, or a crontab string such as '0 8 * * *'."
    )


def _check_zone_argument(name: str, trigger_args: Mapping[str, Any]) -> None:
    zone = trigger_args.get("timezone")
    if not isinstance(zone, str):
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        message = unknown_zone_message(zone)
        raise InvalidTrigger(f"Bad {name} trigger: {message[0].lower()}{message[1:]}") from None


def _explain(name: str, trigger_args: Mapping[str, Any], exc: Exception) -> str | None:
    """Which argument made the trigger fail, and why, or None if it cannot be told."""
    cls = TRIGGER_CLASSES.get(name)
    if isinstance(exc, TypeError):
        unexpected = _UNEXPECTED.search(str(exc))
        if unexpected is not None:
            return _unknown_argument(name, cls, unexpected.group(1))
    if name == "cron":
        for field in CronTrigger.FIELD_NAMES:
            if field in trigger_args and trigger_args[field] is not None:
                message = _cron_field_error(field, trigger_args[field])
                if message is not None:
                    return f"Bad cron trigger: {message}"
    if name == "interval":
        for unit in _INTERVAL_UNITS:
            value = trigger_args.get(unit, 0)
            try:
                timedelta(**{unit: value})
            except (TypeError, ValueError, OverflowError) as error:
                return (
                    f"Bad interval trigger: {unit}={value!r} is not a number of {unit} ({error})."
                )
    for argument in _DATE_ARGUMENTS:
        value = trigger_args.get(argument)
        if value is None or isinstance(value, date):
            continue
        try:
            if cls is CalendarIntervalTrigger:
                if not isinstance(value, date):
                    date.fromisoformat(str(value))
            else:
                convert_to_datetime(value, "UTC", argument)
        except (TypeError, ValueError) as error:
            return (
                f"Bad {name} trigger: {argument}={value!r} is not a date and time ({error}); "
                "give a datetime, or an ISO 8601 string such as '2026-12-01 09:00:00'."
            )
    if "end_date cannot be earlier than start_date" in str(exc):
        return _order_message(name, trigger_args.get("start_date"), trigger_args.get("end_date"))
    return None


def _unknown_argument(name: str, cls: type[BaseTrigger] | None, argument: str) -> str:
    if cls is None:
        return f"Bad {name} trigger: it takes no argument {argument!r}."
    takes = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    close = difflib.get_close_matches(argument, takes, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"Bad {name} trigger: it takes no argument {argument!r}.{hint} It takes {', '.join(takes)}."
    )


def _cron_field_error(field: str, value: Any) -> str | None:
    field_class = CronTrigger.FIELDS_MAP[field]
    try:
        field_class(field, value, False)
    except (TypeError, ValueError) as error:
        detail = str(error).rstrip(".")
        suggestion = _close_name(field, value)
        message = f"the {field} field has {value!r}, which is not valid ({detail}); it takes "
        message += _FIELD_HINTS[field]
        if suggestion:
            message += f". Did you mean {suggestion!r}?"
        else:
            message += ", with ranges (a-b), lists (a,b), steps (*/n) and * for all."
        return message
    return None


def _close_name(field: str, value: Any) -> str | None:
    """``"MOM"`` -> ``"mon"``: the expression with each misspelt name corrected."""
    names = _NAMES.get(field)
    if names is None or not isinstance(value, str):
        return None
    changed = False

    def fix(match: re.Match[str]) -> str:
        nonlocal changed
        word = match.group(0)
        if word.lower() in names or word.lower() in ("last", "st", "nd", "rd", "th", "x"):
            return word
        close = difflib.get_close_matches(word.lower(), names, n=1, cutoff=0.5)
        if not close:
            return word
        changed = True
        return close[0]

    corrected = re.sub(r"[A-Za-z]+", fix, value)
    return corrected if changed else None


# --- checking built triggers -------------------------------------------------------


def check_trigger(trigger: BaseTrigger, min_interval: float) -> None:
    """Refuse a trigger that moves backwards, too fast, or ends before it starts."""
    if isinstance(trigger, AndTrigger | OrTrigger):
        for child in trigger.triggers:
            check_trigger(child, min_interval)
        return
    name = _trigger_name(trigger)
    if isinstance(trigger, IntervalTrigger):
        length = trigger.interval_length
        if length <= 0:
            raise InvalidTrigger(
                f"Bad interval trigger: the interval is {_seconds(length)}; it must be "
                "positive (a trigger must move forward)."
            )
        if length < min_interval:
            raise InvalidTrigger(
                f"Bad interval trigger: the interval is {_seconds(length)}, shorter than "
                f"METRONOME['MIN_INTERVAL'] ({_seconds(min_interval)}). Each fire writes a "
                "row to the run history; use a longer interval, or lower MIN_INTERVAL in "
                "the settings if you mean it."
            )
    start = getattr(trigger, "start_date", None)
    end = getattr(trigger, "end_date", None)
    if start is not None and end is not None and type(start) is type(end) and start > end:
        raise InvalidTrigger(_order_message(name, start, end))


def _order_message(name: str, start: Any, end: Any) -> str:
    return (
        f"Bad {name} trigger: start_date {_shown(start)} is after end_date {_shown(end)}, so "
        "it would never fire. Swap them, or leave end_date out."
    )


def _trigger_name(trigger: BaseTrigger) -> str:
    for name, cls in TRIGGER_CLASSES.items():
        if type(trigger) is cls:
            return name
    return type(trigger).__name__


def _shown(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return repr(value)


def _seconds(value: float) -> str:
    return f"{value:g} s"
