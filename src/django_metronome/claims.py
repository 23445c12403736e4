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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from django.conf import settings
from django.db import IntegrityError, connections, models, transaction
from django.db.models import Exists, F, Field, OuterRef, Q

from .firing import FirePlan
from .models import (
    ACTIVE_STATUSES,
    OPEN_STATUSES,
    DjangoJob,
    DjangoJobExecution,
    ExecutionStatus,
    format_exception,
)
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
    connection: Any = connections[using]  # transaction_mode is SQLite's (Django 5.1+)
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
    """One fire of a job, claimed in the ledger (not started yet)."""

    execution_id: int
    run_time: datetime
    #: It misfired (later than its grace time) but its policy runs it anyway.
    late: bool = False
    #: Its job's schedule has ended: the job row goes once this fire has finished.
    ended: bool = False


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
    if limit <= 0:
        return batch
    with write_transaction(using):
        jobs_table = DjangoJob.all_rows.using(using)
        rows = list(
            jobs_table.due(to_db(now))
            .runnable_by(declared)
            .select_for_update(skip_locked=True)
            .values_list(*LOAD_COLUMNS)[:limit]
        )
        if not rows:
            return batch
        batch.full = len(rows) >= limit
        jobs, plans = _plan_all(jobs_table, load(rows), plan, now)
        ledger = DjangoJobExecution.objects.using(using)
        names = {row[0]: row[1] for row in rows}
        running, recorded = _ledger_state(ledger, plans)

        entries: list[dict[str, Any]] = []
        runs: dict[str, list[tuple[datetime, bool]]] = {}
        for job in jobs:
            runs[job.id] = _ledger_entries(
                job, plans[job.id], now, node, names[job.id], running, recorded, entries, batch
            )
        ids = _insert(using, entries)
        for job in jobs:
            ended = plans[job.id].next_run_time is None
            fires = [
                Fire(ids[(job.id, run_time)], run_time, late, ended)
                for run_time, late in runs[job.id]
                if (job.id, run_time) in ids
            ]
            if fires:
                batch.claimed.append(ClaimedJob(job, fires))
        _advance(jobs_table, jobs, plans, now, batch)
    return batch


def _columns(connection: Any, fields: list[Any], rows: list[list[Any]]) -> list[list[Any]]:
    """
    Values for PostgreSQL, one list per column (each goes as one array).

    psycopg adapts str, int, datetime and timedelta itself, which is what
    Django's preparation of these fields amounts to on PostgreSQL.
    """
    return [[_db_time(row[i]) for row in rows] for i in range(len(fields))]


def _unnest(connection: Any, fields: list[Any]) -> str:
    """``unnest(%s::type[], ...)``: a whole batch as a handful of array parameters."""
    return "unnest(" + ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields) + ")"


def _insert_rows_unnest(
    connection: Any, fields: list[Any], entries: list[dict[str, Any]]
) -> list[int]:
    meta = DjangoJobExecution._meta
    quote = connection.ops.quote_name
    rows = [[entry[field.attname] for field in fields] for entry in entries]
    # Only names and types from the model's own metadata are formatted in.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(str(field.column)) for field in fields)}) "
        f"SELECT * FROM {_unnest(connection, fields)} RETURNING {quote(_pk_column())}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, _columns(connection, fields, rows))
        return [pk for (pk,) in cursor.fetchall()]


