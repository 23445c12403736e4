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

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from django.conf import settings
from django.db import connections
from django.db.models import F, Q

from ..time.firing import FirePlan
from ..time.jitter import nominal_time
from ..time.overlap import BUFFERED_PREFIX, Decision, Overlap, decide, effective_overlap
from ..time.text import duration
from . import ledger as writes
from . import limits
from .db import from_db, to_db, write_transaction
from .models import (
    ACTIVE_STATUSES,
    DjangoJob,
    DjangoJobExecution,
    ExecutionStatus,
    format_exception,
)

logger = logging.getLogger("django_metronome.claims")

#: The columns a job is loaded from, in the order the store's loader takes them.
LOAD_COLUMNS = ("id", "name", "func_ref", "state", "next_run_time", "source")


@dataclass(frozen=True)
class Fire:
    """One fire of a job, claimed in the ledger (not started yet)."""

    execution_id: int
    run_time: datetime
    #: It misfired (later than its grace time) but its policy runs it anyway.
    late: bool = False
    #: The last fire of a job whose schedule has ended: the job's row goes with
    #: its outcome. (The job's other fires of the same claim are queued before it,
    #: so they have all started by then: none can be handed back and need the row.)
    ended: bool = False
    #: Its job buffers fires (overlap): when it ends, look at once for the one waiting.
    wake: bool = False
    #: Its job's next fire may ask it to stop (overlap ``cancel_other``).
    cancellable: bool = False


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
    #: (job id, fire time) of fires written as pending: they wait for the running one
    #: (overlap ``buffer_one``/``buffer_all``).
    buffered: list[tuple[str, datetime]] = field(default_factory=list)
    #: (job id, fire time) of the fires whose start asks the job's running fires to
    #: stop (overlap ``cancel_other``).
    replacing: list[tuple[str, datetime]] = field(default_factory=list)
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
    load); ``plan`` decides the fate of a job's due fires. Where the database
    locks rows (PostgreSQL, MariaDB) both run inside the transaction, while
    the job rows are locked, and other processes skip them. SQLite has one
    lock for the whole database, which every other write of every process
    waits for: there the rows are read, loaded and planned first, and the
    transaction only checks that nobody moved them meanwhile, then writes.
    """
    batch = ClaimBatch()
    if limit <= 0:
        return batch
    jobs_table = DjangoJob.all_rows.using(using)
    due = jobs_table.due(to_db(now)).runnable_by(declared).values_list(*LOAD_COLUMNS)[:limit]
    if connections[using].vendor == "sqlite":
        rows = read_job_rows(using, due)
        if not rows:
            return batch
        batch.full = len(rows) >= limit
        jobs, plans = _plan_all(jobs_table, load(rows), plan, now)
        with write_transaction(using):
            jobs = _unmoved(jobs_table, jobs, {row[0]: row[4] for row in rows})
            _record(using, node, now, jobs, plans, rows, batch)
        return batch
    with write_transaction(using):
        with in_due_order(using):
            rows = read_job_rows(using, due.select_for_update(skip_locked=True))
        if not rows:
            return batch
        batch.full = len(rows) >= limit
        jobs, plans = _plan_all(jobs_table, load(rows), plan, now)
        _record(using, node, now, jobs, plans, rows, batch)
    return batch


def read_job_rows(using: str, rows: Any) -> list[tuple[Any, ...]]:
    """
    The ``LOAD_COLUMNS`` of a job query's rows, read without Django's converters.

    A claim reads a few hundred rows, and Django converts each value through
    its field (a JSON decode, a datetime parse and zone check), which cost as
    much as planning the fires. Here the query is compiled by Django, run on
    the cursor, and only the two columns that need it are converted: the state
    decoded from JSON, the next run time made an aware datetime in UTC.
    """
    fetched, naive_zone = _fetch_by_due_index(using, rows)
    return [
        (job_id, name, func_ref, _state(state), _instant(when, naive_zone), source)
        for job_id, name, func_ref, state, when, source in fetched
    ]


def _state(value: Any) -> Any:
    """The decoded state; a row edited into invalid JSON keeps its text (and is quarantined)."""
    if not isinstance(value, str | bytes):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _instant(value: Any, naive_zone: tzinfo) -> datetime | None:
    """A stored datetime (a str on SQLite, naive where the server has no zones) in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=naive_zone)
    return value.astimezone(UTC)


