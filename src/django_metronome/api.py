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
from typing import Any

from apscheduler.job import Job
from apscheduler.util import undefined

from .jobstores import DjangoJobStore
from .schedulers import BackgroundScheduler

__all__ = ["add_job"]


def add_job(
    func: Callable[..., Any] | str,
    trigger: Any = None,
    args: Any = None,
    kwargs: Any = None,
    id: str | None = None,
    name: str | None = None,
    misfire_grace_time: Any = undefined,
    coalesce: Any = undefined,
    max_instances: Any = undefined,
    next_run_time: Any = undefined,
    executor: str = "default",
    replace_existing: bool = False,
    misfire_policy: str | None = None,
    database: str | None = None,
    **trigger_args: Any,
) -> Job:
    """
    Store a job added at run time, now, in the database: APScheduler's ``add_job``.

    The arguments are ``BackgroundScheduler.add_job``'s (a crontab string is a
    trigger; times without a zone are in the project's). The function must be
    importable and allowed (see :mod:`django_metronome.allowlist`); arguments
    must be JSON. With ``replace_existing`` an existing job of the same id is
    replaced (its next run time recomputed), otherwise ``ConflictingIdError``
    (adding the very same job twice is taken as a retry and is not a conflict).
    """
    # A scheduler that never starts: it builds triggers and jobs as ours do.
    builder = BackgroundScheduler()
    job = builder.build_job(
        func,
        trigger,
        args,
        kwargs,
        id,
        name,
        misfire_grace_time,
        coalesce,
        max_instances,
        next_run_time,
        executor,
        misfire_policy,
        declared=False,
        **trigger_args,
    )
    store = DjangoJobStore(database)
    builder.add_jobstore(store, "default")
    store.start(builder, "default")
    # The scheduler's own path: job defaults, the first fire time, add or replace.
    builder._real_add_job(job, "default", replace_existing)
    return job
