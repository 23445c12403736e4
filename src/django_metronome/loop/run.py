"""
Running one fire: the wrapper around a job's call (which fire it is, how long
it took, how it ended), on our pool or on an APScheduler executor.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime
from traceback import format_tb
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    JobExecutionEvent,
)
from apscheduler.job import Job
from django import db
from django.db import connections

from ..store.claims import Fire
from ..store.db import utcnow
from ..store.ledger import Outcome
from ..store.models import ExecutionStatus, format_exception, format_traceback
from . import faults
from .context import FireContext, _current
from .parts import SchedulerParts

logger = logging.getLogger("django_metronome.scheduler")


class FireHandedBack(Exception):
    """A claimed fire could not be marked started: it was handed back to the other processes."""

    def __init__(self, execution_id: int) -> None:
        super().__init__(
            f"Fire {execution_id} was handed back to the other scheduler processes while this "
            "one was presumed dead; it runs there, not here."
        )


def _job_label(job: Job) -> str:
    """A job for the log: its name and id (APScheduler's str() shows a stale next run)."""
    name = job.name or job.id
    return name if name == job.id else f"{name} ({job.id})"


class RunMixin(SchedulerParts):
    """The job's side of a fire: context, timing, outcome."""

    def _run_fire(self, job: Job, fire: Fire, notify: bool, log: logging.Logger) -> None:
        """In a pool thread: run one started fire of the job, and record how it went."""
        key = (job.id, fire.run_time)
        log.info('Running job "%s" (scheduled at %s)', _job_label(job), fire.run_time)
        token = _current.set(FireContext(job.id, fire.run_time, fire.execution_id, fire.late))
        faults.point("started")
        # A job thread has no request cycle: give the job a connection the server
        # has not dropped, and honour CONN_MAX_AGE after it, as a request would.
        _tidy_connections()
        started = utcnow()
        try:
            retval = job.func(*job.args, **job.kwargs)
        except BaseException as exc:
            finished = utcnow()
            frames = "".join(format_tb(exc.__traceback__))
            log.exception('Job "%s" raised an exception', _job_label(job))
            outcome = Outcome(
                fire.execution_id,
                fire.run_time,
                ExecutionStatus.FAILED,
                finished,
                started,
                exception=format_exception(exc),
                traceback=format_traceback(frames, exc),
                job_id=job.id,
                ended=fire.ended,
            )
            event = JobExecutionEvent(
                EVENT_JOB_ERROR,
                job.id,
                "default",
                fire.run_time,
                exception=exc,
                traceback=frames,
            )
        else:
            finished = utcnow()
            log.info('Job "%s" executed successfully', _job_label(job))
            outcome = Outcome(
                fire.execution_id,
                fire.run_time,
                ExecutionStatus.SUCCEEDED,
                finished,
                started,
                job_id=job.id,
                ended=fire.ended,
            )
            event = JobExecutionEvent(
                EVENT_JOB_EXECUTED, job.id, "default", fire.run_time, retval=retval
            )
        finally:
            kept = _tidy_connections()
            if kept:
                self._job_connections.update(kept)
            _current.reset(token)
        faults.point("finished")
        self._put(outcome)
        self._inflight.pop(key, None)
        if notify:
            self._dispatch_event(event)  # type: ignore[attr-defined]

    def _instrument(self, job: Job, fires: deque[Fire], *, mark: bool) -> Callable[..., Any]:
        """
        Wrap the job's function for an executor of APScheduler's: which fire is
        running (current_fire), for how long, and, with ``mark``, the fire marked
        started in this thread just before the call (one statement per fire).
        """
        func, timings, kept = job.func, self._timings, self._job_connections

        def begin() -> tuple[Fire, Any, datetime]:
            fire = fires.popleft()
            if mark and not self.mark_started([fire.execution_id]):
                raise FireHandedBack(fire.execution_id)
            token = _current.set(FireContext(job.id, fire.run_time, fire.execution_id, fire.late))
            return fire, token, utcnow()

        def end(fire: Fire, token: Any, start: datetime) -> None:
            timings[fire.execution_id] = (start, utcnow())
            _current.reset(token)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_coroutine(*args: Any, **kwargs: Any) -> Any:
                fire, token, start = begin()
                try:
                    return await func(*args, **kwargs)
                finally:
                    end(fire, token, start)

            return run_coroutine

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            # A job thread has no request cycle: give the job a connection the server
            # has not dropped, and honour CONN_MAX_AGE after it, as a request would.
            db.close_old_connections()
            fire, token, start = begin()
            try:
                return func(*args, **kwargs)
            finally:
                db.close_old_connections()
                kept.update(c for c in connections.all(initialized_only=True) if c.connection)
                end(fire, token, start)

        return run

    def _on_job_event(self, event: JobExecutionEvent) -> None:
        fire = self._inflight.pop((event.job_id, event.scheduled_run_time), None)
        if fire is None:
            return
        if isinstance(getattr(event, "exception", None), FireHandedBack):
            return  # not run here: its row is pending again, for another process
        timing = self._timings.pop(fire.execution_id, None)
        started, finished = timing if timing is not None else (None, utcnow())
        if event.code == EVENT_JOB_EXECUTED:
            outcome = Outcome(
                fire.execution_id,
                fire.run_time,
                ExecutionStatus.SUCCEEDED,
                finished,
                started,
                job_id=event.job_id,
                ended=fire.ended,
            )
        else:
            outcome = Outcome(
                fire.execution_id,
                fire.run_time,
                ExecutionStatus.FAILED,
                finished,
                started,
                exception=format_exception(event.exception),
                traceback=format_traceback(event.traceback, event.exception),
                job_id=event.job_id,
                ended=fire.ended,
            )
        self._put(outcome)


def _tidy_connections() -> list[Any]:
    """
    ``django.db.close_old_connections()`` for this thread; return what stays open.

    One pass over the thread's connections, not two: this runs around every fire.
    """
    kept = []
    for connection in connections.all(initialized_only=True):
        connection.close_if_unusable_or_obsolete()
        if connection.connection is not None:
            kept.append(connection)
    return kept
