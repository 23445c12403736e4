"""
The run ledger's writes: every change of a fire's status goes through here.

A fire's row is written when it is claimed (:func:`insert_fires`, in the
claim's transaction), marked started just before a worker calls it
(:func:`start_fires`), finished with its outcome (:func:`record_outcomes`),
and, when its process dies or stops first, interrupted or handed back
(:func:`release`). "Run now" writes a pending row (:func:`request_run`);
``register_events`` on a stock APScheduler scheduler writes rows as its events
arrive (:func:`record_start`, :func:`record_outcome`). The batch writes are
raw SQL, one statement per batch: Django's bulk operations build a model
instance or a ``CASE`` per row, which costs more than the fire itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.db.models import Exists, F, OuterRef, TextField, Value
from django.db.models.functions import Concat

from ..time.overlap import CANCELLED_PREFIX
from . import bulk
from .db import column_adapter, to_db, utcnow
from .models import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    OPEN_STATUSES,
    DjangoJob,
    DjangoJobExecution,
    ExecutionStatus,
)

logger = logging.getLogger("django_metronome.ledger")


# --- claimed: one row per fire -----------------------------------------------------------


def insert_fires(using: str, entries: list[dict[str, Any]]) -> dict[tuple[str, datetime], int]:
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
                ids += bulk.insert_rows(using, entries[start : start + 500])
        return {(e["job_id"], e["run_time"]): pk for e, pk in zip(entries, ids, strict=True)}
    except IntegrityError:
        pass
    found = {}
    for entry in entries:
        try:
            with transaction.atomic(using=using):
                (pk,) = bulk.insert_rows(using, [entry])
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


def fail_orphaned_requests(using: str, now: datetime) -> int:
    """Pending fires whose job was removed meanwhile: failed, with the reason."""
    jobs = DjangoJob.all_rows.using(using).values("id")
    return (
        DjangoJobExecution.objects.using(using)
        .pending()
        .exclude(job_id__in=jobs)
        .update(
            status=ExecutionStatus.FAILED,
            finished_at=to_db(now),
            reason="The job was removed before a scheduler process could run it.",
        )
    )


def claim_pending(
    using: str, taken: list[int], skipped: list[int], node: str, now: datetime
) -> None:
    """Pending fires claimed by ``node``, or skipped for the job's ``max_instances``."""
    ledger = DjangoJobExecution.objects.using(using)
    if taken:
        ledger.filter(pk__in=taken).update(
            status=ExecutionStatus.CLAIMED, node=node, claimed_at=to_db(now)
        )
    if skipped:
        ledger.filter(pk__in=skipped).update(
            status=ExecutionStatus.SKIPPED,
            node=node,
            claimed_at=to_db(now),
            finished_at=to_db(now),
            reason="Run now skipped: the job already had its max_instances running.",
        )


def ask_to_stop(using: str, replacing: Iterable[tuple[str, datetime]]) -> int:
    """
    Mark the open fires that a newer fire of their job replaces (overlap ``cancel_other``).

    Their reason says so; the process running one sees it through
    ``current_fire().cancelled`` (and cancels a coroutine job itself). The
    outcome keeps the reason. Return how many were marked.
    """
    ledger = DjangoJobExecution.objects.using(using)
    active = [status.value for status in ACTIVE_STATUSES]
    marked = 0
    for job_id, run_time in replacing:
        marked += (
            ledger.filter(job_id=job_id, status__in=active, run_time__lt=to_db(run_time))
            .exclude(reason__startswith=CANCELLED_PREFIX)
            .update(
                # Before what the row said (a fire that itself replaced one, say).
                reason=Concat(
                    Value(
                        f"{CANCELLED_PREFIX} (scheduled {run_time.isoformat()}; "
                        "overlap: cancel_other). "
                    ),
                    F("reason"),
                    output_field=TextField(),
                )
            )
        )
    return marked


