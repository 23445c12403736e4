"""
``register_events(scheduler)``: the runs of any APScheduler scheduler, in the ledger.

For a stock APScheduler scheduler (django-apscheduler's usage): each
submission, success, error, miss and max-instances refusal becomes (or
completes) one ledger row, written by one thread of the recorder's own.
django-metronome's schedulers record their runs themselves.
"""

from __future__ import annotations

import functools
import inspect
import logging
import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    EVENT_SCHEDULER_SHUTDOWN,
    JobExecutionEvent,
    JobSubmissionEvent,
    SchedulerEvent,
)
from apscheduler.schedulers.base import BaseScheduler
from django import db
from django.db import connections

from .db import close_connection, database_alias, node_identity, utcnow
from .models import DjangoJobExecution, ExecutionStatus, format_exception, format_traceback

__all__ = ["EventRecorder", "RunClock", "recorder_for", "register_events"]

logger = logging.getLogger("django_metronome.jobstores")

#: The recorder of each scheduler that has one (the store times the jobs it loads for it).
_recorders: weakref.WeakKeyDictionary[Any, EventRecorder] = weakref.WeakKeyDictionary()


def recorder_for(scheduler: Any) -> EventRecorder | None:
    """The recorder ``register_events`` gave ``scheduler``, if any."""
    try:
        return _recorders.get(scheduler)
    except TypeError:  # not weakly referenceable: it has none
        return None


_RECORDED_EVENTS = (
    EVENT_SCHEDULER_SHUTDOWN
    | EVENT_JOB_SUBMITTED
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
    """
    An APScheduler listener that writes each job event into the ledger.

    Events arrive in the scheduler thread and in executor threads; they are
    queued and written, in arrival order, by one thread of the recorder's own,
    so that job threads never wait on the ledger or hold a connection for it.
    The thread stops, closing its connection, when the scheduler shuts down.
    """

    def __init__(self, database: str | None = None, node: str | None = None) -> None:
        self._database = database
        self.node = node or node_identity()
        self.clock = RunClock()
        #: Names of the jobs loaded for this scheduler, by id (their rows may be gone).
        self.names: dict[str, str] = {}
        self._queue: queue.Queue[tuple[SchedulerEvent, datetime] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def executions(self):  # type: ignore[no-untyped-def]
        alias = database_alias(self._database)
        return DjangoJobExecution.objects.using(alias)

    def __call__(self, event: SchedulerEvent) -> None:
        if event.code == EVENT_SCHEDULER_SHUTDOWN:
            self.stop()
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._write, name="metronome-recorder", daemon=True
                )
                self._thread.start()
        self._queue.put((event, utcnow()))

    def flush(self) -> None:
        """Wait until every event queued so far is written."""
        self._queue.join()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _write(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                try:
                    self._record_once_more_on_a_new_connection(*item)
                finally:
                    self._queue.task_done()
            self._queue.task_done()
        finally:
            connections.close_all()

    def _record_once_more_on_a_new_connection(self, event: SchedulerEvent, at: datetime) -> None:
        try:
            try:
                self.record(event, at)
            except (db.OperationalError, db.InterfaceError):
                # The server dropped the connection: the writes are idempotent upserts.
                close_connection(self.executions.db)
                self.record(event, at)
        except Exception:
            # APScheduler would swallow the error silently; say what was not recorded.
            logger.exception(
                "Could not record event %s of job %r (run time %s) in the job execution ledger.",
                event.code,
                getattr(event, "job_id", None),
                getattr(event, "scheduled_run_time", None)
                or getattr(event, "scheduled_run_times", None),
            )

    def record(self, event: SchedulerEvent, at: datetime | None = None) -> None:
        """Write one event now; ``at`` is when it happened (default: now)."""
        at = at or utcnow()
        if isinstance(event, JobSubmissionEvent):
            self._record_submission(event, at)
        elif isinstance(event, JobExecutionEvent):
            self._record_execution(event, at)

    def _record_submission(self, event: JobSubmissionEvent, at: datetime) -> None:
        if event.code == EVENT_JOB_SUBMITTED:
            for run_time in event.scheduled_run_times:
                self.executions.record_start(
                    job_id=event.job_id,
                    run_time=run_time,
                    node=self.node,
                    now=at,
                    job_name=self.names.get(event.job_id),
                )
        else:  # EVENT_JOB_MAX_INSTANCES
            for run_time in event.scheduled_run_times:
                self.executions.record_outcome(
                    job_id=event.job_id,
                    run_time=run_time,
                    status=ExecutionStatus.SKIPPED,
                    node=self.node,
                    now=at,
                    job_name=self.names.get(event.job_id),
                    reason="The job already had its maximum number of instances running.",
                )

    def _record_execution(self, event: JobExecutionEvent, at: datetime) -> None:
        fields: dict[str, Any] = {"now": at}
        if event.code != EVENT_JOB_MISSED:
            timing = self.clock.take(event.job_id)
            if timing is not None:
                fields["started_at"], fields["now"] = timing
        if event.code == EVENT_JOB_EXECUTED:
            status = ExecutionStatus.SUCCEEDED
        elif event.code == EVENT_JOB_ERROR:
            status = ExecutionStatus.FAILED
            fields["exception"] = format_exception(event.exception)
            fields["traceback"] = format_traceback(event.traceback, event.exception)
        else:  # EVENT_JOB_MISSED
            status = ExecutionStatus.MISSED
            fields["reason"] = "The run started later than the job's misfire grace time allows."
        self.executions.record_outcome(
            job_id=event.job_id,
            run_time=event.scheduled_run_time,
            status=status,
            node=self.node,
            job_name=self.names.get(event.job_id),
            **fields,
        )


def register_events(scheduler: BaseScheduler, result_storage: Any = None) -> EventRecorder | None:
    """
    Record every run of ``scheduler``'s jobs in the ledger.

    Works with any APScheduler 3 scheduler: each submission, success, error,
    miss and max-instances refusal becomes (or completes) one
    ``DjangoJobExecution`` row, keyed by job id and scheduled run time, also
    for jobs removed since. ``result_storage`` is accepted and ignored, as in
    django-apscheduler. For django-metronome's own schedulers, which record
    their runs themselves, it does nothing and returns None.
    """
    if getattr(scheduler, "records_its_runs", False):
        return None  # django-metronome's schedulers write the ledger themselves.
    recorder = EventRecorder()
    scheduler.add_listener(recorder, _RECORDED_EVENTS)
    # The store times the jobs it loads for this scheduler (see RunClock).
    _recorders[scheduler] = recorder
    return recorder