def claim_manual_fires(
    *, using: str, node: str, now: datetime, limit: int, declared: Iterable[str], load: Loader
) -> ClaimBatch:
    """
    Take the pending fires of jobs this process can run: "run now" requests,
    and fires handed back by a process that died (or stopped) before it
    started them.

    In one transaction, as for scheduled fires: the pending rows are locked
    (skipping those another process is taking), each becomes claimed here, or
    skipped when the job already has ``max_instances`` running, or failed when
    the job was removed meanwhile. The jobs' schedules are not touched. A
    fire of a job whose schedule has ended (whose row waits for it) runs too.
    """
    batch = ClaimBatch()
    if limit <= 0:
        return batch
    with write_transaction(using):
        ledger = DjangoJobExecution.objects.using(using)
        jobs_table = DjangoJob.all_rows.using(using)
        runnable = jobs_table.loadable().runnable_by(declared).values("id")
        requests = list(
            ledger.pending()
            .filter(job_id__in=runnable)
            .select_for_update(skip_locked=True)
            .order_by("run_time", "id")
            .values_list("id", "job_id", "run_time")[:limit]
        )
        orphans = ledger.pending().exclude(job_id__in=jobs_table.values("id"))
        orphans.update(
            status=ExecutionStatus.FAILED,
            finished_at=to_db(now),
            reason="The job was removed before a scheduler process could run it.",
        )
        if not requests:
            return batch
        batch.full = len(requests) >= limit
        wanted = jobs_table.filter(pk__in={job_id for _, job_id, _ in requests})
        jobs = {job.id: job for job in load(wanted.values_list(*LOAD_COLUMNS))}
        ended = set(wanted.filter(ended_at__isnull=False).values_list("id", flat=True))
        running, _ = _ledger_state(ledger, {job_id: FirePlan((), (), (), None) for job_id in jobs})
        taken, skipped = [], []
        for pk, job_id, run_time in requests:
            job = jobs.get(job_id)
            if job is None:
                continue  # quarantined by load(): the request waits for the job to be fixed
            if running[job_id] >= job.max_instances:
                skipped.append(pk)
                batch.skipped.append((job_id, from_db(run_time), "max_instances"))
                continue
            running[job_id] += 1
            taken.append(pk)
            fire = Fire(pk, from_db(run_time), ended=job_id in ended)
            batch.claimed.append(ClaimedJob(job, [fire]))
        ledger.filter(pk__in=taken).update(
            status=ExecutionStatus.CLAIMED, node=node, claimed_at=to_db(now)
        )
        ledger.filter(pk__in=skipped).update(
            status=ExecutionStatus.SKIPPED,
            node=node,
            claimed_at=to_db(now),
            finished_at=to_db(now),
            reason="Run now skipped: the job already had its max_instances running.",
        )
    return batch


def has_manual_fires(using: str) -> bool:
    """Whether any "run now" request waits (a cheap check before claiming)."""
    return DjangoJobExecution.objects.using(using).pending().exists()


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


def _ledger_state(
    ledger: Any, plans: dict[str, FirePlan]
) -> tuple[Counter[str], set[tuple[str, datetime]]]:
    """
    What the ledger already holds for this batch, in one query: how many fires
    of each job are claimed or running (for ``max_instances``, across
    processes), and which of the planned fires already have a row (they are
    not dispatched again: a job re-added at a time it already fired, say).
    """
    if not plans:
        return Counter(), set()
    # The planned fires all lie at or after the job's stored next run time (the
    # job rows are locked and not advanced yet): rows from there on are the only
    # ones that can collide, and normally there are none. Compared in the
    # database, rather than as hundreds of times sent along.
    active = [status.value for status in ACTIVE_STATUSES]
    rows = ledger.filter(
        Q(status__in=active) | Q(run_time__gte=F("job__next_run_time")),
        job_id__in=list(plans),
    ).values_list("job_id", "run_time", "status")
    running: Counter[str] = Counter()
    recorded = set()
    for job_id, run_time, status in rows:
        if status in active:
            running[job_id] += 1
        recorded.add((job_id, from_db(run_time)))
    return running, recorded


