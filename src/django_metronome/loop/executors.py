"""
Executors for django-metronome's schedulers.

``ThreadPoolExecutor`` is the default executor of our schedulers: a pool of
worker threads (:class:`~django_metronome.pool.FirePool`) that runs claimed
fires in order, each marked *started* in the ledger just before a worker
calls it, and that tells the loop how many more fires to claim. It keeps
APScheduler's executor contract (``submit_job``, events) for code that uses it
directly, without APScheduler's per-process ``max_instances`` count: our
schedulers count running instances in the ledger, across all processes.

Any APScheduler executor can still be configured; the loop then marks each
fire started in the job's own thread before calling it (see
``MetronomeSchedulerMixin``), one statement per fire instead of per group.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Protocol, runtime_checkable

from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.job import Job
from django.db import connections

from .pool import FirePool, PoolTask

__all__ = ["FireExecutor", "ThreadPoolExecutor"]


@runtime_checkable
class FireExecutor(Protocol):
    """What the loop needs from an executor that runs claimed fires itself."""

    def capacity(self) -> int:
        """How many more fires to claim for it now."""

    def submit_fires(self, tasks: list[PoolTask]) -> None:
        """Run these claimed fires, each marked started just before it runs."""


class ThreadPoolExecutor(BaseExecutor):
    """Runs jobs in ``max_workers`` threads, starting claimed fires in groups."""

    def __init__(self, max_workers: int = 10, batch_limit: int = 500) -> None:
        super().__init__()
        self.max_workers = int(max_workers)
        self.batch_limit = batch_limit
        self._pool: FirePool | None = None

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self._pool = FirePool(
            self.max_workers,
            getattr(scheduler, "request_start", None),
            batch_limit=self.batch_limit,
            on_capacity=getattr(scheduler, "wakeup", None),
            # Each thread's database connections (the starter's, a job's) close with it.
            on_thread_exit=connections.close_all,
            name=f"metronome-{alias}",
        )
        self._pool.start()

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait)

    def stop(self, timeout: float | None) -> list[PoolTask]:
        """Stop taking fires; wait up to ``timeout`` for running ones; return the unstarted."""
        if self._pool is None:
            return []
        return self._pool.shutdown(wait=timeout is None or timeout > 0, timeout=timeout)

    # -- the loop's protocol --------------------------------------------------------

    def capacity(self) -> int:
        return 0 if self._pool is None else self._pool.capacity()

    def submit_fires(self, tasks: list[PoolTask]) -> None:
        assert self._pool is not None, "This executor has not been started yet"
        self._pool.submit(tasks)

    @property
    def active(self) -> int:
        """Fires started and not finished."""
        return 0 if self._pool is None else self._pool.active

    # -- APScheduler's contract ---------------------------------------------------

    def submit_job(self, job: Job, run_times: list[Any]) -> None:
        assert self._pool is not None, "This executor has not been started yet"
        self._do_submit_job(job, run_times)

    def _do_submit_job(self, job: Job, run_times: list[Any]) -> None:
        logger: logging.Logger = self._logger

        def run() -> None:
            try:
                events = run_job(job, job._jobstore_alias, run_times, logger.name)
            except BaseException:
                self._run_job_error(job.id, *sys.exc_info()[1:])
            else:
                self._run_job_success(job.id, events)

        self._pool.submit([PoolTask(None, run)])  # type: ignore[union-attr]

    def _run_job_success(self, job_id: str, events: list[Any]) -> None:
        for event in events:
            self._scheduler._dispatch_event(event)

    def _run_job_error(self, job_id: str, exc: BaseException, traceback: Any = None) -> None:
        self._logger.error("Error running job %s", job_id, exc_info=(type(exc), exc, traceback))
