"""
Handing claimed fires to executors, and the ledger writes that follow them.

After the claim commits, each job's fires go to its executor: our pool
(queued, then started in groups as workers come free) or any APScheduler
executor (each fire marked started in its own thread). Outcomes go to the
ledger thread.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable, Collection
from typing import Any

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_REMOVED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.job import Job
from apscheduler.schedulers.base import STATE_STOPPED

from ..signals import fire_missed
from ..store import ledger
from ..store.claims import ClaimBatch, ClaimedJob, Fire
from ..store.db import close_connection, utcnow
from ..store.ledger import Outcome
from ..store.models import ExecutionStatus, format_exception
from . import faults, integrations
from .executors import FireExecutor
from .parts import SchedulerParts
from .pool import PoolTask
from .tasks import is_task

logger = logging.getLogger("django_metronome.scheduler")

#: The longest a worker waits for the ledger writer before waking the loop for a
#: buffered fire (seconds); a write that takes longer is looked at by the next turn.
BUFFER_WAKE_TIMEOUT = 5.0


class DispatchMixin(SchedulerParts):
    """The dispatch half of the claim/dispatch/record cycle."""

    def _dispatch(self, batch: ClaimBatch) -> None:
        self._prepare(batch)
        self._hand_over(batch)

    def _prepare(self, batch: ClaimBatch) -> None:
        """In the claiming thread, after the commit: book the fires, log, start coroutine fires."""
        # Booked here, in the claiming thread, before they go anywhere: a failed turn
        # hands back what this process claimed and does not hold (CycleMixin).
        for claimed in batch.claimed:
            for fire in claimed.fires:
                self._inflight[(claimed.job.id, fire.run_time)] = fire
        if batch.claimed:
            watchers = self._fire_integrations()  # type: ignore[attr-defined]
            if watchers:  # the claim's span, which the fires' spans link to
                integrations.claimed_all(watchers, self.identity, batch)  # type: ignore[attr-defined]
        faults.point("claimed")
        if batch.claimed or batch.missed or batch.skipped:
            logger.info(
                "Claimed %d fire(s) of %d job(s); %d missed, %d skipped, %d job(s) finished.",
                batch.fire_count,
                len(batch.claimed),
                len(batch.missed),
                len(batch.skipped),
                len(batch.removed),
            )
        # Coroutine jobs start as soon as they are submitted: marked started now, in
        # this (database) thread, for the event loop may not touch the database.
        self._start_now(
            [
                fire
                for claimed in batch.claimed
                if is_coroutine(claimed.job.func)
                for fire in claimed.fires
            ]
        )

    def _start_now(self, fires: list[Fire]) -> None:
        if fires:
            marked = self.mark_started([fire.execution_id for fire in fires])
            self._started_now.update(dict.fromkeys(marked, True))

    def _hand_over(self, batch: ClaimBatch) -> None:
        """Give the claimed fires to their executors; dispatch the batch's events."""
        notify = self._has_listeners()  # asked once a batch: a burst's jobs have one fire each
        for index, claimed in enumerate(batch.claimed):
            if self.state == STATE_STOPPED:  # type: ignore[attr-defined]
                self._left_at_stop(batch.claimed[index:])
                break
            self._submit(claimed.job, claimed.fires, notify)
        for job_id, run_time, _lateness in batch.missed:
            self._dispatch_event(JobExecutionEvent(EVENT_JOB_MISSED, job_id, "default", run_time))  # type: ignore[attr-defined]
        if batch.missed and fire_missed.receivers:
            for job_id, run_time, lateness in batch.missed:
                # Django logs its receivers' errors.
                fire_missed.send_robust(
                    sender=self, job_id=job_id, run_time=run_time, lateness=lateness.total_seconds()
                )
        for job_id in batch.removed:
            self._dispatch_event(JobEvent(EVENT_JOB_REMOVED, job_id, "default"))  # type: ignore[attr-defined]

    def _left_at_stop(self, left: list[ClaimedJob]) -> None:
        """
        The scheduler stopped while a claimed batch was handed out (a signal handler
        that calls ``shutdown()`` runs in the middle of a BlockingScheduler's loop):
        the rest is not submitted to executors that are gone, nor recorded as
        failed. The fires are claimed by this process and never started, so the
        stop hands them back (``nodes.stop``), and another process runs them.
        """
        fires = 0
        for claimed in left:
            for fire in claimed.fires:
                self._inflight.pop((claimed.job.id, fire.run_time), None)
                fires += 1
        logger.info(
            "Stopped while handing out claimed fires: %d fire(s) not started here are "
            "handed back to the other processes.",
            fires,
        )

    def request_start(self, ids: list[int], done: Callable[[Collection[int]], None]) -> None:
        """
        Have claimed fires of this process marked started (our pool's hook).

        The ledger thread marks them, in a group with others, and calls
        ``done`` with the ids it marked: a fire handed back to the others
        while this process was presumed dead is not, and must not run here.
        """
        if self._writer is None:
            done(self.mark_started(ids))
            return
        self._writer.request_start(ids, done)

    def mark_started(self, ids: list[int]) -> list[int]:
        """
        Mark claimed fires of this process started (the executors' hook); return those marked.

        Called just before the fires run. A fire handed back to the others while
        this process was presumed dead is not marked, and must not run here.
        """
        try:
            return ledger.start_fires(self.database, self.identity, ids, utcnow())
        except Exception:
            close_connection(self.database)
            raise

    def _submit(self, job: Job, fires: list[Fire], notify: bool) -> None:
        run_times = [fire.run_time for fire in fires]
        for fire in fires:
            self._inflight[(job.id, fire.run_time)] = fire
        # The grace time was applied when the fires were planned; the executor
        # must not apply it again to a late fire that its policy runs.
        job.misfire_grace_time = None
        try:
            executor = self._lookup_executor(job.executor)  # type: ignore[attr-defined]
            task = is_task(job.func)
            if task is not None:  # a django.tasks job: its fires are enqueued (loop/tasks)
                self._submit_task_fires(executor, job, task, fires, runs_fires(executor))  # type: ignore[attr-defined]
                return
            coroutine = is_coroutine(job.func)
            if runs_fires(executor) and not coroutine:
                self._submit_to_pool(executor, job, fires, notify)
                return
            if coroutine:
                fires = [f for f in fires if self._started_now.pop(f.execution_id, None)]
                if not fires:
                    return  # handed back meanwhile: another process runs them
                run_times = [fire.run_time for fire in fires]
            job.func = self._instrument(job, deque(fires), mark=not coroutine)
            executor.submit_job(job, run_times)
        except MaxInstancesReachedError:
            self._settle(job.id, fires, ExecutionStatus.SKIPPED, reason="max_instances reached")
            self._dispatch_event(  # type: ignore[attr-defined]
                JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, job.id, "default", run_times)
            )
        except Exception as exc:
            if self.state == STATE_STOPPED:  # type: ignore[attr-defined]
                self._left_at_stop([ClaimedJob(job, fires)])  # its executor stopped meanwhile
                return
            logger.exception("Could not submit job %r to its executor.", job.id)
            self._settle(job.id, fires, ExecutionStatus.FAILED, exception=format_exception(exc))
        else:
            self._dispatch_event(  # type: ignore[attr-defined]
                JobSubmissionEvent(EVENT_JOB_SUBMITTED, job.id, "default", run_times)
            )

    # -- the direct path: our thread pool ---------------------------------------------

    def _submit_to_pool(self, executor: Any, job: Job, fires: list[Fire], notify: bool) -> None:
        """
        Queue a job's claimed fires on our pool, which marks each started and runs it.

        APScheduler's executor path (a future, a done-callback, an event per
        run, the executor's lock and instance count) costs more per fire than
        claiming it from the database does. Our pool runs :meth:`_run_fire`
        instead: ``max_instances`` is counted in the ledger anyway, and events
        are still dispatched to the listeners the application added, when there
        are any (``notify``).
        """
        log = executor._logger
        executor.submit_fires(
            [
                PoolTask(
                    fire.execution_id,
                    functools.partial(self._run_fire, job, fire, notify, log),
                    functools.partial(self._forget_fire, job.id, fire),
                )
                for fire in fires
            ]
        )
        if notify:
            self._dispatch_event(  # type: ignore[attr-defined]
                JobSubmissionEvent(
                    EVENT_JOB_SUBMITTED, job.id, "default", [fire.run_time for fire in fires]
                )
            )

    def _forget(self, task: PoolTask) -> None:
        """A claimed fire that will not run here (handed back); drop it from the books."""
        if task.dropped is not None:
            task.dropped()

    def _forget_fire(self, job_id: str, fire: Fire) -> None:
        self._inflight.pop((job_id, fire.run_time), None)

    def _has_listeners(self) -> bool:
        """Whether the application listens to job events (ours does not count)."""
        return any(
            callback != self._on_job_event
            for callback, _mask in self._listeners  # type: ignore[attr-defined]
        )

    def _settle(
        self, job_id: str, fires: list[Fire], status: ExecutionStatus, **fields: Any
    ) -> None:
        for fire in fires:
            self._inflight.pop((job_id, fire.run_time), None)
            self._put(
                Outcome(
                    fire.execution_id,
                    fire.run_time,
                    status,
                    utcnow(),
                    job_id=job_id,
                    ended=fire.ended,
                    **fields,
                )
            )

    def _put(self, outcome: Outcome) -> None:
        if self._writer is not None:
            self._writer.put(outcome)

    def _wake_after_write(self) -> None:
        """
        A fire of a job that buffers fires (overlap) ended: once its outcome is
        written, this process looks again, and starts the fire that waited.
        """
        if self._writer is not None:
            self._writer.flush(BUFFER_WAKE_TIMEOUT)
        self._changed()

    # -- waiting for outcomes (tests, commands) ------------------------------------------

    @property
    def running_fires(self) -> int:
        """Fires this process dispatched whose outcome it has not seen yet."""
        return len(self._inflight)

    def wait_for_outcomes(self, timeout: float | None = None) -> bool:
        """Block until the outcomes of every dispatched fire are in the ledger."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._inflight:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        if self._writer is None:
            return True
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self._writer.flush(remaining)


#: Whether each executor class runs claimed fires itself (our pool); asked once per class:
#: isinstance() against a runtime-checkable protocol costs more than a quick fire.
_RUNS_FIRES: dict[type, bool] = {}


def runs_fires(executor: Any) -> bool:
    """Whether ``executor`` takes claimed fires itself (:class:`.executors.FireExecutor`)."""
    kind = type(executor)
    known = _RUNS_FIRES.get(kind)
    if known is None:
        known = _RUNS_FIRES[kind] = isinstance(executor, FireExecutor)
    return known


def is_coroutine(func: Any) -> bool:
    """``inspect.iscoroutinefunction``, remembered on the function where it can be."""
    known = getattr(func, "_metronome_coroutine", None)
    if known is None:
        known = inspect.iscoroutinefunction(func)
        try:
            func._metronome_coroutine = known
        except (AttributeError, TypeError):
            pass  # a builtin or a slotted callable: asked again next time
    return bool(known)