def asked_to_stop(using: str, execution_id: int) -> bool:
    """Whether a fire was asked to stop by the next fire of its job (:func:`ask_to_stop`)."""
    return (
        DjangoJobExecution.objects.using(using)
        .filter(pk=execution_id, reason__startswith=CANCELLED_PREFIX)
        .exists()
    )


# --- started, finished ----------------------------------------------------------------------


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
    #: Its job's id, and whether it was the last fire of a job whose schedule ended
    #: (the job's row then goes).
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
    groups: dict[tuple[bool, bool, bool], list[Outcome]] = {}
    for outcome in outcomes:
        key = (
            outcome.started_at is not None,
            bool(outcome.reason),
            bool(outcome.exception or outcome.traceback),
        )
        groups.setdefault(key, []).append(outcome)
    updated = 0
    with transaction.atomic(using=using):
        for (timed, with_reason, with_error), group in groups.items():
            # A claimed row's error columns are empty: a success leaves them so.
            columns = ["status", "finished_at"]
            columns += ["exception", "traceback"] * with_error
            columns += ["reason"] * with_reason
            columns += ["started_at", "duration", "lateness"] * timed
            updated += bulk.update_rows(using, columns, [_values(o, columns) for o in group])
    ended = [outcome.job_id for outcome in outcomes if outcome.ended and outcome.job_id]
    if ended:
        # Their last fires: no other fire of theirs is open (see claims.Fire.ended),
        # so no look at the ledger is needed.
        DjangoJob.all_rows.using(using).filter(pk__in=ended, ended_at__isnull=False).delete()
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
    started = bulk.fields_named(["started_at"])[0]
    adapt = column_adapter(connection, started)
    when = adapt(now) if adapt is not None else now
    # Only names from the model's own metadata are formatted in; values are parameters.
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {quote('status')} = %s, "  # noqa: S608
        f"{quote(str(started.column))} = %s WHERE {quote(bulk.pk_column())} IN "
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


# --- when a process dies or stops -------------------------------------------------------------


def release(
    using: str, identity: str, now: datetime, *, started: str, claimed: str
) -> tuple[int, int, set[str]]:
    """
    Release what a process held: its started fires become interrupted (with the
    reason ``started``), its claimed fires pending again (with ``claimed``), for
    any process to run. Return both counts and the ids of the jobs of the
    interrupted fires (a job whose schedule ended may now go).
    """
    ledger = DjangoJobExecution.objects.using(using)
    # A task job's fire running on a task worker (it has a task result) is not this
    # process's to interrupt: its worker's signal ends it (store/taskfires).
    running = ledger.filter(
        node=identity, status=ExecutionStatus.RUNNING, task_result_id__isnull=True
    )
    jobs = set(running.values_list("job_id", flat=True))
    interrupted = running.update(
        status=ExecutionStatus.INTERRUPTED, finished_at=to_db(now), reason=started
    )
    taken = ledger.filter(node=identity, status=ExecutionStatus.CLAIMED)
    # A "run now" request keeps saying who asked for it.
    handed_back = taken.filter(manual=True).update(
        status=ExecutionStatus.PENDING, node="", claimed_at=None
    )
    handed_back += taken.update(
        status=ExecutionStatus.PENDING, node="", claimed_at=None, reason=claimed
    )
    return interrupted, handed_back, jobs


def hand_back_unheld(using: str, node: str, held: list[int], now: datetime) -> int:
    """
    Hand back the fires claimed by ``node`` that it does not hold (``held``):
    claims whose commit's answer was lost. Return how many.
    """
    claimed = DjangoJobExecution.objects.using(using).filter(
        node=node, status=ExecutionStatus.CLAIMED
    )
    if held:
        claimed = claimed.exclude(pk__in=held)
    return claimed.update(
        status=ExecutionStatus.PENDING,
        node="",
        claimed_at=None,
        reason=f"Handed back: {node} claimed it, but the answer to its claim was lost.",
    )