def _ledger_entries(
    job: Job,
    plan: FirePlan,
    now: datetime,
    node: str,
    name: str,
    running: Counter[str],
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
                **fields,
            }
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
            finished_at=now,
        ):
            batch.missed.append((job.id, run_time, lateness))
    last_run = plan.run[-1] if plan.run else None
    for run_time in plan.skipped:
        reason = "Coalesced: a later fire of the same job ran instead"
        reason += f" (scheduled {last_run.isoformat()})." if last_run else "."
        if entry(run_time, ExecutionStatus.SKIPPED, reason=reason, finished_at=now):
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
            if entry(run_time, ExecutionStatus.SKIPPED, reason=reason, finished_at=now):
                batch.skipped.append((job.id, run_time, reason))
            continue
        if entry(run_time, ExecutionStatus.CLAIMED):
            room -= 1
            late = grace is not None and now - run_time > grace
            dispatch.append((run_time, late))
    return dispatch


_INSERT_COLUMNS = (
    "job_id",
    "job_name",
    "run_time",
    "status",
    "node",
    "claimed_at",
    "finished_at",
    "lateness",
    "reason",
    "exception",
    "traceback",
    "manual",
)


def _insert(using: str, entries: list[dict[str, Any]]) -> dict[tuple[str, datetime], int]:
    """
    Insert ledger rows; return their ids by (job id, run time).

    One multi-row ``INSERT ... RETURNING id`` per few hundred rows (Django's
    bulk_create builds a model instance per row, which costs more than the
    insert). If a fire was recorded meanwhile by someone else, the rows are
    inserted one by one and the conflicting fires are left out.
    """
    if not entries:
        return {}
    try:
        with transaction.atomic(using=using):
            ids = []
            for start in range(0, len(entries), 500):
                ids += _insert_rows(using, entries[start : start + 500])
        return {(e["job_id"], e["run_time"]): pk for e, pk in zip(entries, ids, strict=True)}
    except IntegrityError:
        pass
    found = {}
    for entry in entries:
        try:
            with transaction.atomic(using=using):
                (pk,) = _insert_rows(using, [entry])
        except IntegrityError:
            exists = (
                DjangoJobExecution.objects.using(using)
                .for_fire(entry["job_id"], to_db(entry["run_time"]))
                .exists()
            )
            if not exists:
                raise  # not a conflict with another fire's row: a real error
            logger.warning(
                "Job %r: the fire at %s was recorded by someone else meanwhile; skipped.",
                entry["job_id"],
                entry["run_time"].isoformat(),
            )
            continue
        found[(entry["job_id"], entry["run_time"])] = pk
    return found


def _insert_rows(using: str, entries: list[dict[str, Any]]) -> list[int]:
    connection = connections[using]
    meta = DjangoJobExecution._meta
    fields = _fields(_INSERT_COLUMNS)
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        return _insert_rows_unnest(connection, fields, entries)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    # Only names from the model's own metadata are formatted in; values are parameters.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(str(field.column)) for field in fields)}) "
        f"VALUES {', '.join([row] * len(entries))}"
    )
    adapters = [(field.attname, _adapter(connection, field)) for field in fields]
    params = [
        value if adapt is None or value is None else adapt(value)
        for entry in entries
        for name, adapt in adapters
        for value in (entry[name],)
    ]
    returning = connection.features.can_return_rows_from_bulk_insert
    if returning:
        sql += f" RETURNING {quote(_pk_column())}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if returning:
            return [pk for (pk,) in cursor.fetchall()]
    # Servers that cannot return the ids of an insert (MySQL): read them back.
    ledger = DjangoJobExecution.objects.using(using)
    keys = {(e["job_id"], e["run_time"]) for e in entries}
    found = {
        (job_id, from_db(run_time)): pk
        for pk, job_id, run_time in ledger.filter(
            job_id__in={key[0] for key in keys}, run_time__in={to_db(key[1]) for key in keys}
        ).values_list("pk", "job_id", "run_time")
    }
    return [found[(e["job_id"], e["run_time"])] for e in entries]


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
        jobs_table.filter(pk__in=finished).update(
            ended_at=to_db(now), next_run_time=None, updated_at=to_db(now)
        )
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
    #: Its job's id, and whether the job's schedule had ended (its row then goes).
    job_id: str = ""
    ended: bool = False


