"""
Plan which due fires of a job run, which are missed and which are folded away.

Pure: the scheduler calls :func:`plan_fires` inside its claim transaction and
writes the plan to the run ledger. No Django, no clock: ``now`` is passed in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["MISFIRE_POLICIES", "FirePlan", "plan_fires"]

#: The misfire policies, by name; see :func:`plan_fires`.
MISFIRE_POLICIES = ("once", "all", "skip")

NextFire = Callable[[datetime | None, datetime], datetime | None]
Seek = Callable[[datetime], datetime | None]

# How many times the span looked at before ``now`` is doubled when seeking.
_MAX_SEEK_TRIES = 40


@dataclass(frozen=True)
class FirePlan:
    """What to do with a job's due fires; every due fire is in exactly one place."""

    #: Fire times to dispatch now, oldest first.
    run: tuple[datetime, ...]
    #: (fire time, lateness) pairs given up as missed, oldest first.
    missed: tuple[tuple[datetime, timedelta], ...]
    #: On-time fires folded into a later one by ``coalesce``, oldest first.
    skipped: tuple[datetime, ...]
    #: The job's first fire after ``now``; None when its schedule has ended.
    next_run_time: datetime | None
    #: '' or a note about due fires not listed individually (see ``max_listed``).
    summary: str = ""
    #: (fire time, reason) of fires to write to the ledger as skipped besides the
    #: plan's own: holidays a business-day calendar left out since the previous due
    #: fire (:func:`django_metronome.time.wrappers.with_exclusions`), fires beyond
    #: ``max_runs``.
    excluded: tuple[tuple[datetime, str], ...] = ()


