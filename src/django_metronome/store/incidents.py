"""
Expectations and incidents: the dead-man's switch, decided by the database.

A job may be expected to succeed at least every N seconds, and/or to fail no
more than K times in a row (:func:`set_expectation`). Globally, a scheduler
process is expected to be alive (``EXPECT_SCHEDULER``). :func:`evaluate`
compares the ledger with them: an expectation that broke opens an incident, one
whose condition cleared resolves it.

No alert storm, whoever evaluates and however often: the database holds at
most one open incident per job and kind (a unique key on job, kind and an
``is_open`` that is True while open and NULL after), so of two processes that
open the same incident at once one inserts and the other finds the key taken;
a resolution is one conditional ``UPDATE`` that only one process sees succeed.
Each opened and each resolved incident is returned to exactly one caller,
which notifies. Which process evaluates at all is decided per
``WATCH_INTERVAL`` by :func:`take_turn`, one conditional ``UPDATE`` of one row,
as a claim is.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from .db import to_db
from .models import (
    DjangoJob,
    DjangoJobExecution,
    ExecutionStatus,
    Expectation,
    Incident,
    IncidentKind,
    SchedulerNode,
    WatchTurn,
)

__all__ = [
    "Changes",
    "DeclaredExpectations",
    "checked_expectation",
    "declared_expectations",
    "evaluate",
    "open_incident",
    "resolve_incident",
    "set_expectation",
    "take_turn",
]

#: Ledger statuses that count in a run of failures (missed and skipped fires do
#: not: the job did not run).
_ENDED_RUNS = (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.INTERRUPTED)


def _seconds(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(
            f"{name} must be a timedelta or a number of seconds, not {type(value).__name__}: "
            f"write {name}=timedelta(hours=1)."
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be a positive duration, not {value!r}.")
    return seconds


def checked_expectation(
    job_id: str, every: timedelta | float | None, max_failures: int | None
) -> tuple[float | None, int | None]:
    """
    ``(every in seconds, max_failures)``, or a refusal saying what to write instead:
    an id that is not a non-empty string, a duration that is not positive, a count
    that is not a whole number, 0 or more.
    """
    if not isinstance(job_id, str) or not job_id:
        raise TypeError(f"The job id must be a non-empty string, not {job_id!r}.")
    seconds = _seconds(every, "every")
    if max_failures is not None and (
        not isinstance(max_failures, int) or isinstance(max_failures, bool) or max_failures < 0
    ):
        raise ValueError(
            f"max_failures must be a whole number, 0 or more, not {max_failures!r}: "
            "max_failures=0 opens an incident at the first failure, 2 at the third in a row."
        )
    return seconds, max_failures


def set_expectation(
    using: str,
    job_id: str,
    now: datetime,
    *,
    every: timedelta | float | None = None,
    max_failures: int | None = None,
) -> Expectation | None:
    """
    Store that the job ``job_id`` is expected to succeed at least ``every`` (a
    timedelta or seconds) and/or to fail at most ``max_failures`` times in a
    row; with neither, forget the job's expectation (the next evaluation
    resolves its incidents). Return the stored expectation (None when forgotten).
    An unchanged expectation keeps its ``since``: its first deadline still counts
    from when it was first set.
    """
    seconds, max_failures = checked_expectation(job_id, every, max_failures)
    expectations = Expectation.objects.using(using)
    if seconds is None and max_failures is None:
        expectations.filter(pk=job_id).delete()
        return None
    current = expectations.filter(pk=job_id).first()
    if current is not None and (current.every, current.max_failures) == (seconds, max_failures):
        return current
    expectation, _ = expectations.update_or_create(
        pk=job_id, defaults={"every": seconds, "max_failures": max_failures, "since": now}
    )
    return expectation


class DeclaredExpectations:
    """
    The expectations this process declared in code (:func:`..alerts.expect`), by job id.

    Declaring writes nothing (an app's ``jobs.py`` is imported by ``manage.py
    check`` and ``migrate`` too): a scheduler stores them at its first
    heartbeat, and within a heartbeat of any declared while it runs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._declared: dict[str, tuple[float | None, int | None]] = {}
        #: Moves at every declaration: a scheduler stores them again when it moved.
        self.version = 0

    def declare(
        self, job_id: str, every: timedelta | float | None, max_failures: int | None
    ) -> None:
        checked = checked_expectation(job_id, every, max_failures)
        with self._lock:
            self._declared[job_id] = checked
            self.version += 1

    def publish(self, using: str, now: datetime) -> int:
        """Store every declared expectation (unchanged ones keep their deadline).

        Return the version stored.
        """
        with self._lock:
            version, declared = self.version, dict(self._declared)
        for job_id, (every, max_failures) in declared.items():
            set_expectation(using, job_id, now, every=every, max_failures=max_failures)
        return version


#: This process's declared expectations.
declared_expectations = DeclaredExpectations()


