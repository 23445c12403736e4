"""
Storing a job from any process, whether or not it runs a scheduler.

``scheduler.add_job()`` on a scheduler that is not started only remembers the
job in memory (APScheduler's "pending" jobs, which django-metronome treats as
declared in code). A web request that wants a reminder sent at 18:00 usually
runs in a process without a scheduler: :func:`add_job` writes the job to the
database at once, and whichever scheduler process is running picks it up::

    from django_metronome import add_job

    add_job("shop.tasks:send_reminder", "date", run_date=order.remind_at,
            args=[order.pk], id=f"order-{order.pk}-reminder", replace_existing=True)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.job import Job

from .loop.declare import JobSpec
from .loop.flavours import BackgroundScheduler
from .store.backfill import BackfillResult
from .store.jobstore import DjangoJobStore

__all__ = ["add_job", "backfill"]


def add_job(
    func: Callable[..., Any] | str,
    trigger: Any = None,
    *arguments: Any,
    database: str | None = None,
    **options: Any,
) -> Job:
    """
    Store a job added at run time, now, in the database: APScheduler's ``add_job``.

    The arguments are ``BackgroundScheduler.add_job``'s, read the same way
    (:class:`~django_metronome.loop.declare.JobSpec`): a crontab string is a
    trigger; times without a zone are in the project's. The function must be
    importable and allowed (see :mod:`django_metronome.store.allowlist`);
    arguments must be JSON. With ``replace_existing`` an existing job of the
    same id is replaced (its next run time recomputed), otherwise
    ``ConflictingIdError`` (adding the very same job twice is taken as a retry
    and is not a conflict). ``database`` picks the database alias.
    """
    spec = JobSpec.of(func, trigger, *arguments, **options)
    # A scheduler that never starts: it builds triggers and jobs as ours do, and
    # stores them through its public store_job(), as a running one would.
    builder = BackgroundScheduler()
    job = builder.build_job(spec, declared=False)
    store = DjangoJobStore(database)
    builder.add_jobstore(store, "default")
    store.start(builder, "default")
    builder.store_job(job, "default", spec.replace_existing)
    return job


def backfill(
    job_id: str,
    start: datetime,
    end: datetime,
    *,
    dry_run: bool = False,
    requested_by: str = "",
    database: str | None = None,
) -> BackfillResult:
    """
    Run every fire of job ``job_id`` from ``start`` to ``end``, as if the scheduler had been up.

    Each fire becomes a pending ledger row with its scheduled time, marked
    backfilled, which the scheduler processes run oldest first; a fire that
    already has a row is not run again. At most
    :data:`~django_metronome.store.backfill.MAX_BACKFILL` fires, ``end`` not
    in the future. See :func:`django_metronome.store.backfill.backfill`.
    Raise ``DjangoJob.DoesNotExist`` for an unknown job.
    """
    from .store import backfill as backfills
    from .store.models import DjangoJob

    using = database or "default"
    job = DjangoJob.objects.using(using).get(pk=job_id)
    return backfills.backfill(
        job, start, end, dry_run=dry_run, requested_by=requested_by, using=using
    )
