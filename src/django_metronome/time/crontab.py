"""
Crontab expressions with Debian/ISC cron semantics, over any IANA time zone.

This module is pure: no Django, no I/O. It validates expressions itself (so
that errors name the field and the value), uses ``cronsim`` only to find
matching *wall-clock* times (naive datetimes), and places those on the time
line itself. cronsim stays an implementation detail. See ``docs/time.md``.

The rules, in short (Debian's ``cron(8)``):

* A job is *fixed-time* when neither its minute nor its hour field starts
  with ``*`` (``30 2 * * *``, ``0 0-23/2 * * *``, ``@daily``); otherwise it is
  a *wildcard* job (``*/5 * * * *``, ``0 */2 * * *``, ``@hourly``).
* A fixed-time job whose wall time does not exist (spring forward) runs at
  the first instant after the gap; one whose wall time happens twice (fall
  back) runs once, at the first occurrence.
* A wildcard job keeps real-time cadence: its slots inside a gap do not
  exist, and it runs in both passes of a repeated hour.
* Day-of-month and day-of-week are ANDed when either starts with ``*``, and
  ORed otherwise.

The same rules apply to expressions with a leading seconds field (cronsim
turns its DST handling off for those): whether a job is fixed-time depends on
its minute and hour fields only.
"""

from __future__ import annotations

import calendar
import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NoReturn
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from .errors import CronError
from .zones import as_zoneinfo

__all__ = [
    "ALIASES",
    "CronError",
    "CronExpression",
    "next_after",
    "parse",
]

#: The ``@`` shortcuts Debian cron accepts, and what they stand for. ``@hourly``
#: is a wildcard job (its hour field is ``*``); the others are fixed-time jobs.
ALIASES: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
NUMBER = re.compile(r"[0-9]+")
# How far apart _first_offset_change probes the offset. tzdata has no zone
# changing its offset twice within six hours (Ramadan suspensions last weeks).
_PROBE = timedelta(hours=6)


# --- parsing ---------------------------------------------------------------------


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_base: int = 0
    names_hint: str = ""


_SECOND = _FieldSpec("second", 0, 59)
_MINUTE = _FieldSpec("minute", 0, 59)
_HOUR = _FieldSpec("hour", 0, 23)
_DOM = _FieldSpec("day-of-month", 1, 31)
_MONTH = _FieldSpec("month", 1, 12, MONTH_NAMES, 1, " or a month name (JAN-DEC)")
# 7 is Sunday as well as 0, as in every cron since Vixie's.
_DOW = _FieldSpec("day-of-week", 0, 7, DAY_NAMES, 0, " or a day name (SUN-SAT)")

_FIVE_FIELDS = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW)
_SIX_FIELDS = (_SECOND, *_FIVE_FIELDS)


@dataclass(frozen=True)
class CronExpression:
    """
    A validated crontab expression.

    ``text`` is the normalised form that is evaluated (aliases expanded, upper
    case, single spaces); ``source`` is what was written, with whitespace
    collapsed, and does not take part in equality.
    """

    text: str
    has_seconds: bool
    is_fixed_time: bool
    source: str = field(default="", compare=False)

    @property
    def fields(self) -> tuple[str, ...]:
        """The five or six fields of ``text``, seconds first when present."""
        return tuple(self.text.split())

    def __str__(self) -> str:
        return self.source or self.text


def parse(expression: str | CronExpression) -> CronExpression:
    """
    Validate a crontab expression and return its normalised form.

    Raise CronError naming the field and the value when it is not valid.
    """
    if isinstance(expression, CronExpression):
        return expression
    if not isinstance(expression, str):
        raise TypeError(f"A crontab expression must be a str, not {type(expression).__name__}.")
    return _parse(expression)


@functools.lru_cache(maxsize=1024)
def _parse(expression: str) -> CronExpression:
    source = " ".join(expression.split())

    def fail(detail: str) -> NoReturn:
        raise CronError(f"Bad crontab expression {expression!r}: {detail}")

    if not source:
        fail(
            "it is empty. Write 5 fields (minute hour day-of-month month day-of-week), "
            "6 with a leading seconds field, or an alias such as @daily."
        )
    text = source
    if source.startswith("@"):
        alias = source.lower()
        if alias == "@reboot":
            fail(
                "@reboot runs when the cron daemon starts, which a scheduler cannot "
                "express; schedule a one-off 'date' job when your process starts instead."
            )
        if alias not in ALIASES:
            fail(f"unknown alias {source}; use one of {', '.join(ALIASES)}.")
        text = ALIASES[alias]

    parts = text.split()
    if len(parts) not in (5, 6):
        fail(
            f"it has {len(parts)} field{'s' if len(parts) != 1 else ''}; write 5 (minute "
            "hour day-of-month month day-of-week) or 6 (a seconds field, then those 5)."
        )
    specs = _SIX_FIELDS if len(parts) == 6 else _FIVE_FIELDS
    values: dict[str, set[int]] = {}
    for spec, part in zip(specs, parts, strict=True):
        values[spec.name] = _check_field(spec, part, fail)

    minute, hour, dom, _month, dow = parts[-5:]
    if (dom.startswith("*") or dow.startswith("*")) and "L" not in dom.upper():
        # Both day fields must match, so a day no allowed month has never comes.
        days = values["day-of-month"]
        month_days = max(_month_length(month) for month in values["month"])
        if days and min(days) > month_days:
            fail(f"no allowed month has a day {min(days)}, so the job would never run.")

    normalised = " ".join(parts).upper()
    try:
        CronSim(normalised, datetime(2000, 1, 1))
    except CronSimError as exc:  # pragma: no cover - our checks are meant to catch it first
        fail(f"{str(exc).lower()} field.")
    return CronExpression(
        text=normalised,
        has_seconds=len(parts) == 6,
        is_fixed_time=not minute.startswith("*") and not hour.startswith("*"),
        source=source,
    )