def _unmoved(jobs_table: Any, jobs: list[Job], read: dict[str, datetime]) -> list[Job]:
    """The jobs whose row still has the next run time they were planned from."""
    if not jobs:
        return jobs
    current = {
        job_id: from_db(when)
        for job_id, when in jobs_table.extra(  # noqa: S610
            where=[_in_ids("id", len(jobs))], params=[job.id for job in jobs]
        )
        .filter(quarantined_at__isnull=True, ended_at__isnull=True)
        .values_list("id", "next_run_time")
    }
    return [job for job in jobs if job.id in current and current[job.id] == read[job.id]]


def _record(
    using: str,
    node: str,
    now: datetime,
    jobs: list[Job],
    plans: dict[str, FirePlan],
    rows: list[tuple[Any, ...]],
    batch: ClaimBatch,
) -> None:
    """In the claim's transaction: the ledger rows of the planned fires, and the jobs advanced."""
    jobs, _ = limits.limit_runs(using, jobs, plans, now)  # max_runs: may finish jobs
    if not jobs:
        return
    jobs_table = DjangoJob.all_rows.using(using)
    ledger = DjangoJobExecution.objects.using(using)
    names = {row[0]: row[1] for row in rows}
    running, recorded, waiting = ledger_state(
        ledger, {job.id: plans[job.id] for job in jobs}, buffering=any(map(buffers, jobs))
    )
    entries: list[dict[str, Any]] = []
    runs: dict[str, list[tuple[datetime, bool]]] = {}
    for job in jobs:
        runs[job.id] = _ledger_entries(
            job,
            plans[job.id],
            now,
            node,
            names[job.id],
            (running, waiting),
            recorded,
            entries,
            batch,
        )
    ids = writes.insert_fires(using, entries)
    waiting_jobs = {job_id for job_id, _ in batch.buffered}
    for job in jobs:
        wake, cancellable = buffers(job), replaces(job)
        times = [(run_time, late) for run_time, late in runs[job.id] if (job.id, run_time) in ids]
        if not times:
            continue
        # The job's last fire takes its row with it, unless a fire is buffered behind
        # it (then the heart's sweep removes the row later).
        ends = plans[job.id].next_run_time is None and job.id not in waiting_jobs
        last = len(times) - 1
        batch.claimed.append(
            ClaimedJob(
                job,
                [
                    Fire(
                        ids[(job.id, run_time)],
                        run_time,
                        late,
                        ended=ends and index == last,
                        wake=wake,
                        cancellable=cancellable,
                    )
                    for index, (run_time, late) in enumerate(times)
                ],
            )
        )
    if batch.replacing:
        writes.ask_to_stop(using, batch.replacing)
    _advance(jobs_table, jobs, plans, now, batch)


def _plan_all(
    jobs_table: Any, jobs: list[Job], plan: Planner, now: datetime
) -> tuple[list[Job], dict[str, FirePlan]]:
    """Plan each job; a job whose trigger fails is quarantined, not the whole batch."""
    planned, plans = [], {}
    for job in jobs:
        try:
            plans[job.id] = plan(job, now)
        except Exception as exc:
            reason = f"Its trigger failed: {format_exception(exc)}"
            if jobs_table.quarantine(job.id, reason):
                logger.error("Job %r is quarantined (kept, not run): %s", job.id, reason)
            continue
        planned.append(job)
    return planned, plans


def ledger_state(
    ledger: Any, plans: dict[str, FirePlan], *, buffering: bool = False
) -> tuple[Counter[str], set[tuple[str, datetime]], Counter[str]]:
    """
    What the ledger already holds for this batch, in one query: how many fires
    of each job are claimed or running (for ``max_instances`` and the overlap
    policy, across processes), which of the planned fires already have a row
    (they are not dispatched again: a job re-added at a time it already
    fired, say), and, with ``buffering`` (a job of the batch buffers fires),
    how many fires of each job wait, buffered by the overlap policy.
    """
    if not plans:
        return Counter(), set(), Counter()
    # The planned fires all lie at or after the job's stored next run time (the
    # job rows are locked and not advanced yet): rows from there on are the only
    # ones that can collide, and normally there are none. Compared in the
    # database, rather than as hundreds of times sent along.
    active = [status.value for status in ACTIVE_STATUSES]
    wanted = Q(status__in=active) | Q(run_time__gte=F("job__next_run_time"))
    if buffering:
        # Waiting: not finished (pending: claimed and running ones are counted already).
        wanted |= Q(reason__startswith=BUFFERED_PREFIX, finished_at__isnull=True)
    rows = (
        ledger.filter(wanted)
        .extra(where=[_in_ids("job_id", len(plans))], params=list(plans))  # noqa: S610
        .values_list("job_id", "run_time", "status", "reason")
    )
    running: Counter[str] = Counter()
    waiting: Counter[str] = Counter()
    recorded = set()
    for job_id, run_time, status, reason in rows:
        if status in active:
            running[job_id] += 1
        elif status == ExecutionStatus.PENDING and reason.startswith(BUFFERED_PREFIX):
            waiting[job_id] += 1
        recorded.add((job_id, from_db(run_time)))
    return running, recorded, waiting


