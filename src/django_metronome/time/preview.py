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
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .describe import describe
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


def describe_trigger(trigger: BaseTrigger) -> str:
    """
    Say in English when a trigger fires: ``At 08:00 every day (Asia/Seoul)``.

    Crontab triggers and cron triggers a crontab can express get a sentence;
    intervals and single dates a short phrase; anything else its own text.
    """
    if isinstance(trigger, CrontabTrigger):
        return trigger.describe()
    if isinstance(trigger, CronTrigger):
        expression = cron_trigger_as_crontab(trigger)
        if expression is not None:
            return describe(expression, trigger.timezone)
    if isinstance(trigger, IntervalTrigger):
        return f"Every {_duration(trigger.interval.total_seconds())} ({trigger.timezone})"
    if isinstance(trigger, DateTrigger):
        return f"Once, at {trigger.run_date.isoformat(sep=' ')}"
    return str(trigger)


def _duration(seconds: float) -> str:
    units = [("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)]
    for name, size in units:
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return name if count == 1 else f"{count} {name}s"
    return f"{seconds:g} seconds"
