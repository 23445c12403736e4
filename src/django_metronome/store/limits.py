"""
``max_runs``: a job ends after that many successful fires, kept with its history.

The number lives in the job's trigger (:class:`~django_metronome.time.limits.Limits`);
the successes only in the run ledger. Inside the claim's transaction,
:func:`limit_runs` counts them for the jobs that have a limit (one query for
the batch, none when no job has one): a job that reached its limit is
*finished* (its next run time cleared, its row and history kept, shown as
finished), and a job with fires still running gets no more than could still
be needed; the fires beyond are written to the ledger as skipped, with why.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime
from typing import Any

from apscheduler.job import Job
from django.db.models import Count

from ..time.firing import FirePlan
from ..time.limits import find_limits
from .db import to_db
from .models import OPEN_STATUSES, DjangoJob, DjangoJobExecution, ExecutionStatus

__all__ = ["finished_runs", "limit_runs", "max_runs"]


def max_runs(trigger: Any) -> int | None:
    """A job's ``max_runs`` from its trigger, or None."""
    limits = find_limits(trigger)
    return limits.max_runs if limits is not None else None


def finished_runs(using: str, job_ids: list[str]) -> tuple[Counter[str], Counter[str]]:
    """(successful fires, open fires) of each job, in one query."""
    succeeded: Counter[str] = Counter()
    open_fires: Counter[str] = Counter()
    if not job_ids:
        return succeeded, open_fires
    counted = (
        DjangoJobExecution.objects.using(using)
        .filter(job_id__in=job_ids)
        .filter(status__in=[ExecutionStatus.SUCCEEDED, *OPEN_STATUSES])
        .values_list("job_id", "status")
        .annotate(count=Count("id"))
    )
    for job_id, status, count in counted:
        if status == ExecutionStatus.SUCCEEDED:
            succeeded[job_id] += count
        else:
            open_fires[job_id] += count
    return succeeded, open_fires


def limit_runs(
    using: str, jobs: list[Job], plans: dict[str, FirePlan], now: datetime
) -> tuple[list[Job], list[str]]:
    """
    Apply ``max_runs`` to a claim's plans (changed in place); return (jobs to record, finished).

    Finished jobs are taken out of the batch: their next run time is cleared
    here, and none of their fires is written.
    """
    limited = {job.id: limit for job in jobs if (limit := max_runs(job.trigger)) is not None}
    if not limited:
        return jobs, []
    succeeded, open_fires = finished_runs(using, list(limited))
    finished = [job_id for job_id, limit in limited.items() if succeeded[job_id] >= limit]
    for job_id, limit in limited.items():
        if job_id in finished:
            continue
        plan = plans[job_id]
        room = max(0, limit - succeeded[job_id] - open_fires[job_id])
        if len(plan.run) <= room:
            continue
        reason = (
            f"Skipped: the job may run {limit} time(s) successfully (max_runs); "
            f"{succeeded[job_id]} succeeded and {open_fires[job_id]} are not finished yet."
        )
        beyond = tuple((fire, reason) for fire in plan.run[room:])
        plans[job_id] = replace(plan, run=plan.run[:room], excluded=plan.excluded + beyond)
    if finished:
        DjangoJob.all_rows.using(using).filter(pk__in=finished).update(
            next_run_time=None, updated_at=to_db(now)
        )
    return [job for job in jobs if job.id not in finished], finished


def stored_max_runs(state: Any) -> int | None:
    """``max_runs`` from a job's stored JSON state, without building its trigger."""
    trigger = state.get("trigger") if isinstance(state, dict) else None
    for _ in range(10):  # the wrappers nest a few levels deep at most
        if not isinstance(trigger, dict):
            return None
        if trigger.get("type") == "limits":
            value = trigger.get("max_runs")
            return value if isinstance(value, int) else None
        trigger = trigger.get("trigger")
    return None


def is_finished(job: DjangoJob) -> bool:
    """
    Whether a stored job ended by reaching its ``max_runs`` (its next run time cleared).

    One query, and only for a job with no next run time and a ``max_runs``.
    """
    if job.next_run_time is not None:
        return False
    limit = stored_max_runs(job.state)
    if limit is None:
        return False
    succeeded, _ = finished_runs(job._state.db or "default", [job.pk])
    return succeeded[job.pk] >= limit
