"""
The schedule options that wrap a job's trigger: business days, limits, deterministic jitter.

``add_job(..., exclude=..., on_excluded=..., jitter=...)`` builds its trigger
as usual, then :func:`wrap_trigger` puts it in a
:class:`~.calendars.BusinessDays` (when ``exclude`` is given) and a
:class:`~.jitter.JitteredTrigger` (when the trigger has APScheduler's
``jitter``), in that order: the business-day rules decide the nominal fires,
jitter moves each one a little later.

No Django here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .calendars import BusinessDays, business_days
from .firing import FirePlan
from .jitter import JitteredTrigger, with_deterministic_jitter
from .limits import Limits

__all__ = ["with_exclusions", "wrap_trigger"]


def wrap_trigger(
    trigger: BaseTrigger,
    *,
    key: str,
    exclude: Any = None,
    on_excluded: str | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    max_runs: int | None = None,
    given_start: bool = False,
) -> BaseTrigger:
    """
    Return ``trigger`` with its business days, window, run limit and deterministic jitter.

    ``start_date``/``end_date`` are for triggers that do not take them
    themselves (crontab strings, date, and/or); ``given_start`` says that an
    interval trigger's ``start_date`` was given (not "now"); see the module.
    """
    jittered = with_deterministic_jitter(trigger, key)
    inner = jittered.trigger if isinstance(jittered, JitteredTrigger) else jittered
    if exclude is not None:
        if isinstance(inner, BusinessDays):
            raise ValueError(
                "The trigger already is a BusinessDays trigger: give exclude= to it or to "
                "add_job, not to both."
            )
        inner = business_days(inner, exclude, rule=on_excluded or "skip")
    elif on_excluded is not None:
        raise ValueError(
            f"on_excluded={on_excluded!r} needs exclude= (the dates or holiday calendar to "
            "leave out), for example exclude=holidays.country_holidays('KR')."
        )
    if start_date is None and end_date is None:
        # A window the trigger keeps itself (cron, interval) is repeated in a Limits
        # wrapper, so that it is shown in the schedule's description as every window
        # is. An interval's start is its anchor: shown only when it was given.
        if isinstance(inner, CronTrigger):
            start_date, end_date = inner.start_date, inner.end_date
        elif isinstance(inner, IntervalTrigger):
            start_date = inner.start_date if given_start else None
            end_date = inner.end_date
    if start_date is not None or end_date is not None or max_runs is not None:
        inner = Limits(inner, start_date=start_date, end_date=end_date, max_runs=max_runs)
    if isinstance(jittered, JitteredTrigger):
        return JitteredTrigger(inner, jittered.jitter_seconds, key)
    return inner


def with_exclusions(plan: FirePlan, trigger: BaseTrigger, previous: datetime) -> FirePlan:
    """
    ``plan`` with the holiday fires its business-day calendar left out, for the ledger.

    They are the wrapped trigger's fires on holidays and excluded dates (not on
    weekends outside the business weekdays) after ``previous`` (the job's
    stored next run time) and before the plan's next run time: each range is
    looked at by exactly one claim. At most 1000 are listed.
    """
    inner = trigger.trigger if isinstance(trigger, JitteredTrigger) else trigger
    if not isinstance(inner, BusinessDays) or inner.rule != "skip":
        return plan
    until = plan.next_run_time or (plan.run[-1] if plan.run else previous)
    excluded = inner.excluded_fires(previous, until)
    if not excluded:
        return plan
    reasons = tuple((fire, f"Skipped: not a business day ({why}).") for fire, why in excluded)
    return replace(plan, excluded=plan.excluded + reasons)
