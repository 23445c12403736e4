"""
Deterministic jitter: a fire's offset is a pure function of (job id, nominal time).

APScheduler draws a trigger's ``jitter`` at random in each process, so two
processes disagree on when a fire is due and a preview shows times that never
happen. :class:`JitteredTrigger` wraps any trigger instead: the *nominal*
fires are the wrapped trigger's, and each one is moved later by an offset
derived from a hash of the job's id and the nominal time, at most ``jitter``
seconds and always less than the gap to the next nominal fire. So every
process, every preview and every restart computes the same jittered time, and
the jittered fires keep the order of the nominal ones (a fire never overtakes
the next).

No Django here.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from .codecs import decode_trigger, encode_trigger, register_trigger_codec, trigger_timezone
from .text import ENGLISH, Words, duration
from .triggers import next_fire_time

__all__ = ["JitteredTrigger", "jitter_offset", "nominal_time", "with_deterministic_jitter"]

_ONE_MICROSECOND = timedelta(microseconds=1)


def jitter_offset(key: str, nominal: datetime, bound: timedelta) -> timedelta:
    """
    The offset of the fire at ``nominal``: in ``[0, bound)``, the same in every process.

    The hash takes the nominal instant in UTC, so the zone a trigger is read in
    does not change the offset. A ``bound`` of zero or less gives zero.
    """
    bound_us = (bound // _ONE_MICROSECOND) if bound > timedelta(0) else 0
    if bound_us <= 0:
        return timedelta(0)
    text = f"{key}\x00{nominal.astimezone(UTC).isoformat()}".encode()
    digest = hashlib.sha256(text).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64  # in [0, 1)
    return timedelta(microseconds=min(math.floor(fraction * bound_us), bound_us - 1))


class JitteredTrigger(BaseTrigger):
    """
    ``trigger``'s fires, each moved later by a deterministic offset of under ``jitter`` seconds.

    ``key`` seeds the offsets (the scheduler passes the job's id, so that jobs
    on the same schedule spread out). An offset is also less than the gap to
    the next nominal fire, so jittered fires never swap places or merge.
    Use :meth:`nominal_of` to find the nominal time of a jittered fire.
    """

    __slots__ = ("jitter_seconds", "key", "trigger")

    def __init__(self, trigger: BaseTrigger, jitter: float, key: str) -> None:
        if isinstance(jitter, bool) or not isinstance(jitter, int | float):
            raise TypeError(f"jitter must be a number of seconds, not {jitter!r}.")
        if not math.isfinite(jitter) or jitter <= 0:
            raise ValueError(
                f"jitter must be a positive number of seconds, got {jitter!r}; leave it out "
                "for no jitter."
            )
        if not isinstance(key, str) or not key:
            raise ValueError("A jittered trigger needs a non-empty key (the job's id).")
        self.trigger = trigger
        self.jitter_seconds = jitter
        self.key = key

    @property
    def max_offset(self) -> timedelta:
        """The longest offset, as a timedelta."""
        return timedelta(seconds=self.jitter_seconds)

    def _jittered(self, nominal: datetime, following: datetime | None) -> datetime:
        bound = self.max_offset
        if following is not None:
            bound = min(bound, following.astimezone(UTC) - nominal.astimezone(UTC))
        return nominal + jitter_offset(self.key, nominal, bound)

    def _following(self, nominal: datetime) -> datetime | None:
        return next_fire_time(self.trigger, nominal, nominal)

    @property
    def timezone(self) -> tzinfo | None:
        """The wrapped trigger's zone: the job's zone, shown and stored as such."""
        return trigger_timezone(self.trigger)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first jittered fire at or after ``now``, or the one after ``previous_fire_time``."""
        if previous_fire_time is not None:
            nominal = next_fire_time(self.trigger, self.nominal_of(previous_fire_time), now)
            if nominal is None:
                return None
            return self._jittered(nominal, self._following(nominal))
        latest = self._latest_at_or_before(now)
        if latest is not None:
            fire = self._jittered(latest, self._following(latest))
            if fire.astimezone(UTC) >= now.astimezone(UTC):
                return fire
        nominal = next_fire_time(self.trigger, None, now)
        if nominal is None:
            return None
        return self._jittered(nominal, self._following(nominal))

    def nominal_of(self, fire: datetime) -> datetime:
        """
        The nominal time whose jittered fire is ``fire``; ``fire`` itself if there is none.

        Since an offset is less than the gap to the next nominal fire, that is
        the latest nominal fire at or before ``fire``, if its offset fits. A
        stored next run time that was set by hand (``modify_job(next_run_time=...)``)
        is not a jittered fire: it counts as its own nominal time.
        """
        latest = self._latest_at_or_before(fire)
        if latest is not None:
            jittered = self._jittered(latest, self._following(latest))
            if jittered.astimezone(UTC) == fire.astimezone(UTC):
                return latest
        return fire

    def _latest_at_or_before(self, instant: datetime) -> datetime | None:
        """The latest nominal fire in ``[instant - max_offset, instant]``, or None."""
        limit = instant.astimezone(UTC)
        span = min(self.max_offset, timedelta(seconds=1))
        while True:
            candidate = next_fire_time(self.trigger, None, instant - span)
            if candidate is not None and candidate.astimezone(UTC) <= limit:
                break
            if span >= self.max_offset:
                return None
            span = min(span * 2, self.max_offset)
        while True:  # step to the last one at or before ``instant``
            following = self._following(candidate)
            if following is None or not candidate.astimezone(UTC) < following.astimezone(UTC):
                return candidate
            if following.astimezone(UTC) > limit:
                return candidate
            candidate = following

    def __getstate__(self) -> dict[str, Any]:
        return {
            "version": 1,
            "trigger": self.trigger,
            "jitter": self.jitter_seconds,
            "key": self.key,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.trigger = state["trigger"]
        self.jitter_seconds = state["jitter"]
        self.key = state["key"]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JitteredTrigger):
            return NotImplemented
        return (self.trigger, self.jitter_seconds, self.key) == (
            other.trigger,
            other.jitter_seconds,
            other.key,
        )

    def __hash__(self) -> int:
        return hash((self.jitter_seconds, self.key))

    def describe_in(self, words: Words = ENGLISH) -> str:
        """``At 08:00 every day (Asia/Seoul), up to 10 min later``, in ``words``' language."""
        from .preview import describe_trigger  # deferred: preview imports the triggers

        return words.pgettext("schedule", "{schedule}, up to {jitter} later").format(
            schedule=describe_trigger(self.trigger, words),
            jitter=duration(self.jitter_seconds, words=words),
        )

    def __str__(self) -> str:
        return self.describe_in(ENGLISH)

    def __repr__(self) -> str:
        return (
            f"JitteredTrigger({self.trigger!r}, jitter={self.jitter_seconds!r}, key={self.key!r})"
        )