def record_outcomes(using: str, outcomes: list[Outcome]) -> int:
    """
    Write a batch of outcomes to their ledger rows, in one round of statements.

    Only rows still claimed or running (or marked interrupted by a process that
    presumed this one dead) are updated: what really happened wins over a presumption,
    and nothing else is ever overwritten. An outcome without a reason keeps
    the row's (a "run now" request says who asked).
    """
    groups: dict[tuple[bool, bool], list[Outcome]] = {}
    for outcome in outcomes:
        key = (outcome.started_at is not None, bool(outcome.reason))
        groups.setdefault(key, []).append(outcome)
    updated = 0
    with transaction.atomic(using=using):
        for (timed, with_reason), group in groups.items():
            columns = ["status", "finished_at", "exception", "traceback"]
            columns += ["reason"] * with_reason
            columns += ["started_at", "duration", "lateness"] * timed
            updated += _update_rows(using, columns, [_values(o, columns) for o in group])
    ended = {outcome.job_id for outcome in outcomes if outcome.ended and outcome.job_id}
    if ended:
        delete_ended_jobs(using, ended)
    return updated


def delete_ended_jobs(using: str, job_ids: Iterable[str] | None = None) -> int:
    """
    Delete the rows of jobs whose schedule ended and whose fires have all finished.

    ``job_ids`` limits the look to those jobs (the ones whose fires just
    finished); without it, every ended job is looked at.
    """
    open_fires = DjangoJobExecution.objects.using(using).filter(
        job_id=OuterRef("pk"), status__in=[status.value for status in OPEN_STATUSES]
    )
    rows = DjangoJob.all_rows.using(using).filter(ended_at__isnull=False)
    if job_ids is not None:
        rows = rows.filter(pk__in=list(job_ids))
    deleted, _ = rows.exclude(Exists(open_fires)).delete()
    return deleted