def _month_length(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2001, month)[1]


def _check_field(spec: _FieldSpec, part: str, fail: Callable[[str], NoReturn]) -> set[int]:
    """Validate one field; return the plain day numbers it allows (for the never-runs check)."""
    allowed: set[int] = set()
    for item in part.split(","):
        allowed |= _check_item(spec, item, fail)
    return allowed


def _check_item(spec: _FieldSpec, item: str, fail: Callable[[str], NoReturn]) -> set[int]:
    where = f"the {spec.name} field"
    upper = item.upper()
    if not item:
        fail(f"{where} has an empty list item; remove the extra comma.")
    if spec is _DOM and upper in ("L", "LW"):
        return set()  # last day / last weekday of the month
    if spec is _DOW and upper.endswith("L"):
        day = upper[:-1]
        if not NUMBER.fullmatch(day):
            fail(
                f"{where} has {item!r}; 'nL' (the last given weekday of the month) takes "
                "a day number 0-7 before the L, such as 5L for the last Friday."
            )
        _value(spec, day, fail)
        return set()
    if spec is _DOW and "#" in upper:
        day, _, nth = upper.partition("#")
        _value(spec, day, fail)
        if not NUMBER.fullmatch(nth) or not 1 <= int(nth) <= 5:
            fail(f"{where} has {item!r}; the number after # must be 1-5.")
        return set()
    if upper == "?":
        fail(f"{where} has '?', which is Quartz syntax; write '*' instead.")
    if spec is _DOM and upper.endswith("W"):
        fail(
            f"{where} has {item!r}; of the 'W' forms only LW (the last weekday of the "
            "month) is supported."
        )

    range_part, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not NUMBER.fullmatch(step_text):
            fail(f"{where} has the step '/{step_text}', which is not a number.")
        step = int(step_text)
        if step == 0:
            fail(f"{where} has the step /0; a step must be 1 or more.")
    if range_part == "*":
        return set(range(spec.low, spec.high + 1, step))
    first_text, dash, last_text = range_part.partition("-")
    first = _value(spec, first_text, fail)
    if not dash:
        last = spec.high if slash else first
    else:
        last = _value(spec, last_text, fail)
        if last < first:
            fail(
                f"{where} has the range {range_part}, which runs backwards, and cron would "
                f"never match it; write it as a list instead, such as "
                f"{_wrapped_suggestion(spec, first_text, last_text, first, last)}."
            )
    return set(range(first, last + 1, step))


def _value(spec: _FieldSpec, token: str, fail: Callable[[str], NoReturn]) -> int:
    where = f"the {spec.name} field"
    if NUMBER.fullmatch(token):
        number = int(token)
        if not spec.low <= number <= spec.high:
            fail(f"{where} has {token}, which is outside {spec.low}-{spec.high}.")
        return number
    if token.upper() in spec.names:
        return spec.names.index(token.upper()) + spec.names_base
    if not token:
        fail(f"{where} has a range or step with a missing value.")
    if "L" in token.upper() and spec in (_SECOND, _MINUTE, _HOUR, _MONTH):
        fail(
            f"{where} has {token!r}; L is only allowed in the day-of-month field (L, LW) "
            "and the day-of-week field (nL)."
        )
    fail(f"{where} has {token!r}, which is not a number{spec.names_hint}.")


def _wrapped_suggestion(
    spec: _FieldSpec, first_text: str, last_text: str, first: int, last: int
) -> str:
    high = 6 if spec is _DOW else spec.high  # Saturday: 7 would repeat Sunday
    by_name = not NUMBER.fullmatch(first_text) and not NUMBER.fullmatch(last_text)

    def show(number: int) -> str:
        return spec.names[number - spec.names_base] if by_name else str(number)

    def span(a: int, b: int) -> str:
        return show(a) if a == b else f"{show(a)}-{show(b)}"

    return f"{span(first, high)},{span(spec.low, last)}"


