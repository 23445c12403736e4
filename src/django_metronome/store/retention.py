"""
Keeping the run history to a size: by age and by count per job.

Applied by the schedulers themselves (every ``PRUNE_INTERVAL`` seconds, by
whichever process's heart is beating) and by ``manage.py metronome prune``.
Rows go in batches of a thousand: each batch's keys are read from an index
(by age: the oldest first, on the ledger's (run time, id) index; per job: on
its (job, run time) index), then deleted by primary key in one statement,
its own short transaction (unless the caller holds one open). So a million
rows go in a thousand short transactions, and no lock is held for longer than
one batch takes; a row still running or pending is never removed. The audit
trail of job changes is kept for the same age as the runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count

from .db import to_db
from .models import FINAL_STATUSES, DjangoJobExecution, JobChange

#: Rows deleted per statement.
BATCH = 1000


def _final(using: str):  # type: ignore[no-untyped-def]
    return DjangoJobExecution.objects.using(using).filter(status__in=FINAL_STATUSES)


def _delete_in_batches(using: str, queryset, max_batches: int, order: tuple[str, ...]) -> int:  # type: ignore[no-untyped-def]
    deleted = 0
    for _ in range(max_batches):
        ids = list(queryset.order_by(*order).values_list("id", flat=True)[:BATCH])
        if not ids:
            break
        # One statement, one short transaction: the rows' locks go at its commit.
        with transaction.atomic(using=using):
            count, _ = _final(using).filter(pk__in=ids).delete()
        deleted += count
        if len(ids) < BATCH:
            break
    return deleted


def prune_older_than(using: str, now: datetime, max_age: timedelta, max_batches: int = 10) -> int:
    """Delete finished runs scheduled before ``now - max_age``; return how many."""
    old = _final(using).filter(run_time__lt=to_db(now - max_age))
    return _delete_in_batches(using, old, max_batches, ("run_time", "id"))


def prune_per_job(using: str, keep: int, max_batches: int = 10, max_jobs: int = 100) -> int:
    """Keep each job's ``keep`` most recent finished runs; return how many went."""
    if keep < 1:
        raise ValueError(f"keep must be 1 or more, not {keep!r}; prune by age to remove all.")
    crowded = (
        _final(using)
        .values("job_id")
        .annotate(runs=Count("id"))
        .filter(runs__gt=keep)
        .values_list("job_id", flat=True)[:max_jobs]
    )
    deleted = 0
    for job_id in list(crowded):
        runs = _final(using).filter(job_id=job_id)
        cutoff = runs.order_by("-run_time", "-id").values_list("run_time", flat=True)[keep - 1]
        older = runs.filter(run_time__lt=cutoff)
        deleted += _delete_in_batches(using, older, max_batches, ("run_time",))
    return deleted


def prune_changes_older_than(
    using: str, now: datetime, max_age: timedelta, max_batches: int = 10
) -> int:
    """Delete audit-trail rows (job changes) made before ``now - max_age``; return how many."""
    changes = JobChange.objects.using(using)
    deleted = 0
    for _ in range(max_batches):
        ids = list(
            changes.filter(at__lt=to_db(now - max_age))
            .order_by("at", "id")
            .values_list("id", flat=True)[:BATCH]
        )
        if not ids:
            break
        with transaction.atomic(using=using):
            count, _ = changes.filter(pk__in=ids).delete()
        deleted += count
        if len(ids) < BATCH:
            break
    return deleted


def prune(
    using: str,
    now: datetime,
    *,
    max_age: timedelta | None,
    max_per_job: int | None,
    max_batches: int = 10,
) -> int:
    """
    Apply both limits that are set; return how many ledger rows were deleted.

    The audit trail keeps the same age (its rows are not counted in the result);
    the per-job count limits runs only.
    """
    deleted = 0
    if max_age is not None:
        deleted += prune_older_than(using, now, max_age, max_batches)
        prune_changes_older_than(using, now, max_age, max_batches)
    if max_per_job is not None:
        deleted += prune_per_job(using, max_per_job, max_batches)
    return deleted
