"""
The store's half of the claim/dispatch/record cycle: its transactions.

``claim_due_fires`` is the heart of "one fire, one run". In one transaction it

1. locks a batch of due jobs that this process can run and that no other
   process has locked (``SELECT ... FOR UPDATE SKIP LOCKED``; on SQLite the
   transaction itself takes the database's write lock at ``BEGIN``);
2. plans each job's due fires (which run, which are missed, which are
   skipped) and counts the job's running fires in the ledger, so that
   ``max_instances`` holds across processes;
3. writes one ledger row per fire (the unique key on (job, run time) makes a
   second dispatch of the same fire impossible), and
4. advances each job to its next run time, or removes it when its schedule
   has ended.

Only after the commit are the fires handed to an executor; their outcomes
come back through :func:`record_outcomes`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.job import Job
from django.db import IntegrityError, connections, transaction
from django.db.models import Count

from .firing import FirePlan
from .models import DjangoJob, DjangoJobExecution, ExecutionStatus
from .util import from_db, to_db

logger = logging.getLogger("django_metronome.claims")

#: The columns a job is loaded from, in the order the store's loader takes them.
LOAD_COLUMNS = ("id", "name", "func_ref", "state", "next_run_time", "source")


@contextmanager
def write_transaction(using: str) -> Iterator[None]:
    """
    ``atomic()`` that holds the write lock from its first statement.

    SQLite has no row locks: a plain ``BEGIN`` takes the write lock only at the
    first write, and two processes that both read first then deadlock, one of
    them failing at once with "database is locked". ``BEGIN IMMEDIATE``
    serialises claims instead, each waiting its turn.
    """
    connection = connections[using]
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        with transaction.atomic(using=using):
            yield
        return
    connection.ensure_connection()
    previous = connection.transaction_mode
    connection.transaction_mode = "IMMEDIATE"
    try:
        with transaction.atomic(using=using):
            connection.transaction_mode = previous
            yield
    finally:
        connection.transaction_mode = previous


@dataclass(frozen=True)
class Fire:
    """One fire of a job, claimed and recorded as running."""

    execution_id: int
    run_time: datetime
    #: It misfired (later than its grace time) but its policy runs it anyway.
    late: bool = False


@dataclass
class ClaimedJob:
    job: Job
    fires: list[Fire]


@dataclass
class ClaimBatch:
    """What one claim transaction did."""

    claimed: list[ClaimedJob] = field(default_factory=list)
    #: (job id, fire time, lateness) of fires written to the ledger as missed.
    missed: list[tuple[str, datetime, timedelta]] = field(default_factory=list)
    #: (job id, fire time, reason) of fires written to the ledger as skipped.
    skipped: list[tuple[str, datetime, str]] = field(default_factory=list)
    #: Ids of jobs whose schedule ended: removed from the jobs table.
    removed: list[str] = field(default_factory=list)
    #: The batch was full: more jobs may be due right now.
    full: bool = False

    @property
    def fire_count(self) -> int:
        return sum(len(c.fires) for c in self.claimed)


Loader = Callable[[Iterable[tuple[Any, ...]]], list[Job]]
Planner = Callable[[Job, datetime], FirePlan]


def claim_due_fires(
    *,
    using: str,
    node: str,
    now: datetime,
    limit: int,
    declared: Iterable[str],
    load: Loader,
    plan: Planner,
) -> ClaimBatch:
    """
    Claim, plan, record and advance up to ``limit`` due jobs in one transaction.

    ``load`` turns job rows into APScheduler jobs (quarantining what it cannot
    load); ``plan`` decides the fate of a job's due fires. Both run inside the
    transaction, while the job rows are locked.
    """
    batch = ClaimBatch()
    with write_transaction(using):
        jobs_table = DjangoJob.objects.using(using)
        rows = list(
            jobs_table.due(to_db(now))
            .runnable_by(declared)
            .select_for_update(skip_locked=True)
            .values_list(*LOAD_COLUMNS)[:limit]
        )
        if not rows:
            return batch
        batch.full = len(rows) >= limit
        jobs = load(rows)
        plans = {job.id: plan(job, now) for job in jobs}
        ledger = DjangoJobExecution.objects.using(using)
        names = {row[0]: row[1] for row in rows}
        running = _running_counts(ledger, [job.id for job in jobs if plans[job.id].run])
        recorded = _already_recorded(ledger, plans)

        entries: list[DjangoJobExecution] = []
        runs: dict[str, list[tuple[datetime, bool]]] = {}
        for job in jobs:
            runs[job.id] = _ledger_entries(
                job, plans[job.id], now, node, names[job.id], running, recorded, entries, batch
            )
        _insert(ledger, entries)

        by_key = {(e.job_id, from_db(e.run_time)): e.pk for e in entries}
        for job in jobs:
            fires = [
                Fire(by_key[(job.id, run_time)], run_time, late)
                for run_time, late in runs[job.id]
                if by_key.get((job.id, run_time)) is not None
            ]
            if fires:
                batch.claimed.append(ClaimedJob(job, fires))
        _advance(jobs_table, jobs, plans, now, batch)
    return batch


def _running_counts(ledger: Any, job_ids: list[str]) -> Counter[str]:
    if not job_ids:
        return Counter()
    counts = (
        ledger.filter(job_id__in=job_ids, status=ExecutionStatus.RUNNING)
        .values_list("job_id")
        .annotate(n=Count("id"))
    )
    return Counter(dict(counts))


def _already_recorded(ledger: Any, plans: dict[str, FirePlan]) -> set[tuple[str, datetime]]:
    """Fires of this batch that already have a ledger row (they are not dispatched again)."""
    times = {
        to_db(t)
        for plan in plans.values()
        for t in (*plan.run, *plan.skipped, *(m for m, _ in plan.missed))
    }
    if not times:
        return set()
    existing = ledger.filter(job_id__in=list(plans), run_time__in=times).values_list(
        "job_id", "run_time"
    )
    return {(job_id, from_db(run_time)) for job_id, run_time in existing}


def _ledger_entries(
    job: Job,
    plan: FirePlan,
    now: datetime,
    node: str,
    name: str,
    running: Counter[str],
    recorded: set[tuple[str, datetime]],
    entries: list[DjangoJobExecution],
    batch: ClaimBatch,
) -> list[tuple[datetime, bool]]:
    """Append the ledger rows of one job's plan; return the fires to dispatch."""

    def entry(run_time: datetime, status: ExecutionStatus, **fields: Any) -> bool:
        if (job.id, run_time) in recorded:
            logger.warning(
                "Job %r already has a ledger row for %s; that fire is not dispatched again.",
                job.id,
                run_time.isoformat(),
            )
            return False
        entries.append(
            DjangoJobExecution(
                job_id=job.id,
                job_name=name,
                run_time=to_db(run_time),
                status=status,
                node=node,
                claimed_at=to_db(now),
                **fields,
            )
        )
        return True

    oldest_missed = plan.missed[0][0] if plan.missed else None
    for run_time, lateness in plan.missed:
        reason = (
            f"Missed by {_seconds(lateness)}: later than the job's misfire grace time "
            f"({_grace(job)}) and not run under its misfire policy."
        )
        if run_time == oldest_missed and plan.summary:
            reason += f" {plan.summary}"
        if entry(
            run_time,
            ExecutionStatus.MISSED,
            lateness=lateness,
            reason=reason,
            finished_at=to_db(now),
        ):
            batch.missed.append((job.id, run_time, lateness))
    last_run = plan.run[-1] if plan.run else None
    for run_time in plan.skipped:
        reason = "Coalesced: a later fire of the same job ran instead"
        reason += f" (scheduled {last_run.isoformat()})." if last_run else "."
        if entry(run_time, ExecutionStatus.SKIPPED, reason=reason, finished_at=to_db(now)):
            batch.skipped.append((job.id, run_time, reason))

    dispatch: list[tuple[datetime, bool]] = []
    room = job.max_instances - running[job.id]
    grace = timedelta(seconds=job.misfire_grace_time) if job.misfire_grace_time else None
    for run_time in plan.run:
        if room <= 0:
            reason = (
                f"Skipped: the job already had {job.max_instances} instance(s) running "
                "(max_instances), counted across all scheduler processes."
            )
            if entry(run_time, ExecutionStatus.SKIPPED, reason=reason, finished_at=to_db(now)):
                batch.skipped.append((job.id, run_time, reason))
            continue
        if entry(run_time, ExecutionStatus.RUNNING):
            room -= 1
            late = grace is not None and now - run_time > grace
            dispatch.append((run_time, late))
    return dispatch