def take_turn(using: str, identity: str, now: datetime, interval: float) -> bool:
    """
    Whether this process evaluates now: True for exactly one caller per ``interval``.

    One conditional ``UPDATE`` of the one row of :class:`WatchTurn` (only if the
    last evaluation is ``interval`` seconds old); the first caller ever inserts
    the row, and of two that do so at once the primary key lets one through.
    """
    turns = WatchTurn.objects.using(using)
    cutoff = to_db(now - timedelta(seconds=interval))
    taken = turns.filter(pk=1, evaluated_at__lte=cutoff).update(
        evaluated_at=to_db(now), evaluated_by=identity
    )
    if taken:
        return True
    if turns.filter(pk=1).exists():
        return False
    try:
        with transaction.atomic(using=using):
            turns.create(pk=1, evaluated_at=now, evaluated_by=identity)
    except IntegrityError:
        return False
    return True


def open_incident(
    using: str, job_id: str, kind: str, now: datetime, detail: str = ""
) -> Incident | None:
    """Open an incident; None if one is open already for this job and kind (by anyone)."""
    incidents = Incident.objects.using(using)
    if incidents.filter(job_id=job_id, kind=kind, is_open=True).exists():
        return None
    try:
        # A savepoint: inside a caller's transaction, a taken key must not break it.
        with transaction.atomic(using=using):
            return incidents.create(
                job_id=job_id, kind=kind, is_open=True, opened_at=now, detail=detail
            )
    except IntegrityError:
        return None  # opened meanwhile by another process, which notifies


def resolve_incident(using: str, incident: Incident, now: datetime) -> bool:
    """Resolve an open incident; True only for the one caller that did."""
    resolved = (
        Incident.objects.using(using)
        .filter(pk=incident.pk, is_open=True)
        .update(is_open=None, resolved_at=to_db(now))
    )
    if resolved:
        incident.is_open = None
        incident.resolved_at = now
    return bool(resolved)


@dataclass
class Changes:
    """What one evaluation changed: the incidents it opened and those it resolved."""

    opened: list[Incident] = field(default_factory=list)
    resolved: list[Incident] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.opened or self.resolved)


def _breaches(
    using: str, expectation: Expectation, job: DjangoJob, now: datetime
) -> dict[str, str]:
    """The job's broken expectations now: {kind: detail}."""
    breaches: dict[str, str] = {}
    ledger = DjangoJobExecution.objects.using(using).filter(job_id=job.pk)
    # A paused job is not expected to run: its deadline waits (its failures still count).
    if expectation.every is not None and job.next_run_time is not None:
        last = (
            ledger.filter(status=ExecutionStatus.SUCCEEDED)
            .order_by("-run_time")
            .values_list("finished_at", "run_time")
            .first()
        )
        succeeded = (last[0] or last[1]) if last else None
        since = max(succeeded, expectation.since) if succeeded else expectation.since
        if (now - since).total_seconds() > expectation.every:
            breaches[IncidentKind.OVERDUE] = (
                f"No successful run since {succeeded.isoformat()}; one was expected at least "
                f"every {expectation.every:g} s."
                if succeeded
                else f"No successful run in the {expectation.every:g} s since the expectation "
                "was set."
            )
    if expectation.max_failures is not None:
        window = expectation.max_failures + 1
        statuses = list(
            ledger.filter(status__in=_ENDED_RUNS)
            .order_by("-run_time")
            .values_list("status", flat=True)[:window]
        )
        if len(statuses) == window and ExecutionStatus.SUCCEEDED not in statuses:
            allowed = expectation.max_failures
            breaches[IncidentKind.FAILING] = (
                "The last run failed; no failure is expected."
                if allowed == 0
                else f"The last {window} runs failed; at most {allowed} "
                + ("failure in a row is expected." if allowed == 1 else "in a row are expected.")
            )
    return breaches


def evaluate(using: str, now: datetime, *, dead_after: float, expect_scheduler: bool) -> Changes:
    """
    Compare the ledger with every expectation; open and resolve incidents.

    Two queries per expected job at most (its last success, its last runs, on
    the ledger's (job, run time) key), one for the live processes, one for the
    open incidents. A job that was removed, or whose expectation was
    forgotten, has its incidents resolved. Return what changed here: each
    incident opened or resolved appears in the changes of exactly one caller.
    """
    changes = Changes()
    broken: dict[tuple[str, str], str] = {}
    expectations = list(Expectation.objects.using(using).all())
    jobs = DjangoJob.objects.using(using).in_bulk([e.job_id for e in expectations])
    for expectation in expectations:
        job = jobs.get(expectation.job_id)
        if job is None:
            continue  # not stored (yet, or any more): nothing to expect of it
        for kind, detail in _breaches(using, expectation, job, now).items():
            broken[(job.pk, kind)] = detail
    if expect_scheduler:
        alive = SchedulerNode.objects.using(using).alive(now, timedelta(seconds=dead_after))
        if not alive.exists():
            broken[("", IncidentKind.NO_SCHEDULER)] = (
                f"No scheduler process has sent a heartbeat in the last {dead_after:g} s."
            )
    still_open: set[tuple[str, str]] = set()
    for incident in Incident.objects.using(using).filter(is_open=True):
        key = (incident.job_id, incident.kind)
        if key in broken:
            still_open.add(key)
        elif resolve_incident(using, incident, now):
            changes.resolved.append(incident)
    for (job_id, kind), detail in broken.items():
        if (job_id, kind) in still_open:
            continue
        opened = open_incident(using, job_id, kind, now, detail)
        if opened is not None:
            changes.opened.append(opened)
    return changes
