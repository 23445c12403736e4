"""
Running one fire: the wrapper around a job's call (which fire it is, how long
it took, how it ended), on our pool or on an APScheduler executor.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from traceback import format_tb
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    JobExecutionEvent,
)
from apscheduler.job import Job
from django.db import connections

from ..signals import fire_failed
from ..store.claims import Fire
from ..store.db import utcnow
from ..store.ledger import Outcome
from ..store.models import ExecutionStatus, format_exception, format_traceback
from . import faults, integrations
from .context import FireContext, _current
from .overlap import CancelProbe, FireCancelled, run_cancellable
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
    """The job's side of a fire: context, timing, outcome, the same on every path."""

    #: Sentry check-ins, OpenTelemetry spans: chosen at the first fire (loop/integrations).
    _fire_watchers: tuple[integrations.FireWatcher, ...] | None = None

    @contextmanager
    def _in_fire(self, job_id: str, fire: Fire, *, tidy: bool = True) -> Iterator[None]:
        """
        Around one call of a job: ``current_fire()`` answers, and (in a job thread)
        the job gets a connection the server has not dropped, with ``CONN_MAX_AGE``
        honoured after it, as a request would. (A coroutine job on the event loop
        gets the context only.)
        """
        token = self._enter_fire(job_id, fire, tidy=tidy)
        try:
            yield
        finally:
            self._leave_fire(token, tidy=tidy)

    def _enter_fire(self, job_id: str, fire: Fire, *, tidy: bool) -> Any:
        probe = CancelProbe(self.database, fire.execution_id) if fire.cancellable else None
        token = _current.set(
            FireContext(job_id, fire.run_time, fire.execution_id, fire.late, probe)
        )
        # Connections only need a look before the job if the last one left some
        # open (persistent connections): with Django's default, none stays.
        if tidy and getattr(_thread, "kept", True):
            _tidy_connections()
        return token

    def _leave_fire(self, token: Any, *, tidy: bool) -> None:
        if tidy:
            kept = _tidy_connections()
            _thread.kept = bool(kept)
            if kept:
                self._job_connections.update(kept)
        _current.reset(token)

    def _fire_integrations(self) -> tuple[integrations.FireWatcher, ...]:
        """The integrations around this scheduler's fires, chosen the first time asked."""
        watchers = self._fire_watchers
        if watchers is None:
            watchers = self._fire_watchers = integrations.active()
        return watchers

    def _run_fire(self, job: Job, fire: Fire, notify: bool, log: logging.Logger) -> None:
        """
        In a pool thread: run one started fire of the job, and record how it went.

        :meth:`_in_fire` without a context manager, events only for listeners, log
        lines only when logged: this runs once per fire, and a burst of quick
        fires feels every microsecond of it.
        """
        info = log.isEnabledFor(logging.INFO)
        if info:
            log.info('Running job "%s" (scheduled at %s)', _job_label(job), fire.run_time)
        faults.point("started")
        token = self._enter_fire(job.id, fire, tidy=True)
        event = None
        watchers = self._fire_watchers
        if watchers is None:
            watchers = self._fire_integrations()
        try:
            started = utcnow()
            tokens = integrations.begin_all(watchers, job.id, fire, started) if watchers else None
            try:
                retval = job.func(*job.args, **job.kwargs)
            except BaseException as exc:
                finished = utcnow()
                if tokens:
                    integrations.end_all(watchers, tokens, exc, finished)
                frames = "".join(format_tb(exc.__traceback__))
                log.exception('Job "%s" raised an exception', _job_label(job))
                outcome = outcome_of(job.id, fire, started, finished, exc, frames)
                if fire_failed.receivers:
                    self._send_failed(job.id, fire, exc, frames)
                if notify:
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
                if tokens:
                    integrations.end_all(watchers, tokens, None, finished)
                outcome = outcome_of(job.id, fire, started, finished)
                if info:
                    log.info('Job "%s" executed successfully', _job_label(job))
                if notify:
                    event = JobExecutionEvent(
                        EVENT_JOB_EXECUTED, job.id, "default", fire.run_time, retval=retval
                    )
        finally:
            self._leave_fire(token, tidy=True)
        faults.point("finished")
        self._put(outcome)
        self._inflight.pop((job.id, fire.run_time), None)
        if fire.wake:
            self._wake_after_write()
        if event is not None:
            self._dispatch_event(event)  # type: ignore[attr-defined]

    def _instrument(self, job: Job, fires: deque[Fire], *, mark: bool) -> Callable[..., Any]:
        """
        Wrap the job's function for an executor of APScheduler's: the same
        context and timing as our pool gives (:meth:`_in_fire`), the outcome
        taken from APScheduler's event (:meth:`_on_job_event`), and, with
        ``mark``, the fire marked started in this thread just before the call
        (one statement per fire).
        """
        func, timings = job.func, self._timings

        def begin() -> Fire:
            fire = fires.popleft()
            if mark and not self.mark_started([fire.execution_id]):
                raise FireHandedBack(fire.execution_id)
            return fire

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_coroutine(*args: Any, **kwargs: Any) -> Any:
                fire = begin()
                with self._in_fire(job.id, fire, tidy=False):
                    start = utcnow()
                    try:
                        if fire.cancellable:
                            probe = CancelProbe(self.database, fire.execution_id)
                            return await run_cancellable(func(*args, **kwargs), probe)
                        return await func(*args, **kwargs)
                    finally:
                        timings[fire.execution_id] = (start, utcnow())

            return run_coroutine

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            _tidy_connections()  # the start mark below needs a live connection too
            fire = begin()
            watchers = self._fire_integrations()
            with self._in_fire(job.id, fire):
                start = utcnow()
                tokens = integrations.begin_all(watchers, job.id, fire, start) if watchers else None
                error: BaseException | None = None
                try:
                    return func(*args, **kwargs)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    end = timings[fire.execution_id] = (start, utcnow())
                    if tokens:
                        integrations.end_all(watchers, tokens, error, end[1])

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
            self._put(outcome_of(event.job_id, fire, started, finished))
        else:
            self._put(
                outcome_of(event.job_id, fire, started, finished, event.exception, event.traceback)
            )
            if fire_failed.receivers:
                self._send_failed(event.job_id, fire, event.exception, event.traceback)
        if fire.wake:
            self._wake_after_write()

    def _send_failed(
        self, job_id: str, fire: Fire, exc: BaseException | None, frames: str | None
    ) -> None:
        """``fire_failed``, in the job's thread (Django logs its receivers' errors)."""
        fire_failed.send_robust(
            sender=self, job_id=job_id, run_time=fire.run_time, exception=exc, traceback=frames
        )


def outcome_of(
    job_id: str,
    fire: Fire,
    started: datetime | None,
    finished: datetime,
    exc: BaseException | None = None,
    frames: str | None = None,
) -> Outcome:
    """How a fire ended: succeeded, or failed with the exception and its traceback."""
    if exc is None:
        return Outcome(
            fire.execution_id,
            fire.run_time,
            ExecutionStatus.SUCCEEDED,
            finished,
            started,
            job_id=job_id,
            ended=fire.ended,
        )
    return Outcome(
        fire.execution_id,
        fire.run_time,
        # Cancelled by the job's next fire: its reason is in the row already.
        ExecutionStatus.INTERRUPTED if isinstance(exc, FireCancelled) else ExecutionStatus.FAILED,
        finished,
        started,
        exception=format_exception(exc),
        traceback=format_traceback(frames, exc),
        job_id=job_id,
        ended=fire.ended,
    )


#: Per job thread: whether its last fire left a database connection open.
_thread = threading.local()


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
