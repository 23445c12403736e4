"""
Triggers with Debian cron semantics, and the bridge from APScheduler's cron trigger.

* :class:`CrontabTrigger` is an APScheduler trigger for a crontab string,
  evaluated by :mod:`django_metronome.crontab` in an IANA time zone.
* :func:`cron_trigger_as_crontab` recognises an APScheduler ``CronTrigger``
  whose fields a crontab can express exactly, and :func:`debian_next_fire_time`
  evaluates such a trigger with the crontab rules (other cron triggers keep
  APScheduler's own evaluation).
* :func:`next_fire_time` is the one entry point for any trigger: it routes
  cron triggers, including those inside ``AndTrigger``/``OrTrigger``, through
  the Debian rules, and bounds ``AndTrigger``'s search.

No Django here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.cron.expressions import AllExpression, RangeExpression
from apscheduler.triggers.interval import IntervalTrigger

from .codecs import register_trigger_codec
from .crontab import CronError, CronExpression, next_after, parse
from .describe import describe
from .zones import as_zoneinfo

__all__ = [
    "CrontabTrigger",
    "TriggerLoopError",
    "cron_trigger_as_crontab",
    "debian_next_fire_time",
    "next_fire_time",
    "seek_function",
]

_ONE_MICROSECOND = timedelta(microseconds=1)

#: How many rounds an AndTrigger may take to find a time all its triggers agree on.
AND_TRIGGER_MAX_ROUNDS = 10_000


class TriggerLoopError(RuntimeError):
    """A combining trigger found no common fire time within the allowed number of rounds."""


class CrontabTrigger(BaseTrigger):
    """
    Fire on a crontab schedule, with Debian cron's DST rules, in an IANA time zone.

    ``timezone`` is a zone name or a ``ZoneInfo``; None means UTC here, and
    django-metronome's schedulers give such a trigger the project's zone
    (``METRONOME["TIME_ZONE"]``, then ``TIME_ZONE``) when it is added:
    ``zone_given`` tells them whether one was given.

    Like APScheduler's triggers, the first fire (``previous_fire_time`` None)
    may be ``now`` itself; later fires are strictly after the previous one.
    """

    __slots__ = ("_expression", "timezone", "zone_given")

    def __init__(self, expression: str, timezone: str | tzinfo | None = None) -> None:
        self._expression = parse(expression)
        self.timezone: ZoneInfo = as_zoneinfo(timezone)
        self.zone_given = timezone is not None

    @property
    def expression(self) -> str:
        """The expression as written (whitespace collapsed), e.g. ``@daily``."""
        return str(self._expression)

    @property
    def cron(self) -> CronExpression:
        """The parsed expression."""
        return self._expression

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """Return the first fire at or after ``now``, or strictly after the previous fire."""
        after = previous_fire_time if previous_fire_time is not None else now - _ONE_MICROSECOND
        return next_after(self._expression, self.timezone, after)

    def describe(self) -> str:
        """Describe the schedule in English, e.g. ``At 08:00 every day (Asia/Seoul)``."""
        return describe(self._expression, self.timezone)

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "expression": self.expression, "timezone": self.timezone.key}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("version", 1) > 1:
            raise ValueError(
                f"Got serialized data for version {state['version']} of CrontabTrigger, but "
                "only version 1 can be handled; upgrade django-metronome on this machine."
            )
        self._expression = parse(state["expression"])
        self.timezone = as_zoneinfo(state["timezone"])
        self.zone_given = True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CrontabTrigger):
            return NotImplemented
        return self._expression == other._expression and self.timezone == other.timezone

    def __hash__(self) -> int:
        return hash((self._expression, self.timezone.key))

    def __str__(self) -> str:
        return f"crontab[{self.expression}, {self.timezone.key}]"

    def __repr__(self) -> str:
        return f"CrontabTrigger({self.expression!r}, timezone={self.timezone.key!r})"


# --- APScheduler's CronTrigger -----------------------------------------------------


def cron_trigger_as_crontab(trigger: CronTrigger) -> str | None:
    """
    Return the crontab string that fires exactly when ``trigger`` does, or None.

    Only "plain" cron triggers have one: second ``0``, year and week ``*``, and
    minute, hour, day, month and day-of-week made of ``*``, numbers, names,
    ranges and steps. ``last``, ``2nd fri`` and ``last fri`` do not count, nor
    does a trigger restricting both day and day_of_week (APScheduler requires
    both, while cron would accept either). Day-of-week numbers are converted:
    APScheduler counts from Monday = 0, cron from Sunday = 0.
    """
    fields = {field.name: field for field in trigger.fields}
    if _values(fields["second"].expressions, 0, 59) != {0}:
        return None
    for name in ("year", "week"):
        if not _is_star(fields[name].expressions):
            return None
    texts = {}
    for name in ("minute", "hour", "day", "month"):
        text = _field_text(fields[name].expressions)
        if text is None:
            return None
        texts[name] = text
    dow = _weekday_text(fields["day_of_week"].expressions)
    if dow is None:
        return None
    dom = texts["day"]
    if not dom.startswith("*") and not dow.startswith("*"):
        # cron ORs two restricted day fields; APScheduler ANDs them. A day field
        # that allows every day is a no-op under AND, so it can become "*".
        if _values(fields["day"].expressions, 1, 31) == set(range(1, 32)):
            dom = "*"
        else:
            return None
    text = f"{texts['minute']} {texts['hour']} {dom} {texts['month']} {dow}"
    try:
        parse(text)
    except CronError:
        return None  # e.g. day=31, month=2: valid for APScheduler, which never fires it
    return text


def _is_star(expressions: list[Any]) -> bool:
    return any(type(e) is AllExpression and not e.step for e in expressions)


def _field_text(expressions: list[Any]) -> str | None:
    """Write a field's expressions as crontab items (built from values, not str())."""
    items = []
    for expression in expressions:
        if type(expression) is AllExpression:
            items.append(f"*/{expression.step}" if expression.step else "*")
        elif isinstance(expression, RangeExpression):  # also month names
            first, last, step = expression.first, expression.last, expression.step
            if last is None:
                items.append(f"{first}/{step}")
            elif last == first:
                # str() of "5-5/2" is "5/2", which would mean 5, 7, 9, ... in cron.
                items.append(str(first))
            else:
                items.append(f"{first}-{last}" + (f"/{step}" if step else ""))
        else:
            return None  # last, 2nd fri, last fri: no plain crontab form
    return ",".join(items)