# --- evaluation ------------------------------------------------------------------


def next_after(expression: str | CronExpression, tz: ZoneInfo, after: datetime) -> datetime | None:
    """
    Return the first fire strictly after ``after``, in ``tz``; None if it never fires again.

    ``after`` must be aware (any zone). The result is an existing wall time in
    ``tz`` with the right ``fold``; ``None`` means no fire within cronsim's
    50-year search window.
    """
    expr = parse(expression)
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(f"next_after() needs an aware datetime, got {after!r}.")
    if not isinstance(tz, ZoneInfo):
        tz = as_zoneinfo(tz)
    # Compare instants in UTC: Python compares two datetimes that share a
    # tzinfo by wall time alone, ignoring fold, which is wrong in a repeated hour.
    after = after.astimezone(UTC)
    try:
        if expr.is_fixed_time or tz.key == "UTC":
            return _next_fixed_time(expr, tz, after)
        return _next_wildcard(expr, tz, after)
    except OverflowError:  # pragma: no cover - only near datetime.max
        return None


def _next_fixed_time(expr: CronExpression, tz: ZoneInfo, after: datetime) -> datetime | None:
    # Walk the wall clock (naive datetimes), then place each wall time on the
    # time line: the first occurrence when it happens twice, the end of the gap
    # when it does not happen at all. cronsim does this itself, but only for
    # 5-field expressions; doing it here covers 6-field ones too.
    wall_start = after.astimezone(tz).replace(tzinfo=None, fold=0)
    for wall in CronSim(expr.text, wall_start):
        instant = _place_wall_time(wall, tz)
        # A start in the second pass of a repeated hour has the same wall time
        # as the first pass, so slots already fired there come back: skip them.
        if instant > after:
            return instant
    return None


def _next_wildcard(expr: CronExpression, tz: ZoneInfo, after: datetime) -> datetime | None:
    # Every real instant whose wall time matches fires: none inside a gap, two
    # in a repeated hour. Walk the time line in stretches of constant UTC
    # offset; within one, wall time and instant map one to one. (cronsim's own
    # zone-aware mode rolls hours over by adding 3600 s to a wall time cut to
    # :00, which skips slots after a 30-minute shift such as Lord Howe's.)
    start, inclusive = after, False
    while True:
        offset = _offset(start, tz)
        wall = _next_wall_time(expr, (start + offset).replace(tzinfo=None), inclusive)
        if wall is None:
            return None
        candidate = wall.replace(tzinfo=UTC) - offset
        change = _first_offset_change(tz, start, candidate, offset)
        if change is None:
            return candidate.astimezone(tz)
        # The offset changes before the candidate: go on from the change.
        start, inclusive = change, True


def _offset(instant: datetime, tz: ZoneInfo) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None
    return offset


def _next_wall_time(expr: CronExpression, wall: datetime, inclusive: bool) -> datetime | None:
    """The first matching naive wall time after ``wall`` (or at it, if ``inclusive``)."""
    # cronsim starts one second after its (microsecond-free) start.
    start = wall - timedelta(seconds=1) if inclusive else wall
    try:
        return next(CronSim(expr.text, start))
    except StopIteration:
        return None


def _first_offset_change(
    tz: ZoneInfo, start: datetime, end: datetime, offset: timedelta
) -> datetime | None:
    """The first instant in (start, end] where ``tz`` leaves ``offset``, or None."""
    # Probe every few hours (no zone changes its offset twice within that), then
    # narrow down to the second: offsets change on whole seconds.
    low = start
    while low < end:
        high = min(low + _PROBE, end)
        if _offset(high, tz) != offset:
            low_s, high_s = math.floor(low.timestamp()), math.ceil(high.timestamp())
            while high_s - low_s > 1:
                middle = (low_s + high_s) // 2
                if _offset(datetime.fromtimestamp(middle, UTC), tz) == offset:
                    low_s = middle
                else:
                    high_s = middle
            return datetime.fromtimestamp(high_s, UTC)
        low = high
    return None


def _place_wall_time(wall: datetime, tz: ZoneInfo) -> datetime:
    """Put a naive wall time on the time line the way Debian cron does for fixed-time jobs."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC).astimezone(tz)
    if first.replace(tzinfo=None, fold=0) == wall:
        return first
    return _end_of_gap(wall, tz)


def _end_of_gap(wall: datetime, tz: ZoneInfo) -> datetime:
    """Return the instant a gap containing the wall time ``wall`` ends."""
    # With fold=1 a missing wall time is read with the offset after the change
    # (an instant before it), with fold=0 with the offset before (an instant
    # after it): the change lies in between. Offsets change on whole seconds.
    before = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    after = int(wall.replace(tzinfo=tz, fold=0).timestamp())
    offset_before = datetime.fromtimestamp(before, tz).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == offset_before:
            before = middle
        else:
            after = middle
    return datetime.fromtimestamp(after, tz)