def _ledger_entries(
    job: Job,
    plan: FirePlan,
    now: datetime,
    node: str,
    name: str,
    counts: tuple[Counter[str], Counter[str]],
    recorded: set[tuple[str, datetime]],
    entries: list[dict[str, Any]],
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
            {
                "job_id": job.id,
                "job_name": name,
                "run_time": run_time,
                "status": status.value,
                "node": node,
                "claimed_at": now,
                "finished_at": None,
                "lateness": None,
                "reason": "",
                "exception": "",
                "traceback": "",
                "manual": False,
                "nominal_time": nominal_time(job.trigger, run_time),
                **fields,
            }
        )
        return True

    oldest_missed = plan.missed[0][0] if plan.missed else None
    for run_time, lateness in plan.missed:
        reason = (
            f"Missed by {duration(lateness)}: later than the job's misfire grace time "
            f"({_grace(job)}) and not run under its misfire policy."
        )
        if run_time == oldest_missed and plan.summary:
            reason += f" {plan.summary}"
        if entry(
            run_time,
            ExecutionStatus.MISSED,
            lateness=lateness,
            reason=reason,
            finished_at=now,
        ):
            batch.missed.append((job.id, run_time, lateness))
    last_run = plan.run[-1] if plan.run else None
    for run_time in plan.skipped:
        reason = "Coalesced: a later fire of the same job ran instead"
        reason += f" (scheduled {last_run.isoformat()})." if last_run else "."
        if entry(run_time, ExecutionStatus.SKIPPED, reason=reason, finished_at=now):
            batch.skipped.append((job.id, run_time, reason))

    for run_time, reason in plan.excluded:
        if entry(run_time, ExecutionStatus.SKIPPED, reason=reason, finished_at=now):
            batch.skipped.append((job.id, run_time, reason))

    dispatch: list[tuple[datetime, bool]] = []
    policy = effective_overlap(getattr(job, "overlap", None), job.max_instances)
    running, waiting = counts[0][job.id], counts[1][job.id]
    grace = timedelta(seconds=job.misfire_grace_time) if job.misfire_grace_time else None
    for run_time in plan.run:
        decision = decide(policy, running=running, waiting=waiting, max_instances=job.max_instances)
        if decision == Decision.SKIP:
            reason = overlap_skip_reason(policy, job.max_instances, waiting)
            if entry(run_time, ExecutionStatus.SKIPPED, reason=reason, finished_at=now):
                batch.skipped.append((job.id, run_time, reason))
            continue
        if decision == Decision.BUFFER:
            reason = (
                f"{BUFFERED_PREFIX} (overlap: {policy}): waits for the job's running fire, "
                "and starts when it ends; its lateness is how long it waited."
            )
            if entry(run_time, ExecutionStatus.PENDING, reason=reason, node="", claimed_at=None):
                waiting += 1
                batch.buffered.append((job.id, run_time))
            continue
        reason = ""
        if decision == Decision.REPLACE:
            reason = (
                "Started while the job's previous fire ran (overlap: cancel_other): "
                "that one was asked to stop."
            )
        if entry(run_time, ExecutionStatus.CLAIMED, reason=reason):
            running += 1
            if decision == Decision.REPLACE:
                batch.replacing.append((job.id, run_time))
            late = grace is not None and now - run_time > grace
            dispatch.append((run_time, late))
    return dispatch


def buffers(job: Job) -> bool:
    """Whether the job's overlap policy makes fires wait for the running one."""
    policy = effective_overlap(getattr(job, "overlap", None), job.max_instances)
    return policy in (Overlap.BUFFER_ONE, Overlap.BUFFER_ALL)


def replaces(job: Job) -> bool:
    """Whether the job's next fire asks its running one to stop (overlap ``cancel_other``)."""
    return getattr(job, "overlap", None) == Overlap.CANCEL_OTHER