def _values(expressions: list[Any], low: int, high: int) -> set[int] | None:
    """The values a field's expressions allow, or None if one is not a plain expression."""
    values: set[int] = set()
    for expression in expressions:
        if type(expression) is AllExpression:
            first, last = low, high
        elif isinstance(expression, RangeExpression):
            first = expression.first
            last = high if expression.last is None else expression.last
        else:
            return None
        values.update(range(first, last + 1, expression.step or 1))
    return values


def _weekday_text(expressions: list[Any]) -> str | None:
    if _is_star(expressions):
        return "*"
    days = _values(expressions, 0, 6)
    if days is None:
        return None
    if len(days) == 7:
        return "*"  # APScheduler ANDs day fields, so "every weekday" is no restriction
    # APScheduler: Monday = 0 ... Sunday = 6. Cron: Monday = 1 ... Sunday = 7 (or 0).
    cron_days = sorted(day + 1 for day in days)
    runs: list[list[int]] = []
    for day in cron_days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)


def _as_iana_zone(value: tzinfo | None) -> ZoneInfo | None:
    try:
        return as_zoneinfo(value) if value is not None else None
    except CronError:
        return None  # a fixed offset or nameless zone: no DST to handle anyway


def debian_next_fire_time(
    trigger: CronTrigger, previous_fire_time: datetime | None, now: datetime
) -> datetime | None:
    """
    Evaluate an APScheduler cron trigger with Debian cron semantics where it has them.

    Plain cron triggers (see :func:`cron_trigger_as_crontab`) in an IANA zone
    get the crontab rules, ``start_date`` and ``end_date`` (both inclusive,
    and ``start_date`` also when a previous fire is given) and APScheduler's
    jitter, clamped to ``end_date`` as APScheduler does. Any other cron
    trigger is asked for its own ``get_next_fire_time``.

    The first fire may be ``now``; later fires are strictly after
    ``previous_fire_time`` (APScheduler would go back to ``now`` if the clock
    went back behind the previous fire; this never fires the same time twice).
    """
    text = cron_trigger_as_crontab(trigger)
    zone = _as_iana_zone(trigger.timezone)
    if text is None or zone is None:
        return trigger.get_next_fire_time(previous_fire_time, now)
    after = previous_fire_time if previous_fire_time is not None else now - _ONE_MICROSECOND
    after = after.astimezone(UTC)
    if trigger.start_date is not None:
        after = max(after, trigger.start_date.astimezone(UTC) - _ONE_MICROSECOND)
    fire = next_after(text, zone, after)
    if fire is None:
        return None
    end_date = trigger.end_date
    if end_date is not None and fire.astimezone(UTC) > end_date.astimezone(UTC):
        return None
    fire = trigger._apply_jitter(fire, trigger.jitter, now)
    if end_date is not None and fire.astimezone(UTC) > end_date.astimezone(UTC):
        fire = end_date
    return fire.astimezone(trigger.timezone)


