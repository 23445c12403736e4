"""
Business days: any trigger's fires on weekends, holidays and chosen dates skipped or moved.

:class:`BusinessDays` wraps a trigger. A fire whose date (in the trigger's
zone) is not a business day is handled by its ``rule``:

* ``"skip"``: the fire does not happen;
* ``"next"``: it happens at the same wall time on the next business day;
* ``"previous"``: at the same wall time on the business day before.

A moved fire that lands on or before a fire already given (a Saturday fire
moved to Monday 08:00, where the trigger fires anyway) is folded into it: fire
times only move forward, and never repeat.

A day is not a business day when its weekday is not in ``weekdays`` (Monday
to Friday unless told), when it is one of the explicit ``dates``, or when it
is a holiday of the ``country`` (and ``subdivision``) calendar of the
``holidays`` package, or of its financial ``market`` calendar. The calendar is
stored by name, never as an object, and ``holidays`` is imported only when a
calendar is used (``pip install django-metronome[holidays]``).

No Django here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from .codecs import decode_trigger, encode_trigger, register_trigger_codec, trigger_timezone
from .text import ENGLISH, Words
from .triggers import next_fire_time, seek_function

__all__ = ["RULES", "BusinessDays", "business_days"]

#: What to do with a fire on a day that is not a business day.
RULES = ("skip", "next", "previous")

#: The longest run of days that are not business days a fire may be moved across.
MAX_SHIFT_DAYS = 60

#: How far ahead a "skip" search looks for a business-day fire before giving up.
MAX_SEARCH = timedelta(days=3 * 366)

_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Whole patterns for the calendars people name most (a translation may need to
# reorder them); the others read "on business days in XX".
_NAMED: dict[str | None, Callable[[Words], str]] = {
    "KR": lambda w: w.pgettext("schedule", "{schedule} on Korean business days"),
    "JP": lambda w: w.pgettext("schedule", "{schedule} on Japanese business days"),
    "US": lambda w: w.pgettext("schedule", "{schedule} on US business days"),
    "GB": lambda w: w.pgettext("schedule", "{schedule} on UK business days"),
}

#: The language of the holiday names in the run ledger, like the rest of its reasons (a
#: calendar without English names gives its own language's). Without it the package
#: chooses by machine, so two processes could write the same holiday in two languages.
NAMES_LANGUAGE = "en_US"

_CALENDARS: dict[tuple[str, str, str | None], Any] = {}
_CALENDARS_LOCK = threading.Lock()


def _holiday_calendar(kind: str, code: str, subdivision: str | None) -> Any:
    key = (kind, code, subdivision)
    with _CALENDARS_LOCK:
        calendar = _CALENDARS.get(key)
        if calendar is None:
            try:
                import holidays
            except ImportError:  # pragma: no cover - the test extra installs it
                # A ValueError: a stored job that needs it is quarantined, not crashed on.
                raise ValueError(
                    f"The {code} holiday calendar needs the 'holidays' package: "
                    "pip install 'django-metronome[holidays]'."
                ) from None
            if kind == "market":
                calendar = holidays.financial_holidays(code, language=NAMES_LANGUAGE)
            else:
                calendar = holidays.country_holidays(
                    code, subdiv=subdivision, language=NAMES_LANGUAGE
                )
            _CALENDARS[key] = calendar
        return calendar


class BusinessDays(BaseTrigger):
    """
    ``trigger``'s fires on business days only; the others skipped or moved by ``rule``.

    ``country``/``subdivision`` name a calendar of the ``holidays`` package
    (``"KR"``; ``"US"``, ``"CA"``), ``market`` a financial one (``"NYSE"``),
    ``dates`` explicit dates that are not business days, ``weekdays`` the
    business weekdays (0 is Monday). ``rule`` is ``"skip"``, ``"next"`` or
    ``"previous"``; the last two need a trigger whose fires do not depend on
    the previous fire (cron, crontab, interval without jitter).
    """

    __slots__ = ("country", "dates", "market", "rule", "subdivision", "trigger", "weekdays")

    def __init__(
        self,
        trigger: BaseTrigger,
        *,
        rule: str = "skip",
        country: str | None = None,
        subdivision: str | None = None,
        market: str | None = None,
        dates: Iterable[date] = (),
        weekdays: Iterable[int] = (0, 1, 2, 3, 4),
    ) -> None:
        if rule not in RULES:
            raise ValueError(
                f"Unknown business-day rule {rule!r}; use one of {', '.join(map(repr, RULES))}."
            )
        if isinstance(trigger, BusinessDays):
            raise ValueError("A BusinessDays trigger cannot wrap another; merge their dates.")
        if rule != "skip" and seek_function(trigger) is None:
            raise ValueError(
                f"The rule {rule!r} moves fires, which needs a trigger whose fires do not depend "
                f"on the previous one (cron, crontab, interval without jitter); {trigger} is "
                "not one. Use rule='skip', or a cron trigger."
            )
        days = sorted(set(weekdays))
        if not days or any(not isinstance(d, int) or not 0 <= d <= 6 for d in days):
            raise ValueError(
                "weekdays must be numbers 0 (Monday) to 6 (Sunday), at least one; "
                f"got {weekdays!r}."
            )
        explicit = []
        for value in dates:
            if isinstance(value, datetime) or not isinstance(value, date):
                raise TypeError(
                    f"Excluded dates must be datetime.date objects (not datetimes), got {value!r}."
                )
            explicit.append(value)
        if subdivision is not None and country is None:
            raise ValueError(
                "subdivision needs a country: BusinessDays(..., country='US', subdivision='CA')."
            )
        self.trigger = trigger
        self.rule = rule
        self.country = country.upper() if country else None
        self.subdivision = subdivision
        self.market = market.upper() if market else None
        self.dates = tuple(sorted(set(explicit)))
        self.weekdays = tuple(days)
        for kind, code in (("country", self.country), ("market", self.market)):
            if code is not None:
                try:
                    _holiday_calendar(kind, code, self.subdivision if kind == "country" else None)
                except NotImplementedError as exc:
                    raise ValueError(f"No holiday calendar for {kind} {code!r}: {exc}") from None

    # --- days ----------------------------------------------------------------------

    @property
    def zone(self) -> tzinfo:
        """The zone whose dates count: the trigger's, UTC if it has none."""
        return trigger_timezone(self.trigger) or UTC

    def excluded(self, day: date) -> str | None:
        """Why ``day`` is not a business day (a holiday's name, ...), or None if it is one."""
        names = []
        if day in self.dates:
            names.append("excluded date")
        for kind, code in (("country", self.country), ("market", self.market)):
            if code is not None:
                calendar = _holiday_calendar(
                    kind, code, self.subdivision if kind == "country" else None
                )
                name = calendar.get(day)
                if name:
                    names.append(str(name))
        if names:
            return "; ".join(names)
        if day.weekday() not in self.weekdays:
            return _WEEKDAY_NAMES[day.weekday()]
        return None

    def is_holiday(self, day: date) -> bool:
        """Whether ``day`` is excluded by a date or a calendar (not just by its weekday)."""
        reason = self.excluded(day)
        return reason is not None and reason not in _WEEKDAY_NAMES

    def _day(self, fire: datetime) -> date:
        return fire.astimezone(self.zone).date()

    def _shift(self, fire: datetime) -> datetime | None:
        """Where the rule puts ``fire``: itself on a business day; moved, or None (skip)."""
        local = fire.astimezone(self.zone)
        day = local.date()
        if self.excluded(day) is None:
            return fire
        if self.rule == "skip":
            return None
        step = timedelta(days=1 if self.rule == "next" else -1)
        for _ in range(MAX_SHIFT_DAYS):
            day += step
            if self.excluded(day) is None:
                return _at(day, local.timetz().replace(tzinfo=None), self.zone, fire.tzinfo)
        raise ValueError(
            f"No business day within {MAX_SHIFT_DAYS} days of {local.date()}: check the "
            "weekdays and dates of the BusinessDays trigger."
        )

    # --- fires -------------------------------------------------------------------------

    @property
    def timezone(self) -> tzinfo | None:
        """The wrapped trigger's zone: the job's zone, shown and stored as such."""
        return trigger_timezone(self.trigger)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first business-day fire at or after ``now``, or strictly after the previous one."""
        if self.rule == "skip":
            return self._next_skipping(previous_fire_time, now)
        if previous_fire_time is not None:
            threshold, strict = previous_fire_time.astimezone(UTC), True
        else:
            threshold, strict = now.astimezone(UTC), False
        return self._next_moved(threshold, strict)

    def _next_skipping(self, previous: datetime | None, now: datetime) -> datetime | None:
        fire = next_fire_time(self.trigger, previous, now)
        start = fire
        while fire is not None:
            if self.excluded(self._day(fire)) is None:
                return fire
            assert start is not None
            if fire.astimezone(UTC) - start.astimezone(UTC) > MAX_SEARCH:
                raise ValueError(
                    f"{self.trigger} has no fire on a business day within {MAX_SEARCH.days} days "
                    f"after {start.isoformat()}: it fires only on excluded days."
                )
            fire = next_fire_time(self.trigger, fire, fire)
        return None

    def _next_moved(self, threshold: datetime, strict: bool) -> datetime | None:
        def beyond(value: datetime) -> bool:
            instant = value.astimezone(UTC)
            return instant > threshold if strict else instant >= threshold

        # Where to look from: a "next" rule brings fires forward from the days just
        # before (that are not business days); "previous" takes them from later days.
        day = threshold.astimezone(self.zone).date()
        if self.rule == "next":
            for _ in range(MAX_SHIFT_DAYS):
                if self.excluded(day - timedelta(days=1)) is None:
                    break
                day -= timedelta(days=1)
            start = _at(day, time(0), self.zone, None)
            start = min(start, threshold)
        else:
            start = threshold
        fire = next_fire_time(self.trigger, None, start)
        best: datetime | None = None
        first = fire
        while fire is not None:
            if first is not None and fire.astimezone(UTC) - first.astimezone(UTC) > MAX_SEARCH:
                break
            moved = self._shift(fire)
            if (
                moved is not None
                and beyond(moved)
                and (best is None or moved.astimezone(UTC) < best.astimezone(UTC))
            ):
                best = moved
            if best is not None:
                if self.rule == "next" and fire.astimezone(UTC) > best.astimezone(UTC):
                    break  # later fires only move forward from later times
                if (
                    self.rule == "previous"
                    and self.excluded(self._day(fire)) is None
                    and self._day(fire) > self._day(best)
                ):
                    break  # later fires land on this business day or after it
            following = next_fire_time(self.trigger, fire, fire)
            if following is not None and following.astimezone(UTC) <= fire.astimezone(UTC):
                break
            fire = following
        return best

    def excluded_fires(
        self, after: datetime, before: datetime, *, holidays_only: bool = True
    ) -> list[tuple[datetime, str]]:
        """
        The wrapped trigger's fires strictly between ``after`` and ``before`` on excluded days.

        With ``holidays_only``, fires on weekdays that are not business days are
        left out: they are outside the schedule, not exceptions to it. For the
        run ledger, which keeps each skipped holiday fire with the holiday's name.
        """
        found: list[tuple[datetime, str]] = []
        fire = next_fire_time(self.trigger, after, after)
        limit = before.astimezone(UTC)
        while fire is not None and fire.astimezone(UTC) < limit and len(found) < 1000:
            reason = self.excluded(self._day(fire))
            if reason is not None and not (holidays_only and reason in _WEEKDAY_NAMES):
                found.append((fire, reason))
            following = next_fire_time(self.trigger, fire, fire)
            if following is None or following.astimezone(UTC) <= fire.astimezone(UTC):
                break
            fire = following
        return found

    # --- words and state -----------------------------------------------------------------

    def describe_in(self, words: Words = ENGLISH) -> str:
        """``At 08:00 every day (Asia/Seoul) on Korean business days``, in ``words``' language."""
        from .preview import describe_trigger  # deferred: preview imports the triggers

        schedule = describe_trigger(self.trigger, words)
        if self.country in _NAMED and self.subdivision is None:
            text = _NAMED[self.country](words).format(schedule=schedule)
        elif self.country is not None or self.market is not None:
            region = self.market or self.country
            if self.subdivision is not None:
                region = f"{self.country}-{self.subdivision}"
            pattern = words.pgettext("schedule", "{schedule} on business days in {region}")
            text = pattern.format(schedule=schedule, region=region)
        else:
            pattern = words.pgettext("schedule", "{schedule} on business days")
            text = pattern.format(schedule=schedule)
        if self.dates:
            pattern = words.npgettext(
                "schedule",
                "{schedule}, except {count} date",
                "{schedule}, except {count} dates",
                len(self.dates),
            )
            text = pattern.format(schedule=text, count=len(self.dates))
        if self.rule == "next":
            pattern = words.pgettext("schedule", "{schedule}, moved to the next business day")
            text = pattern.format(schedule=text)
        elif self.rule == "previous":
            pattern = words.pgettext("schedule", "{schedule}, moved to the business day before")
            text = pattern.format(schedule=text)
        return text

    def __str__(self) -> str:
        return self.describe_in(ENGLISH)

    def __repr__(self) -> str:
        return (
            f"BusinessDays({self.trigger!r}, rule={self.rule!r}, country={self.country!r}, "
            f"subdivision={self.subdivision!r}, market={self.market!r}, dates={self.dates!r}, "
            f"weekdays={self.weekdays!r})"
        )

    def _key(self) -> tuple[Any, ...]:
        return (
            self.trigger,
            self.rule,
            self.country,
            self.subdivision,
            self.market,
            self.dates,
            self.weekdays,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BusinessDays):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key()[1:])

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, **_encode(self), "trigger": self.trigger}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.trigger = state["trigger"]
        self.rule = state["rule"]
        self.country = state["country"]
        self.subdivision = state["subdivision"]
        self.market = state["market"]
        self.dates = tuple(date.fromisoformat(d) for d in state["dates"])
        self.weekdays = tuple(state["weekdays"])