def overlap_skip_reason(policy: Overlap, max_instances: int, waiting: int) -> str:
    """Why a fire was skipped by its job's overlap policy, for the ledger."""
    if policy == Overlap.BUFFER_ONE or policy == Overlap.BUFFER_ALL:
        return (
            f"Skipped (overlap: {policy}): {waiting} fire(s) of the job already waited for "
            "the running one, as many as the policy buffers."
        )
    return (
        f"Skipped (overlap: {policy}): the job already had {max_instances} instance(s) "
        "running (max_instances), counted across all scheduler processes."
    )


def _advance(
    jobs_table: Any,
    jobs: list[Job],
    plans: dict[str, FirePlan],
    now: datetime,
    batch: ClaimBatch,
) -> None:
    # A job whose schedule ended keeps its row, hidden, until its last fire has
    # finished: if this process dies before starting that fire, another one
    # runs it from the row (see nodes.release).
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
        jobs_table.extra(where=[_in_ids("id", len(finished))], params=finished).update(  # noqa: S610
            ended_at=to_db(now), next_run_time=None, updated_at=to_db(now)
        )
        batch.removed.extend(finished)


def _grace(job: Job) -> str:
    if job.misfire_grace_time is None:
        return "none"
    return duration(job.misfire_grace_time)


def next_due_time(*, using: str, declared: Iterable[str]) -> datetime | None:
    """The earliest next run time among the jobs this process can run."""
    rows = (
        DjangoJob.all_rows.using(using)
        .loadable()
        .runnable_by(declared)
        .filter(next_run_time__isnull=False)
        .order_by("next_run_time")
        .values_list("next_run_time")[:1]
    )
    fetched, naive_zone = _fetch_by_due_index(using, rows)
    return _instant(fetched[0][0], naive_zone) if fetched else None


def _fetch_by_due_index(using: str, rows: Any) -> tuple[list[tuple[Any, ...]], tzinfo]:
    """
    A job query's rows, run on the cursor (told its index: :func:`due_index_sql`), and
    the zone of the naive datetimes among them.
    """
    connection = connections[using]
    sql, params = due_index_sql(connection, *rows.query.get_compiler(using).as_sql())
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    return fetched, connection.timezone or ZoneInfo(settings.TIME_ZONE)


@contextmanager
def in_due_order(using: str) -> Iterator[None]:
    """
    Inside a transaction: the due query walks the due index, whatever the statistics say.

    PostgreSQL chooses well once it has analysed the job table, but not in the
    minute between a bulk add and autovacuum's analysis: it then guessed that
    ``source = 'runtime'`` matched a few rows, took the (source, func_ref)
    index, which every run-time job matches, and sorted the whole table at each
    claim (20,000 jobs: 7 ms a claim). ``enable_sort = off`` for that one query
    leaves it one cheap plan, the due index in order up to the limit; RESET
    gives the transaction back its setting. SQLite has :func:`due_index_sql`;
    MariaDB keeps statistics as it writes.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_sort")


#: The index that orders jobs by next run time (see models.job).
DUE_INDEX = "metronome_job_due_idx"


def due_index_sql(connection: Any, sql: str, params: Any) -> tuple[str, Any]:
    """
    A query of the job table by next run time, told to use the index on it (SQLite).

    Without statistics (a project never runs ``ANALYZE``) SQLite's planner
    prefers any index with an equality, here ``source = 'runtime'`` on the
    (source, func_ref) index, which every job matches: it then read and sorted
    the whole table for each claim and each look (20,000 jobs: 7 ms a query,
    at every batch of a burst). ``INDEXED BY`` walks the due index in order and
    stops at the ``LIMIT``. Other databases keep statistics and choose well.
    Only our own table's and index's names are formatted in.
    """
    if connection.vendor != "sqlite":
        return sql, params
    table = connection.ops.quote_name(DjangoJob._meta.db_table)
    hinted = f"FROM {table} INDEXED BY {connection.ops.quote_name(DUE_INDEX)} WHERE"
    return sql.replace(f"FROM {table} WHERE", hinted, 1), params


def _in_ids(column: str, count: int) -> str:
    """
    ``column IN (%s, ...)``, for a few hundred job ids passed as they are: Django's
    ``__in`` lookup prepares each value through the field, which costs more than
    the query. Only a column name of ours is formatted in; the ids are parameters.
    """
    return f"{column} IN ({', '.join(['%s'] * count)})"
