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

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from apscheduler.job import Job

from .loop.declare import JobSpec
from .loop.flavours import BackgroundScheduler
from .store import audit
from .store.backfill import BackfillResult
from .store.db import database_alias
from .store.jobstore import DjangoJobStore
from .store.models import ChangeOrigin, DjangoJob, JobChange

__all__ = ["add_job", "backfill", "pause_job", "record_change", "resume_job"]


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
    with _acting(None):
        builder.store_job(job, "default", spec.replace_existing)
    return job


def _acting(by: str | None) -> Any:
    """The API's changes, by ``by`` (default: this process, ``user@host:pid``)."""
    return audit.acting(ChangeOrigin.API, by or audit.process_actor())


def pause_job(
    job_id: str,
    *,
    note: str = "",
    by: str = "",
    until: datetime | None = None,
    database: str | None = None,
) -> DjangoJob:
    """
    Pause a job from any process: no fire until it is resumed (or until ``until``).

    ``note`` says why and ``by`` who (default: this process); both are shown in
    the admin and by ``manage.py metronome show`` until the job is resumed, and
    the pause is in the job's audit trail. ``DjangoJob.DoesNotExist`` if there is
    no such job.
    """
    job = DjangoJob.objects.using(database_alias(database)).get(pk=job_id)
    with _acting(by):
        job.pause(until, note=note, by=by)
    return job


def resume_job(job_id: str, *, by: str = "", database: str | None = None) -> datetime | None:
    """
    Resume a paused job from any process; return its next run time.

    None when its schedule has ended (it stays paused). The resume is in the
    job's audit trail, by ``by`` (default: this process).
    """
    job = DjangoJob.objects.using(database_alias(database)).get(pk=job_id)
    with _acting(by):
        return job.resume()


def record_change(
    job_id: str,
    action: str,
    *,
    actor: str | None = None,
    origin: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    note: str = "",
    job_name: str = "",
    database: str | None = None,
) -> JobChange | None:
    """
    Record a change to a job in its audit trail (see :func:`.store.audit.record_change`).

    For changes made outside django-metronome's own verbs (a backfill, a
    script): ``action`` is one of ``ChangeAction`` (``"backfilled"``, ...),
    ``origin`` one of ``ChangeOrigin`` (default: the API), ``actor`` who
    (default: this process). Only the keys of ``before``/``after`` that differ are kept.
    """
    return audit.record_change(
        job_id,
        action,
        actor=actor if actor is not None else audit.process_actor(),
        origin=origin or ChangeOrigin.API,
        before=before,
        after=after,
        note=note,
        job_name=job_name,
        using=database,
    )


def backfill(
    job_id: str,
    start: datetime,
    end: datetime,
    *,
    dry_run: bool = False,
    overlap: str = "buffer_all",
    requested_by: str = "",
    database: str | None = None,
) -> BackfillResult:
    """
    Run every fire of job ``job_id`` from ``start`` to ``end``, as if the scheduler had been up.

    Each fire becomes a pending ledger row with its scheduled time, marked
    backfilled, which the scheduler processes run oldest first (``overlap``:
    ``"buffer_all"``, ``"skip"`` or ``"allow_all"``, what one does while the
    job runs another); a fire that
    already has a row is not run again. At most
    :data:`~django_metronome.store.backfill.MAX_BACKFILL` fires, ``end`` not
    in the future. See :func:`django_metronome.store.backfill.backfill`.
    Raise ``DjangoJob.DoesNotExist`` for an unknown job.
    """
    from .store import backfill as backfills
    from .store.models import DjangoJob

    using = database or "default"
    job = DjangoJob.objects.using(using).get(pk=job_id)
    with _acting(requested_by or None):
        return backfills.backfill(
            job,
            start,
            end,
            dry_run=dry_run,
            overlap=overlap,
            requested_by=requested_by,
            using=using,
        )