def _insert(ledger: Any, entries: list[DjangoJobExecution]) -> None:
    """
    Insert the rows. On a conflict (a fire recorded meanwhile by someone else),
    insert one by one and drop the conflicting entries from ``entries``.
    """
    if not entries:
        return
    try:
        with transaction.atomic(using=ledger.db):
            ledger.bulk_create(entries)
    except IntegrityError:
        kept = []
        for entry in entries:
            entry.pk = None
            try:
                with transaction.atomic(using=ledger.db):
                    entry.save(using=ledger.db, force_insert=True)
            except IntegrityError:
                logger.warning(
                    "Job %r: the fire at %s was recorded by someone else meanwhile; skipped.",
                    entry.job_id,
                    entry.run_time,
                )
                continue
            kept.append(entry)
        entries[:] = kept
    unnumbered = [e for e in entries if e.pk is None]
    if unnumbered:
        # Servers that cannot return the ids of a bulk insert (MySQL): read them back.
        ids = {
            (job_id, from_db(run_time)): pk
            for pk, job_id, run_time in ledger.filter(
                job_id__in={e.job_id for e in unnumbered},
                run_time__in={e.run_time for e in unnumbered},
            ).values_list("pk", "job_id", "run_time")
        }
        for entry in unnumbered:
            entry.pk = ids.get((entry.job_id, from_db(entry.run_time)))