# --- asked for by hand, and recorded from APScheduler's events ----------------------------------


def request_run(ledger: Any, job: DjangoJob, *, requested_by: str = "") -> DjangoJobExecution:
    """A pending, manual fire of ``job`` at the current time (see ``DjangoJob.run_now``)."""
    now = utcnow()
    reason = "Run now" + (f", asked for by {requested_by}." if requested_by else ".")
    return ledger.create(  # type: ignore[no-any-return]
        job_id=job.pk,
        job_name=job.name,
        run_time=to_db(now),
        status=ExecutionStatus.PENDING,
        manual=True,
        reason=reason,
    )


def record_start(
    ledger: Any,
    *,
    job_id: str,
    run_time: datetime,
    node: str,
    job_name: str | None = None,
    now: datetime | None = None,
) -> bool:
    """
    Write the ledger row of a fire being dispatched, if there is none yet.

    Return False when the fire already has a row: it was dispatched before,
    or its outcome arrived first (events are not ordered). Datetimes are aware.
    """
    run_time, now = to_db(run_time), to_db(now or utcnow())
    # Read before the transaction: on SQLite, a read inside it followed by the
    # insert would need a lock upgrade, which fails at once under contention.
    name = _job_name(ledger, job_id) if job_name is None else job_name
    try:
        with transaction.atomic(using=ledger.db):
            ledger.create(
                job_id=job_id,
                job_name=name,
                run_time=run_time,
                status=ExecutionStatus.RUNNING,
                node=node,
                claimed_at=now,
                started_at=now,
                lateness=now - run_time,
            )
    except IntegrityError:
        return False
    return True


def record_outcome(
    ledger: Any,
    *,
    job_id: str,
    run_time: datetime,
    status: ExecutionStatus,
    node: str = "",
    job_name: str | None = None,
    now: datetime | None = None,
    started_at: datetime | None = None,
    exception: str = "",
    traceback: str = "",
    reason: str = "",
) -> None:
    """
    Move a fire to a final status, creating its row if the start was never seen.

    ``now`` is when it ended; ``started_at``, when known, is when the job
    itself began, which makes the duration exact. A final status is never
    overwritten: the first outcome recorded wins. Datetimes are aware.
    """
    run_time, now, started_at = to_db(run_time), to_db(now or utcnow()), to_db(started_at)
    fields: dict[str, Any] = {
        "status": status,
        "finished_at": now,
        "exception": exception,
        "traceback": traceback,
        "reason": reason,
    }
    if started_at is not None:
        fields.update(
            started_at=started_at, duration=now - started_at, lateness=started_at - run_time
        )
    elif status == ExecutionStatus.MISSED:
        fields["lateness"] = now - run_time
    open_rows = ledger.for_fire(job_id, run_time).exclude(status__in=FINAL_STATUSES)
    if _finish(open_rows, fields):
        return
    name = _job_name(ledger, job_id) if job_name is None else job_name
    try:
        with transaction.atomic(using=ledger.db):
            # Without a start time the start stays unknown rather than made up.
            ledger.create(job_id=job_id, job_name=name, run_time=run_time, node=node, **fields)
    except IntegrityError:
        # The start arrived meanwhile: finish that row instead.
        _finish(open_rows, fields)


def _job_name(ledger: Any, job_id: str) -> str:
    """The job's name, for a row that must stay readable after the job is gone."""
    names = DjangoJob.all_rows.using(ledger.db).filter(pk=job_id).values_list("name", flat=True)
    return names.first() or ""


def _finish(rows: Any, fields: dict[str, Any]) -> bool:
    if "duration" in fields:
        return bool(rows.update(**fields))
    # Only the start is known: the duration runs from it to the end.
    end = fields["finished_at"]
    updated = rows.filter(started_at__isnull=False).update(duration=end - F("started_at"), **fields)
    updated += rows.filter(started_at__isnull=True).update(**fields)
    return bool(updated)