# --- any trigger ---------------------------------------------------------------------


def next_fire_time(
    trigger: BaseTrigger, previous_fire_time: datetime | None, now: datetime
) -> datetime | None:
    """
    Return ``trigger``'s next fire time, with Debian semantics for plain cron triggers.

    This is ``trigger.get_next_fire_time(previous_fire_time, now)``, except
    that cron triggers, also inside ``AndTrigger`` and ``OrTrigger``, go
    through :func:`debian_next_fire_time`, and that an ``AndTrigger`` whose
    triggers never agree raises TriggerLoopError after
    ``AND_TRIGGER_MAX_ROUNDS`` rounds instead of looping for ever.
    """
    kind = type(trigger)
    if kind is CronTrigger:
        return debian_next_fire_time(trigger, previous_fire_time, now)  # type: ignore[arg-type]
    if kind is OrTrigger:
        fires = [
            fire
            for child in trigger.triggers  # type: ignore[attr-defined]
            if (fire := next_fire_time(child, previous_fire_time, now)) is not None
        ]
        if not fires:
            return None
        earliest = min(fires, key=lambda fire: fire.astimezone(UTC))
        return trigger._apply_jitter(earliest, trigger.jitter, now)  # type: ignore[attr-defined]
    if kind is AndTrigger:
        return _and_next_fire_time(trigger, previous_fire_time, now)  # type: ignore[arg-type]
    return trigger.get_next_fire_time(previous_fire_time, now)


def _and_next_fire_time(
    trigger: AndTrigger, previous_fire_time: datetime | None, now: datetime
) -> datetime | None:
    # APScheduler raises ``now`` to the latest candidate each round but keeps
    # passing ``previous_fire_time``, which cron triggers prefer over ``now``:
    # once the first round disagrees it asks the same question for ever. Here
    # later rounds ask for the first fire at or after the latest candidate,
    # which gives the same answer whenever APScheduler finds one.
    previous = previous_fire_time
    for _ in range(AND_TRIGGER_MAX_ROUNDS):
        fires = [next_fire_time(child, previous, now) for child in trigger.triggers]
        if any(fire is None for fire in fires):
            return None
        instants = [fire.astimezone(UTC) for fire in fires]  # type: ignore[union-attr]
        if min(instants) == max(instants):
            return trigger._apply_jitter(fires[0], trigger.jitter, now)
        now = fires[instants.index(max(instants))]  # type: ignore[assignment]
        previous = None
    raise TriggerLoopError(
        f"{trigger} found no time all its triggers agree on in {AND_TRIGGER_MAX_ROUNDS} "
        "rounds; combine triggers that can coincide (cron triggers with compatible "
        "fields), or use an OrTrigger."
    )


def seek_function(trigger: BaseTrigger) -> Callable[[datetime], datetime | None] | None:
    """
    Return ``seek(t)``, the first fire at or after ``t``, if ``trigger`` allows it; else None.

    A trigger allows it when its fire times do not depend on the previous fire:
    crontab triggers, and cron and interval triggers without jitter (and
    ``AndTrigger``/``OrTrigger`` of those). Date and calendar-interval
    triggers, and jittered ones, answer ``(None, t)`` differently from stepping
    through their fires, so they get None. :func:`~django_metronome.firing.plan_fires`
    uses ``seek`` to skip over long downtimes instead of stepping through them.
    """
    if not _is_history_free(trigger):
        return None

    def seek(instant: datetime) -> datetime | None:
        return next_fire_time(trigger, None, instant)

    return seek


def _is_history_free(trigger: BaseTrigger) -> bool:
    kind = type(trigger)
    if kind is CrontabTrigger:
        return True
    if kind in (CronTrigger, IntervalTrigger):
        return not trigger.jitter  # type: ignore[attr-defined]
    if kind in (AndTrigger, OrTrigger):
        return not trigger.jitter and all(  # type: ignore[attr-defined]
            _is_history_free(child)
            for child in trigger.triggers  # type: ignore[attr-defined]
        )
    return False


# --- JSON ------------------------------------------------------------------------------


def _encode(trigger: CrontabTrigger) -> dict[str, Any]:
    return {"expression": trigger.expression, "timezone": trigger.timezone.key}


def _decode(data: dict[str, Any]) -> CrontabTrigger:
    return CrontabTrigger(data["expression"], data["timezone"])


register_trigger_codec("crontab", CrontabTrigger, _encode, _decode)
