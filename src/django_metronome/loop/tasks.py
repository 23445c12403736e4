"""
Fires of ``django.tasks`` jobs: enqueued on the task's backend, not run here.

A task job's claimed fires go through the same pool as any job's (so the pool
marks each started, in groups, before it is handed on), but the pool thread
enqueues the task instead of calling a function (:func:`..store.taskfires.enqueue_fire`).
An enqueue that raises (a broker down) is tried again, ``TASK_ENQUEUE_ATTEMPTS``
times in all with a doubling pause; then the fire is failed with the error.
Nothing is retried after that: the job's next fire enqueues afresh.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from traceback import format_tb
from typing import Any

from apscheduler.job import Job
from django.db import connections

from ..conf import conf
from ..exceptions import InvalidJob
from ..store import taskfires
from ..store.claims import Fire
from ..store.db import close_connection, utcnow
from . import faults
from .parts import SchedulerParts
from .pool import PoolTask
from .run import outcome_of

logger = logging.getLogger("django_metronome.scheduler")

#: The first pause between two attempts at an enqueue (then doubled each time).
FIRST_RETRY_PAUSE = 0.2  # seconds


class TaskFiresMixin(SchedulerParts):
    """The dispatch of a ``django.tasks`` job's fires: one enqueue per fire."""

    def _submit_task_fires(
        self, executor: Any, job: Job, task: Any, fires: list[Fire], pooled: bool
    ) -> None:
        """Queue the fires' enqueues on our pool, or enqueue them now (other executors)."""
        if pooled:
            executor.submit_fires(
                [
                    PoolTask(
                        fire.execution_id,
                        functools.partial(self._enqueue_fire, job, task, fire),
                        functools.partial(self._forget_task_fire, job.id, fire),
                    )
                    for fire in fires
                ]
            )
            return
        # An executor of APScheduler's would run a function: a task job's fires are
        # only enqueued, which this thread does at once.
        marked = set(self.mark_started([fire.execution_id for fire in fires]))
        for fire in fires:
            if fire.execution_id in marked:
                self._enqueue_fire(job, task, fire)
            else:
                self._forget_task_fire(job.id, fire)

    def _forget_task_fire(self, job_id: str, fire: Fire) -> None:
        self._inflight.pop((job_id, fire.run_time), None)

    def _enqueue_fire(self, job: Job, task: Any, fire: Fire) -> None:
        """Enqueue one started fire of a task job; record where it went, or why it did not."""
        # The fire is marked running (committed): a process killed here leaves it
        # interrupted, never enqueued twice (docs/tasks.md).
        faults.point("enqueue")
        started = utcnow()
        # current_fire() answers (a backend may ask). The thread's connection is the
        # scheduler's own here, as the ledger thread's is: kept open from fire to fire
        # (closed at stop; a broken one is replaced by the next attempt), not closed
        # after each as CONN_MAX_AGE = 0 would have a job's: a new connection per
        # enqueue would cost more than the enqueue.
        token = self._enter_fire(job.id, fire, tidy=False)  # type: ignore[attr-defined]
        try:
            options = getattr(job, "task_options", None)
            target = taskfires.configured_task(task, options, job.id)
            kwargs = dict(job.kwargs)
            if options and options.get("fire_kwargs"):
                kwargs.update(taskfires.fire_kwargs(job.id, fire.run_time))
            self._enqueue_with_retries(job, target, fire, kwargs)
        except BaseException as exc:
            tried = getattr(exc, "_metronome_attempts", 0)
            frames = "".join(format_tb(exc.__traceback__))
            logger.error('Job "%s": its task could not be enqueued: %s', job.id, exc)
            outcome = outcome_of(job.id, fire, started, utcnow(), exc, frames)
            reason = (
                f"The task could not be enqueued (tried {tried} times)."
                if tried > 1
                else "The task could not be enqueued."
            )
            self._put(dataclasses.replace(outcome, reason=reason))
        finally:
            self._leave_fire(token, tidy=False)  # type: ignore[attr-defined]
            connection = connections[self.database]
            if connection.connection is not None:
                self._job_connections.add(connection)
            self._inflight.pop((job.id, fire.run_time), None)

    def _enqueue_with_retries(self, job: Job, task: Any, fire: Fire, kwargs: dict[str, Any]) -> int:
        """Enqueue, trying again on errors that another attempt may cure; return the tries."""
        attempts = conf.TASK_ENQUEUE_ATTEMPTS
        pause = FIRST_RETRY_PAUSE
        for attempt in range(1, attempts + 1):
            try:
                outcome = taskfires.enqueue_fire(
                    self.database,
                    execution_id=fire.execution_id,
                    job_id=job.id,
                    task=task,
                    args=job.args,
                    kwargs=kwargs,
                    ended=fire.ended,
                    between=_ENQUEUED_POINT,
                )
            except InvalidJob:
                raise  # the configuration: another attempt cannot help
            except Exception as exc:
                close_connection(self.database)
                if attempt == attempts or _invalid(exc):
                    exc._metronome_attempts = attempt  # type: ignore[attr-defined]  # the reason says
                    raise
                logger.warning(
                    'Job "%s": enqueueing its task failed (attempt %d of %d): %s; trying again.',
                    job.id,
                    attempt,
                    attempts,
                    exc,
                )
                time.sleep(pause)
                pause *= 2
            else:
                logger.info(
                    'Job "%s": fire at %s enqueued on %r (queue %r) as task %s.',
                    job.id,
                    fire.run_time,
                    outcome.backend,
                    outcome.queue,
                    outcome.result_id,
                )
                return attempt
        return attempts  # not reached: the last attempt returned or raised


def _invalid(exc: BaseException) -> bool:
    """Whether the framework refused the task itself (not worth another attempt)."""
    tasks = taskfires.framework()
    return tasks is not None and isinstance(exc, tasks.InvalidTask | tasks.InvalidBackend)


#: The fault point between the enqueue and its ledger write (in the same transaction
#: with django-tasks-db on the ledger's database).
_ENQUEUED_POINT = functools.partial(faults.point, "enqueued")

#: For the dispatch: whether a job's target is a task, asked once per fire.
is_task: Callable[[Any], Any] = taskfires.as_task