def start_fires(using: str, node: str, ids: Sequence[int], now: datetime) -> list[int]:
    """
    Mark claimed fires started, just before a worker calls them; return the ids marked.

    Only rows still claimed by ``node`` change: a fire handed back to others
    (its process was presumed dead meanwhile) is not started here, so it
    cannot run twice. One statement for the whole group.
    """
    if not ids:
        return []
    connection = connections[using]
    meta = DjangoJobExecution._meta
    quote = connection.ops.quote_name
    started = _fields(["started_at"])[0]
    adapt = _adapter(connection, started)
    when = adapt(now) if adapt is not None else now
    # Only names from the model's own metadata are formatted in; values are parameters.
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {quote('status')} = %s, "  # noqa: S608
        f"{quote(str(started.column))} = %s WHERE {quote(_pk_column())} IN "
        f"({', '.join(['%s'] * len(ids))}) AND {quote('status')} = %s AND {quote('node')} = %s"
    )
    params = [
        ExecutionStatus.RUNNING.value,
        when,
        *ids,
        ExecutionStatus.CLAIMED.value,
        node,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount == len(ids):
            return list(ids)
    # Some were not ours any more, or this is a retry of a mark whose commit was
    # acknowledged too late: the fires started by us are ours, the rest not.
    return list(
        DjangoJobExecution.objects.using(using)
        .filter(pk__in=list(ids), status=ExecutionStatus.RUNNING, node=node)
        .values_list("pk", flat=True)
    )


def _values(outcome: Outcome, columns: list[str]) -> tuple[Any, ...]:
    """The outcome's values for ``columns``, then its ledger row's id."""
    derived = {}
    if outcome.started_at is not None:
        derived = {
            "duration": outcome.finished_at - outcome.started_at,
            "lateness": outcome.started_at - outcome.run_time,
        }
    return (
        *(derived[c] if c in derived else getattr(outcome, c) for c in columns),
        outcome.execution_id,
    )


#: The statuses an outcome may overwrite: its own fire's, or a presumption of its death.
_OUTCOME_TARGETS = (
    ExecutionStatus.CLAIMED.value,
    ExecutionStatus.RUNNING.value,
    ExecutionStatus.INTERRUPTED.value,
)


def _update_rows(using: str, columns: list[str], rows: list[tuple[Any, ...]]) -> int:
    """
    ``UPDATE ledger SET columns = ... WHERE id = ... AND status IN (running, interrupted)``
    for each row, as one executemany: Django's bulk_update builds a CASE per
    column and row, which costs more than the rest of a fire's life together.
    """
    if not rows:
        return 0
    connection = connections[using]
    meta = DjangoJobExecution._meta
    fields = _fields(columns)
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        table, pk = quote(meta.db_table), quote(_pk_column())
        names = [quote(str(field.column)) for field in fields]
        # Only names and types from the model's own metadata are formatted in.
        sql = (
            f"UPDATE {table} SET "  # noqa: S608
            + ", ".join(f"{name} = v.{name}" for name in names)
            + f" FROM {_unnest(connection, [*fields, meta.pk])} AS v({', '.join(names)}, {pk})"
            + f" WHERE {table}.{pk} = v.{pk} AND {table}.{quote('status')} IN (%s, %s, %s)"
        )
        params: list[Any] = [
            *_columns(connection, [*fields, meta.pk], [list(row) for row in rows]),
            *_OUTCOME_TARGETS,
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return max(cursor.rowcount, 0)
    # Only names from the model's own metadata are formatted in; values are parameters.
    sql = (
        f"UPDATE {quote(meta.db_table)} SET "  # noqa: S608
        + ", ".join(f"{quote(str(field.column))} = %s" for field in fields)
        + f" WHERE {quote(_pk_column())} = %s AND {quote('status')} IN (%s, %s, %s)"
    )
    adapters = [_adapter(connection, field) for field in fields]
    params = [
        [
            *(
                value if adapt is None or value is None else adapt(value)
                for adapt, value in zip(adapters, row[:-1], strict=True)
            ),
            row[-1],
            *_OUTCOME_TARGETS,
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        return max(cursor.rowcount, 0)


def _fields(names: Sequence[str]) -> list[Field[Any, Any]]:
    """The ledger's concrete fields of these names (all of them are)."""
    return [cast(Field, DjangoJobExecution._meta.get_field(name)) for name in names]


def _pk_column() -> str:
    return str(DjangoJobExecution._meta.pk.column)  # type: ignore[union-attr]


def _adapter(connection: Any, field: Field[Any, Any]) -> Callable[[Any], Any] | None:
    """
    What a column's values need before they go to the driver; None for nothing.

    ``get_db_prep_save`` for every value of a few hundred rows costs more than
    the insert: the ledger's columns are str, int, bool, datetime and duration,
    and only the last two need work. A datetime is made naive in the
    connection's zone (what Django stores), then adapted by the backend.
    """
    if isinstance(field, models.DateTimeField):
        if settings.USE_TZ:
            zone = connection.timezone
        else:
            zone = ZoneInfo(settings.TIME_ZONE)
        if connection.vendor == "sqlite":
            # What Django's SQLite backend stores for a naive datetime: its str().
            return lambda value: str(value.astimezone(zone).replace(tzinfo=None))
        adapt = connection.ops.adapt_datetimefield_value
        return lambda value: adapt(value.astimezone(zone).replace(tzinfo=None))
    if isinstance(field, models.DurationField):
        return lambda value: field.get_db_prep_value(value, connection)
    return None


def _db_time(value: Any) -> Any:
    return to_db(value) if isinstance(value, datetime) else value


def next_due_time(*, using: str, declared: Iterable[str]) -> datetime | None:
    """The earliest next run time among the jobs this process can run."""
    value = (
        DjangoJob.all_rows.using(using)
        .loadable()
        .runnable_by(declared)
        .filter(next_run_time__isnull=False)
        .order_by("next_run_time")
        .values_list("next_run_time", flat=True)
        .first()
    )
    return from_db(value)
