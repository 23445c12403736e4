"""
Limited runs and windows for any trigger: ``start_date``, ``end_date``, ``max_runs``.

APScheduler's cron, interval and calendar-interval triggers take
``start_date``/``end_date`` themselves; crontab strings, date, ``and``/``or``
and wrapped triggers (business days) do not. :class:`Limits` gives the same
window to every trigger, and carries ``max_runs``: the job ends after that
many *successful* fires, which only the run ledger knows, so the store counts
them (``store/limits.py``); the trigger keeps the number in the job's JSON.

No Django here.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from .codecs import (
    decode_datetime,
    decode_trigger,
    encode_datetime,
    encode_trigger,
    register_trigger_codec,
    trigger_timezone,
)
from .text import ENGLISH, Words
from .triggers import next_fire_time

__all__ = ["Limits", "find_limits"]


class Limits(BaseTrigger):
    """
    ``trigger``'s fires from ``start_date`` to ``end_date`` (both inclusive), and ``max_runs``.

    ``max_runs`` (1 or more, or None) does not change the fire times: the
    scheduler ends the job once that many of its fires succeeded.
    """

    __slots__ = ("end_date", "max_runs", "start_date", "trigger")

    def __init__(
        self,
        trigger: BaseTrigger,
        *,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        max_runs: int | None = None,
    ) -> None:
        for name, value in (("start_date", start_date), ("end_date", end_date)):
            if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
                raise ValueError(
                    f"{name} must be an aware datetime (with its zone), got {value!r}."
                )
        if start_date is not None and end_date is not None and start_date > end_date:
            raise ValueError(
                f"start_date ({start_date.isoformat()}) is after end_date "
                f"({end_date.isoformat()}): the job would never fire. Swap them."
            )
        if max_runs is not None and (
            isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1
        ):
            raise ValueError(
                f"max_runs must be a whole number, 1 or more (or None: no limit), got {max_runs!r}."
            )
        self.trigger = trigger
        self.start_date = start_date
        self.end_date = end_date
        self.max_runs = max_runs

    @property
    def timezone(self) -> tzinfo | None:
        """The wrapped trigger's zone: the job's zone, shown and stored as such."""
        return trigger_timezone(self.trigger)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The wrapped trigger's next fire, inside the window."""
        start = self.start_date
        if start is not None and now.astimezone(UTC) < start.astimezone(UTC):
            now = start
        fire = next_fire_time(self.trigger, previous_fire_time, now)
        if fire is not None and start is not None and fire.astimezone(UTC) < start.astimezone(UTC):
            fire = next_fire_time(self.trigger, None, start)
        if (
            fire is not None
            and self.end_date is not None
            and fire.astimezone(UTC) > self.end_date.astimezone(UTC)
        ):
            return None
        return fire

    def describe_in(self, words: Words = ENGLISH) -> str:
        """``..., from 2026-05-01 00:00:00+09:00 until ...``, ``..., at most 3 successful runs``."""
        from .preview import describe_trigger  # deferred: preview imports the triggers

        text = describe_trigger(self.trigger, words)
        start = self.start_date.isoformat(sep=" ") if self.start_date is not None else None
        end = self.end_date.isoformat(sep=" ") if self.end_date is not None else None
        if start is not None and end is not None:
            pattern = words.pgettext("schedule", "{schedule}, from {start} until {end}")
            text = pattern.format(schedule=text, start=start, end=end)
        elif start is not None:
            pattern = words.pgettext("schedule", "{schedule}, from {start}")
            text = pattern.format(schedule=text, start=start)
        elif end is not None:
            pattern = words.pgettext("schedule", "{schedule}, until {end}")
            text = pattern.format(schedule=text, end=end)
        if self.max_runs is not None:
            pattern = words.npgettext(
                "schedule",
                "{schedule}, at most {count} successful run",
                "{schedule}, at most {count} successful runs",
                self.max_runs,
            )
            text = pattern.format(schedule=text, count=self.max_runs)
        return text

    def __str__(self) -> str:
        return self.describe_in(ENGLISH)

    def __repr__(self) -> str:
        return (
            f"Limits({self.trigger!r}, start_date={self.start_date!r}, "
            f"end_date={self.end_date!r}, max_runs={self.max_runs!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Limits):
            return NotImplemented
        return (self.trigger, self.start_date, self.end_date, self.max_runs) == (
            other.trigger,
            other.start_date,
            other.end_date,
            other.max_runs,
        )

    def __hash__(self) -> int:
        return hash((self.start_date, self.end_date, self.max_runs))

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, **_encode(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        restored = _decode(state)
        self.trigger = restored.trigger
        self.start_date = restored.start_date
        self.end_date = restored.end_date
        self.max_runs = restored.max_runs


def find_limits(trigger: BaseTrigger) -> Limits | None:
    """The :class:`Limits` among a trigger and the triggers it wraps, if any."""
    seen = 0
    while trigger is not None and seen < 10:
        if isinstance(trigger, Limits):
            return trigger
        trigger = getattr(trigger, "trigger", None)
        seen += 1
    return None


def _encode(trigger: Limits) -> dict[str, Any]:
    return {
        "trigger": encode_trigger(trigger.trigger),
        "start_date": encode_datetime(trigger.start_date),
        "end_date": encode_datetime(trigger.end_date),
        "max_runs": trigger.max_runs,
    }


def _decode(data: dict[str, Any]) -> Limits:
    return Limits(
        decode_trigger(data["trigger"]),
        start_date=decode_datetime(data.get("start_date")),
        end_date=decode_datetime(data.get("end_date")),
        max_runs=data.get("max_runs"),
    )


register_trigger_codec("limits", Limits, _encode, _decode)