def with_deterministic_jitter(trigger: BaseTrigger, key: str) -> BaseTrigger:
    """
    Replace APScheduler's random ``jitter`` by deterministic jitter keyed on ``key``.

    A trigger built with ``jitter=`` (``add_job(f, "cron", hour=8, jitter=60)``)
    comes back as a :class:`JitteredTrigger` over the same trigger without
    jitter; any other trigger comes back as it is. Jitter on a trigger inside an
    ``AndTrigger``/``OrTrigger`` is refused: give it to the combining trigger.
    """
    if isinstance(trigger, JitteredTrigger):
        return trigger
    for child in getattr(trigger, "triggers", ()) or ():
        if getattr(child, "jitter", None):
            raise ValueError(
                "Jitter on a trigger inside an AndTrigger or OrTrigger cannot be made "
                "deterministic; give jitter= to the combining trigger (or to add_job) instead."
            )
    jitter = getattr(trigger, "jitter", None)
    if not jitter:
        return trigger
    trigger.jitter = None  # type: ignore[attr-defined]
    return JitteredTrigger(trigger, jitter, key)


def nominal_time(trigger: BaseTrigger, fire: datetime) -> datetime | None:
    """The nominal time of a fire of ``trigger``, or None when it is not jittered."""
    if not isinstance(trigger, JitteredTrigger):
        return None
    nominal = trigger.nominal_of(fire)
    return None if nominal.astimezone(UTC) == fire.astimezone(UTC) else nominal


def _encode(trigger: JitteredTrigger) -> dict[str, Any]:
    return {
        "trigger": encode_trigger(trigger.trigger),
        "jitter": trigger.jitter_seconds,
        "key": trigger.key,
    }


def _decode(data: dict[str, Any]) -> JitteredTrigger:
    return JitteredTrigger(decode_trigger(data["trigger"]), data["jitter"], data["key"])


register_trigger_codec("jittered", JitteredTrigger, _encode, _decode)
