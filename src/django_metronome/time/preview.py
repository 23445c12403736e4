"""
Preview the next fire times of any APScheduler trigger, as the scheduler will compute them.

Plain cron triggers get Debian cron's DST rules (see
:func:`django_metronome.triggers.next_fire_time`); times come back aware, in
the trigger's own zone, so the wall clock reads right on both sides of a DST
change. No Django here.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .describe import and_list, describe, in_zone
from .text import ENGLISH, Words
from .triggers import CrontabTrigger, TriggerLoopError, cron_trigger_as_crontab, next_fire_time

__all__ = ["MAX_PREVIEW", "describe_trigger", "next_fire_times"]

#: The most fire times one preview computes.
MAX_PREVIEW = 1000


def next_fire_times(
    trigger: BaseTrigger, count: int = 10, now: datetime | None = None
) -> list[datetime]:
    """
    Return up to ``count`` fire times of ``trigger``, the first at or after ``now``.

    The list is shorter when the schedule ends, or when the trigger stops
    making progress: it returns a time not after the previous one, or (for an
    ``AndTrigger``) finds no common time. Jitter is left out, since it is
    random. ``now`` defaults to the current time.
    """
    if not 0 <= count <= MAX_PREVIEW:
        raise ValueError(f"count must be between 0 and {MAX_PREVIEW}, got {count}.")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be an aware datetime, got {now!r}.")
    trigger = _without_jitter(trigger)
    fires: list[datetime] = []
    previous: datetime | None = None
    while len(fires) < count:
        try:
            # Stepping passes the previous fire as "now" too, as APScheduler's
            # own catch-up does, so triggers move on from it, not from today.
            fire = next_fire_time(trigger, previous, previous or now)
        except TriggerLoopError:
            break
        if fire is None:
            break
        if previous is not None and fire.astimezone(UTC) <= previous.astimezone(UTC):
            break  # a trigger that does not move forward would repeat itself for ever
        fires.append(fire)
        previous = fire
    return fires


def _without_jitter(trigger: BaseTrigger) -> BaseTrigger:
    """Return a copy of ``trigger`` (and of any triggers it combines) with jitter off."""
    if not _has_jitter(trigger):
        return trigger
    clone = copy.deepcopy(trigger)
    _clear_jitter(clone)
    return clone


def _has_jitter(trigger: BaseTrigger) -> bool:
    if getattr(trigger, "jitter", None):
        return True
    return any(_has_jitter(child) for child in getattr(trigger, "triggers", ()))


def _clear_jitter(trigger: BaseTrigger) -> None:
    if getattr(trigger, "jitter", None):
        trigger.jitter = None  # type: ignore[attr-defined]
    for child in getattr(trigger, "triggers", ()):
        _clear_jitter(child)


def describe_trigger(trigger: BaseTrigger, words: Words = ENGLISH) -> str:
    """
    Say when a trigger fires: ``At 08:00 every day (Asia/Seoul)``.

    Crontab triggers and cron triggers a crontab can express get a sentence;
    intervals, calendar intervals and single dates a short phrase; combined
    triggers their parts; anything else its own text. English unless
    ``words`` is a catalogue (see :mod:`django_metronome.time.text`).
    """
    if isinstance(trigger, CrontabTrigger):
        return describe(trigger.expression, trigger.timezone, words)
    if isinstance(trigger, CronTrigger):
        expression = cron_trigger_as_crontab(trigger)
        if expression is not None:
            return describe(expression, trigger.timezone, words)
    if isinstance(trigger, IntervalTrigger):
        return in_zone(
            _every(trigger.interval.total_seconds(), words), str(trigger.timezone), words
        )
    if isinstance(trigger, DateTrigger):
        return words.pgettext("schedule", "Once, at {when}").format(
            when=trigger.run_date.isoformat(sep=" ")
        )
    if isinstance(trigger, CalendarIntervalTrigger):
        return in_zone(_calendar(trigger, words), str(trigger.timezone), words)
    if isinstance(trigger, AndTrigger | OrTrigger):
        parts = "; ".join(describe_trigger(child, words) for child in trigger.triggers)
        if isinstance(trigger, AndTrigger):
            pattern = words.pgettext("schedule", "When all of these fire at once: {triggers}")
        else:
            pattern = words.pgettext("schedule", "Whenever one of these fires: {triggers}")
        return pattern.format(triggers=parts)
    describe_in = getattr(trigger, "describe_in", None)  # wrappers: business days, jitter...
    if callable(describe_in):
        return str(describe_in(words))
    return str(trigger)


def _every(seconds: float, words: Words) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            return _every_unit(unit, int(seconds // size), words)
    return words.pgettext("interval", "Every {number} seconds").format(number=f"{seconds:g}")


def _every_unit(unit: str, count: int, words: Words) -> str:
    # "Every day", not "Every 1 day": the singular has its own pattern.
    if unit == "day":
        if count == 1:
            return words.pgettext("interval", "Every day")
        pattern = words.npgettext("interval", "Every {count} day", "Every {count} days", count)
    elif unit == "hour":
        if count == 1:
            return words.pgettext("interval", "Every hour")
        pattern = words.npgettext("interval", "Every {count} hour", "Every {count} hours", count)
    elif unit == "minute":
        if count == 1:
            return words.pgettext("interval", "Every minute")
        pattern = words.npgettext(
            "interval", "Every {count} minute", "Every {count} minutes", count
        )
    else:
        if count == 1:
            return words.pgettext("interval", "Every second")
        pattern = words.npgettext(
            "interval", "Every {count} second", "Every {count} seconds", count
        )
    return pattern.format(count=count)


def _calendar(trigger: CalendarIntervalTrigger, words: Words) -> str:
    time = trigger._time.strftime("%H:%M" if trigger._time.second == 0 else "%H:%M:%S")
    units = [
        (unit, count)
        for unit, count in (
            ("year", trigger.years),
            ("month", trigger.months),
            ("week", trigger.weeks),
            ("day", trigger.days),
        )
        if count
    ]
    if len(units) == 1 and units[0][1] == 1:
        unit = units[0][0]
        if unit == "year":
            pattern = words.pgettext("calendar interval", "Every year at {time}")
        elif unit == "month":
            pattern = words.pgettext("calendar interval", "Every month at {time}")
        elif unit == "week":
            pattern = words.pgettext("calendar interval", "Every week at {time}")
        else:
            pattern = words.pgettext("calendar interval", "Every day at {time}")
        return pattern.format(time=time)
    period = and_list([_calendar_unit(unit, count, words) for unit, count in units], words)
    return words.pgettext("calendar interval", "Every {period} at {time}").format(
        period=period, time=time
    )


def _calendar_unit(unit: str, count: int, words: Words) -> str:
    if unit == "year":
        pattern = words.npgettext("calendar interval", "{count} year", "{count} years", count)
    elif unit == "month":
        pattern = words.npgettext("calendar interval", "{count} month", "{count} months", count)
    elif unit == "week":
        pattern = words.npgettext("calendar interval", "{count} week", "{count} weeks", count)
    else:
        pattern = words.npgettext("calendar interval", "{count} day", "{count} days", count)
    return pattern.format(count=count)