def plan_fires(
    next_fire: NextFire,
    next_run_time: datetime,
    now: datetime,
    *,
    policy: str = "once",
    grace: timedelta | None,
    coalesce: bool,
    max_catch_up: int = 100,
    max_listed: int = 1000,
    seek: Seek | None = None,
) -> FirePlan:
    """
    Decide the fate of every fire from ``next_run_time`` up to and including ``now``.

    ``next_fire(previous, now)`` is the trigger's next-fire function (for
    example ``trigger.get_next_fire_time``). A fire is due when it is at or
    before ``now``.

    * A due fire is *on time* when ``now - fire <= grace`` (``grace`` None:
      every fire is on time); otherwise it *misfired*.
    * On-time fires all run; with ``coalesce`` only the latest runs and the
      earlier on-time ones are *skipped*.
    * Misfired fires follow ``policy``:

      - ``"once"``: the latest misfired fire runs, but only when no on-time
        fire runs; every other misfired fire is missed;
      - ``"all"``: each misfired fire runs, at most ``max_catch_up`` of them
        (the latest); the older ones are missed;
      - ``"skip"``: every misfired fire is missed.

    At most ``max_listed`` due fires, the latest, are planned one by one.
    When more are due (a 1 s job after a week of downtime), the older ones are
    given up as missed and only counted in ``summary``.

    Counting them means stepping through them, which is always right but
    slow for millions of fires. ``next_fire(None, t)`` would jump, but it is
    only the first fire at or after ``t`` for triggers whose fires do not
    depend on the previous one: a date trigger answers its run date, and a
    jittered interval trigger drifts. So the jump is opt-in: pass ``seek(t)``
    (the first fire at or after ``t``; see
    :func:`django_metronome.triggers.seek_function`) and, once ``max_listed``
    fires have been stepped through, the plan seeks back from ``now`` instead;
    the summary then gives a lower bound ("at least N").

    Raise ValueError for an unknown policy or bad bounds, and RuntimeError if
    ``next_fire`` does not move forward.
    """
    if policy not in MISFIRE_POLICIES:
        allowed = ", ".join(repr(name) for name in MISFIRE_POLICIES)
        raise ValueError(f"Unknown misfire policy {policy!r}; use one of {allowed}.")
    if grace is not None and grace < timedelta(0):
        raise ValueError(f"grace must be zero or more (or None for no limit), got {grace}.")
    if max_catch_up < 1:
        raise ValueError(
            f"max_catch_up must be 1 or more, got {max_catch_up}; to run no missed fires "
            "use policy='skip'."
        )
    if max_listed < 1:
        raise ValueError(f"max_listed must be 1 or more, got {max_listed}.")
    for name, value in (("next_run_time", next_run_time), ("now", now)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be an aware datetime, got {value!r}.")

    # All comparisons and differences go through UTC: two datetimes sharing a
    # tzinfo are compared by wall time alone, which is wrong in a repeated hour.
    now_utc = now.astimezone(UTC)
    if _utc(next_run_time) <= now_utc:
        following = _step(next_fire, next_run_time, now)
        if following is None or _utc(following) > now_utc:
            # One fire due (a one-shot job, or a periodic one on time): the general
            # plan below comes to the same, at several times the cost.
            return _one_due(next_run_time, following, now_utc, policy, grace)
    return _plan_stepping(
        next_fire,
        next_run_time,
        now,
        policy=policy,
        grace=grace,
        coalesce=coalesce,
        max_catch_up=max_catch_up,
        max_listed=max_listed,
        seek=seek,
    )


def _plan_stepping(
    next_fire: NextFire,
    next_run_time: datetime,
    now: datetime,
    *,
    policy: str,
    grace: timedelta | None,
    coalesce: bool,
    max_catch_up: int,
    max_listed: int,
    seek: Seek | None,
) -> FirePlan:
    """:func:`plan_fires` for any number of due fires, stepping through them."""
    now_utc = now.astimezone(UTC)
    due: deque[datetime] = deque(maxlen=max_listed)  # the latest due fires
    dropped = 0  # older due fires pushed out of ``due``
    last_dropped: datetime | None = None
    exact = True
    fire: datetime | None = next_run_time
    while fire is not None and _utc(fire) <= now_utc:
        if len(due) == max_listed:
            dropped += 1
            last_dropped = due[0]
        due.append(fire)
        fire = _step(next_fire, fire, now)
        if seek is not None and dropped == 0 and len(due) == max_listed:
            jump = _seek_tail(seek, next_fire, due, fire, now, max_listed)
            if jump is not None:
                skipped_over, due, last_dropped, fire = jump
                dropped = max_listed + skipped_over
                exact = False

    fires = list(due)
    on_time = [f for f in fires if grace is None or now_utc - _utc(f) <= grace]
    misfired = fires[: len(fires) - len(on_time)]  # lateness only grows with age

    run: list[datetime] = []
    skipped: list[datetime] = []
    if on_time and coalesce:
        run.append(on_time[-1])
        skipped = on_time[:-1]
    else:
        run.extend(on_time)
    if policy == "once" and misfired and not on_time:
        late_runs = misfired[-1:]
    elif policy == "all":
        late_runs = misfired[-max_catch_up:]
    else:
        late_runs = []
    missed = misfired[: len(misfired) - len(late_runs)]
    run = late_runs + run

    summary = ""
    if dropped:
        assert last_dropped is not None
        count = f"{dropped}" if exact else f"At least {dropped}"
        noun = "fire" if dropped == 1 and exact else "fires"
        verb = "is" if dropped == 1 and exact else "are"
        summary = (
            f"{count} further missed {noun} between {next_run_time.isoformat()} and "
            f"{last_dropped.isoformat()} {verb} not listed."
        )
    return FirePlan(
        run=tuple(run),
        missed=tuple((f, now_utc - _utc(f)) for f in missed),
        skipped=tuple(skipped),
        next_run_time=fire,
        summary=summary,
    )


def _one_due(
    fire: datetime,
    following: datetime | None,
    now_utc: datetime,
    policy: str,
    grace: timedelta | None,
) -> FirePlan:
    """The plan when exactly one fire is due: it runs, unless it misfired under "skip"."""
    lateness = now_utc - _utc(fire)
    if grace is None or lateness <= grace or policy != "skip":
        return FirePlan(run=(fire,), missed=(), skipped=(), next_run_time=following)
    return FirePlan(run=(), missed=((fire, lateness),), skipped=(), next_run_time=following)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _step(next_fire: NextFire, fire: datetime, now: datetime) -> datetime | None:
    following = next_fire(fire, now)
    if following is not None and _utc(following) <= _utc(fire):
        raise RuntimeError(
            f"The trigger gave {following.isoformat()} as the fire after "
            f"{fire.isoformat()}; a trigger must move forward. Fix its "
            "get_next_fire_time()."
        )
    return following


def _seek_tail(
    seek: Seek,
    next_fire: NextFire,
    head: deque[datetime],
    position: datetime | None,
    now: datetime,
    max_listed: int,
) -> tuple[int, deque[datetime], datetime, datetime | None] | None:
    """
    Find the latest ``max_listed`` due fires by seeking back from ``now``.

    ``head`` holds the first ``max_listed`` due fires, ``position`` the next
    one. Return (fires known to be skipped besides ``head``, the latest due
    fires, the fire just before them, the first fire after ``now``), or None
    when stepping on from ``position`` is as good.
    """
    now_utc = _utc(now)
    if position is None or _utc(position) > now_utc or len(head) < 2:
        return None
    spacing = (_utc(head[-1]) - _utc(head[0])) / (len(head) - 1)
    if spacing <= timedelta(0):
        return None
    span = spacing * (max_listed + 1) * 2
    for _ in range(_MAX_SEEK_TRIES):
        start = now_utc - span
        if start <= _utc(position):
            return None  # the window reaches back to where we are: just step
        tail: deque[datetime] = deque(maxlen=max_listed)
        skipped_over = 0
        before_tail: datetime | None = None
        fire = seek(start)
        while fire is not None and _utc(fire) <= now_utc:
            if len(tail) == max_listed:
                skipped_over += 1
                before_tail = tail[0]
            tail.append(fire)
            fire = _step(next_fire, fire, now)
        if before_tail is not None:
            return skipped_over, tail, before_tail, fire
        span *= 2  # fewer fires than we need since ``start``: look further back
    return None