def _advance(
    jobs_table: Any,
    jobs: list[Job],
    plans: dict[str, FirePlan],
    now: datetime,
    batch: ClaimBatch,
) -> None:
    finished = [job.id for job in jobs if plans[job.id].next_run_time is None]
    moving = [
        DjangoJob(
            id=job.id, next_run_time=to_db(plans[job.id].next_run_time), updated_at=to_db(now)
        )
        for job in jobs
        if plans[job.id].next_run_time is not None
    ]
    if moving:
        jobs_table.bulk_update(moving, ["next_run_time", "updated_at"])
    if finished:
        jobs_table.filter(pk__in=finished).delete()
        batch.removed.extend(finished)


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.3f} s"


def _grace(job: Job) -> str:
    if job.misfire_grace_time is None:
        return "none"
    return f"{job.misfire_grace_time} s"


# --- outcomes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one dispatched fire ended."""

    execution_id: int
    run_time: datetime
    status: ExecutionStatus
    finished_at: datetime
    started_at: datetime | None = None
    exception: str = ""
    traceback: str = ""
    reason: str = ""


def record_outcomes(using: str, outcomes: list[Outcome]) -> int:
    """
    Write a batch of outcomes to their ledger rows in one statement.

    Only rows still running (or marked interrupted by a process that presumed
    this one dead) are updated: what really happened wins over a presumption,
    and nothing else is ever overwritten.
    """
    if not outcomes:
        return 0
    rows = []
    for outcome in outcomes:
        row = DjangoJobExecution(
            id=outcome.execution_id,
            status=outcome.status,
            finished_at=to_db(outcome.finished_at),
            exception=outcome.exception,
            traceback=outcome.traceback,
            reason=outcome.reason,
        )
        if outcome.started_at is not None:
            row.started_at = to_db(outcome.started_at)
            row.duration = outcome.finished_at - outcome.started_at
            row.lateness = outcome.started_at - outcome.run_time
        rows.append(row)
    fields = ["status", "finished_at", "exception", "traceback", "reason"]
    timed = [r for r in rows if r.started_at is not None]
    untimed = [r for r in rows if r.started_at is None]
    ledger = DjangoJobExecution.objects.using(using).filter(
        status__in=[ExecutionStatus.RUNNING, ExecutionStatus.INTERRUPTED]
    )
    updated = 0
    with transaction.atomic(using=using):
        if timed:
            updated += ledger.bulk_update(
                timed, [*fields, "started_at", "duration", "lateness"], batch_size=500
            )
        if untimed:
            updated += ledger.bulk_update(untimed, fields, batch_size=500)
    return updated


def next_due_time(*, using: str, declared: Iterable[str]) -> datetime | None:
    """The earliest next run time among the jobs this process can run."""
    value = (
        DjangoJob.objects.using(using)
        .loadable()
        .runnable_by(declared)
        .filter(next_run_time__isnull=False)
        .order_by("next_run_time")
        .values_list("next_run_time", flat=True)
        .first()
    )
    return from_db(value)