def _at(day: date, wall: time, zone: tzinfo, out: tzinfo | None) -> datetime:
    """
    ``day`` at the wall time ``wall`` in ``zone``, as cron reads a fixed time.

    A repeated wall time (DST ends) is its first occurrence; a skipped one (DST
    starts) is the instant the clocks jump, as Debian's cron runs such a job.
    """
    value = datetime.combine(day, wall, tzinfo=zone)
    early, late = value.astimezone(UTC), value.replace(fold=1).astimezone(UTC)
    if late < early:  # in the gap: the clocks jump between these two instants
        minute = timedelta(minutes=1)
        jump = late.replace(second=0, microsecond=0)
        while (
            jump < early and jump.astimezone(zone).utcoffset() == late.astimezone(zone).utcoffset()
        ):
            jump += minute
        value = jump.astimezone(zone)
    else:
        value = early.astimezone(zone)
    return value.astimezone(out) if out is not None else value


def business_days(
    trigger: BaseTrigger,
    exclude: Any = None,
    rule: str = "skip",
    weekdays: Iterable[int] = (0, 1, 2, 3, 4),
) -> BusinessDays:
    """
    Build a :class:`BusinessDays` from ``exclude``: what ``add_job(..., exclude=...)`` takes.

    ``exclude`` is a calendar of the ``holidays`` package
    (``holidays.country_holidays("KR")``, ``holidays.financial_holidays("NYSE")``),
    which is kept by its country, subdivision or market, never as an object
    (dates added to it by hand are not kept: pass them in a list); an iterable
    of ``datetime.date``; or a list mixing both.
    """
    country = subdivision = market = None
    dates: list[date] = []
    items = [exclude] if _is_calendar(exclude) or isinstance(exclude, date) else list(exclude or ())
    for item in items:
        if _is_calendar(item):
            if getattr(item, "market", None):
                market = item.market
            elif getattr(item, "country", None):
                country, subdivision = item.country, getattr(item, "subdiv", None)
            else:
                raise TypeError(
                    f"The holiday calendar {type(item).__name__} names no country or market, "
                    "so it cannot be stored by name; pass its dates (list(calendar)) instead."
                )
        elif isinstance(item, date) and not isinstance(item, datetime):
            dates.append(item)
        elif isinstance(item, str):
            try:
                dates.append(date.fromisoformat(item))
            except ValueError:
                raise ValueError(
                    f"exclude: {item!r} is not a date (YYYY-MM-DD); for a country's holidays "
                    f"pass holidays.country_holidays({item!r})."
                ) from None
        else:
            raise TypeError(
                f"exclude takes holiday calendars (holidays.country_holidays('KR')) and "
                f"datetime.date objects, not {item!r}."
            )
    return BusinessDays(
        trigger,
        rule=rule,
        country=country,
        subdivision=subdivision,
        market=market,
        dates=dates,
        weekdays=weekdays,
    )


def _is_calendar(value: Any) -> bool:
    return isinstance(value, Mapping) and hasattr(value, "_populate")  # holidays.HolidayBase


def _encode(trigger: BusinessDays) -> dict[str, Any]:
    return {
        "trigger": encode_trigger(trigger.trigger),
        "rule": trigger.rule,
        "country": trigger.country,
        "subdivision": trigger.subdivision,
        "market": trigger.market,
        "dates": [d.isoformat() for d in trigger.dates],
        "weekdays": list(trigger.weekdays),
    }


def _decode(data: dict[str, Any]) -> BusinessDays:
    return BusinessDays(
        decode_trigger(data["trigger"]),
        rule=data.get("rule", "skip"),
        country=data.get("country"),
        subdivision=data.get("subdivision"),
        market=data.get("market"),
        dates=[date.fromisoformat(d) for d in data.get("dates", ())],
        weekdays=data.get("weekdays", (0, 1, 2, 3, 4)),
    )


register_trigger_codec("businessdays", BusinessDays, _encode, _decode)
