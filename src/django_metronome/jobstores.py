"""
``DjangoJobStore``: APScheduler's job store contract on Django's ORM, in JSON.

The store honours every method of ``apscheduler.jobstores.base.BaseJobStore``
as APScheduler's own stores do (errors, ordering, microsecond precision), with
three differences that are the point of this package:

* job state is versioned JSON (see :mod:`django_metronome.serialization`),
  and a job that cannot be stored is refused when it is added, with an error
  that names the argument or the function at fault;
* a row that cannot be loaded is quarantined (kept, flagged, logged once),
  never deleted;
* every idempotent operation survives a dropped connection by retrying once
  on a fresh one.

``register_events(scheduler)`` records the runs of any APScheduler scheduler
into the ledger, :class:`~django_metronome.models.DjangoJobExecution`.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobExecutionEvent,
    JobSubmissionEvent,
    SchedulerEvent,
)
from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.util import ref_to_obj
from django import db
from django.db import IntegrityError, connections, router, transaction

from .conf import conf
from .models import DjangoJob, DjangoJobExecution, ExecutionStatus, format_exception
from .serialization import decode_job, encode_job
from .util import from_db, node_identity, retry_on_lost_connection, to_db, utcnow

__all__ = ["DjangoJobStore", "register_events"]

logger = logging.getLogger("django_metronome.jobstores")

_LOAD_COLUMNS = ("id", "name", "func_ref", "state", "next_run_time")


def _store_alias(store: DjangoJobStore) -> str:
    return store.database


retry = retry_on_lost_connection(_store_alias)


class DjangoJobStore(BaseJobStore):
    """
    Keep APScheduler jobs in the Django database.

    :param database: the database alias; by default ``METRONOME["DATABASE"]``,
        then whatever Django's routers choose for writes to ``DjangoJob``.
    """

    def __init__(self, database: str | None = None) -> None:
        super().__init__()
        self._database = database

    @property
    def database(self) -> str:
        return self._database or conf.DATABASE or router.db_for_write(DjangoJob)

    @property
    def jobs(self):  # type: ignore[no-untyped-def]
        """The ``DjangoJob`` manager on this store's database."""
        return DjangoJob.objects.using(self.database)

    # -- reading ---------------------------------------------------------------

    @retry
    def lookup_job(self, job_id: str) -> Job | None:
        rows = self.jobs.loadable().filter(pk=job_id).values_list(*_LOAD_COLUMNS)
        jobs = self._load(rows)
        return jobs[0] if jobs else None

    @retry
    def get_due_jobs(self, now: datetime) -> list[Job]:
        rows = self.jobs.due(to_db(now)).values_list(*_LOAD_COLUMNS)
        return self._load(rows)

    @retry
    def get_next_run_time(self) -> datetime | None:
        value = (
            self.jobs.loadable()
            .filter(next_run_time__isnull=False)
            .order_by("next_run_time")
            .values_list("next_run_time", flat=True)
            .first()
        )
        return from_db(value)

    @retry
    def get_all_jobs(self) -> list[Job]:
        rows = self.jobs.loadable().in_run_order().values_list(*_LOAD_COLUMNS)
        return self._load(rows)

    # -- writing ---------------------------------------------------------------

    def add_job(self, job: Job) -> None:
        row = self._row(job)  # refuses what cannot be stored, before any query
        self._add_row(job.id, row)

    @retry
    def _add_row(self, job_id: str, row: dict[str, Any]) -> None:
        try:
            with transaction.atomic(using=self.database):
                self.jobs.create(id=job_id, **row)
        except IntegrityError:
            # A retry after a lost commit acknowledgement finds its own row:
            # that is success, not a conflict.
            existing = self.jobs.filter(pk=job_id).values(*row).first()
            if existing is not None and existing == row:
                return
            raise ConflictingIdError(job_id) from None

    @retry
    def update_job(self, job: Job) -> None:
        row = self._row(job)
        updated = self.jobs.filter(pk=job.id).update(
            **row, quarantined_at=None, quarantine_reason="", updated_at=utcnow()
        )
        if not updated:
            raise JobLookupError(job.id)

    @retry
    def remove_job(self, job_id: str) -> None:
        deleted, _ = self.jobs.filter(pk=job_id).delete()
        if not deleted:
            raise JobLookupError(job_id)

    @retry
    def remove_all_jobs(self) -> None:
        self.jobs.all().delete()

    def shutdown(self) -> None:
        """Nothing to release: connections belong to Django and to each thread."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} (database={self.database!r})>"

    # -- internals -------------------------------------------------------------

    def _row(self, job: Job) -> dict[str, Any]:
        func_ref, state = encode_job(job)
        return {
            "name": job.name or "",
            "func_ref": func_ref,
            "state": state,
            "next_run_time": to_db(job.next_run_time),
        }

    def resolve_func(self, func_ref: str) -> Callable[..., Any]:
        """Find the function a stored job calls. Subclasses may restrict this."""
        return ref_to_obj(func_ref)

    def _load(self, rows: Iterable[tuple[Any, ...]]) -> list[Job]:
        jobs = []
        for job_id, name, func_ref, state, next_run_time in rows:
            try:
                job = decode_job(
                    job_id=job_id,
                    name=name,
                    func_ref=func_ref,
                    state=state,
                    next_run_time=from_db(next_run_time),
                    resolve_func=self.resolve_func,
                )
            except Exception as exc:
                self._quarantine(job_id, exc)
                continue
            job._scheduler = self._scheduler
            job._jobstore_alias = self._alias
            recorder = getattr(self._scheduler, "_metronome_recorder", None)
            if recorder is not None:
                job.func = recorder.clock.wrap(job.id, job.func)
            jobs.append(job)
        return jobs

    def _quarantine(self, job_id: str, exc: Exception) -> None:
        reason = format_exception(exc)
        if self.jobs.quarantine(job_id, reason):
            logger.error(
                "Job %r cannot be loaded and is quarantined (kept, not run): %s. Fix the "
                "cause, then re-add or update the job to release it.",
                job_id,
                reason,
            )


# --- recording runs ------------------------------------------------------------

_RECORDED_EVENTS = (
    EVENT_JOB_SUBMITTED
    | EVENT_JOB_EXECUTED
    | EVENT_JOB_ERROR
    | EVENT_JOB_MISSED
    | EVENT_JOB_MAX_INSTANCES
)


class RunClock:
    """
    When each job call began and ended, kept until the recorder takes it.

    APScheduler's events say when a job finished but not when it started, and a
    fast job's outcome can even be dispatched before its submission. The store
    wraps the functions of the jobs it loads for a recording scheduler, and the
    recorder takes each job's timings in the order its outcome events arrive,
    which is the order of its runs. (Two overlapping runs of one job, possible
    only with max_instances > 1, may swap their timings.)
    """

    #: Timings kept per job when nobody takes them (a safety bound).
    LIMIT = 1000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._timings: dict[str, deque[tuple[datetime, datetime]]] = {}

    def _put(self, job_id: str, start: datetime) -> None:
        end = utcnow()
        with self._lock:
            if job_id not in self._timings:
                self._timings[job_id] = deque(maxlen=self.LIMIT)
            self._timings[job_id].append((start, end))

    def wrap(self, job_id: str, func: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
                start = utcnow()
                try:
                    return await func(*args, **kwargs)
                finally:
                    self._put(job_id, start)

            return timed_coroutine

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = utcnow()
            try:
                return func(*args, **kwargs)
            finally:
                self._put(job_id, start)

        return timed

    def take(self, job_id: str) -> tuple[datetime, datetime] | None:
        with self._lock:
            timings = self._timings.get(job_id)
            if not timings:
                return None
            timing = timings.popleft()
            if not timings:
                del self._timings[job_id]
            return timing


class EventRecorder:
    """An APScheduler listener that writes each job event into the ledger."""

    def __init__(self, database: str | None = None, node: str | None = None) -> None:
        self._database = database
        self.node = node or node_identity()
        self.clock = RunClock()

    @property
    def executions(self):  # type: ignore[no-untyped-def]
        alias = self._database or conf.DATABASE or router.db_for_write(DjangoJobExecution)
        return DjangoJobExecution.objects.using(alias)

    def __call__(self, event: SchedulerEvent) -> None:
        # Listeners run in the scheduler thread and in executor threads, which have
        # no request cycle: treat each event like a request, so no thread keeps a
        # connection past CONN_MAX_AGE or writes on one the server has dropped.
        tidy = not connections[self.executions.db].in_atomic_block
        if tidy:
            db.close_old_connections()
        try:
            self.record(event)
        except Exception:
            # APScheduler would swallow the error silently; say what was not recorded.
            logger.exception("Could not record %r in the job execution ledger.", event)
        finally:
            if tidy:
                db.close_old_connections()

    def record(self, event: SchedulerEvent) -> None:
        if isinstance(event, JobSubmissionEvent):
            self._record_submission(event)
        elif isinstance(event, JobExecutionEvent):
            self._record_execution(event)

    def _record_submission(self, event: JobSubmissionEvent) -> None:
        if event.code == EVENT_JOB_SUBMITTED:
            for run_time in event.scheduled_run_times:
                self.executions.record_start(job_id=event.job_id, run_time=run_time, node=self.node)
        else:  # EVENT_JOB_MAX_INSTANCES
            for run_time in event.scheduled_run_times:
                self.executions.record_outcome(
                    job_id=event.job_id,
                    run_time=run_time,
                    status=ExecutionStatus.SKIPPED,
                    node=self.node,
                    reason="The job already had its maximum number of instances running.",
                )

    def _record_execution(self, event: JobExecutionEvent) -> None:
        fields: dict[str, Any] = {}
        if event.code != EVENT_JOB_MISSED:
            timing = self.clock.take(event.job_id)
            if timing is not None:
                fields["started_at"], fields["now"] = timing
        if event.code == EVENT_JOB_EXECUTED:
            status = ExecutionStatus.SUCCEEDED
        elif event.code == EVENT_JOB_ERROR:
            status = ExecutionStatus.FAILED
            fields["exception"] = format_exception(event.exception)
            fields["traceback"] = event.traceback or ""
        else:  # EVENT_JOB_MISSED
            status = ExecutionStatus.MISSED
            fields["reason"] = "The run started later than the job's misfire grace time allows."
        self.executions.record_outcome(
            job_id=event.job_id,
            run_time=event.scheduled_run_time,
            status=status,
            node=self.node,
            **fields,
        )


def register_events(scheduler: BaseScheduler, result_storage: Any = None) -> EventRecorder:
    """
    Record every run of ``scheduler``'s jobs in the ledger.

    Works with any APScheduler 3 scheduler: each submission, success, error,
    miss and max-instances refusal becomes (or completes) one
    ``DjangoJobExecution`` row, keyed by job id and scheduled run time, also
    for jobs removed since. ``result_storage`` is accepted and ignored, as in
    django-apscheduler.
    """
    recorder = EventRecorder()
    scheduler.add_listener(recorder, _RECORDED_EVENTS)
    # The store times the jobs it loads for this scheduler (see RunClock).
    scheduler._metronome_recorder = recorder  # type: ignore[attr-defined]
    return recorder
