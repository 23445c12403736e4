"""
Executors for django-metronome's schedulers.

``ThreadPoolExecutor`` is APScheduler's thread pool without its per-process
``max_instances`` count: our schedulers count running instances in the run
ledger, across all processes, before they dispatch a fire, so a second count
in each process adds nothing but a lock that every submission and every
finished job must take. It is the default executor of our schedulers; any
APScheduler executor can still be configured instead. (Our schedulers hand the
fires of this executor, and of APScheduler's own ThreadPoolExecutor, straight
to its pool's threads; see ``MetronomeSchedulerMixin._submit_to_pool``.)
"""

from __future__ import annotations

from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor as _ThreadPoolExecutor
from apscheduler.job import Job

__all__ = ["ThreadPoolExecutor"]


class ThreadPoolExecutor(_ThreadPoolExecutor):
    """APScheduler's ThreadPoolExecutor, with ``max_instances`` left to the ledger."""

    def submit_job(self, job: Job, run_times: list[Any]) -> None:
        assert self._lock is not None, "This executor has not been started yet"
        self._do_submit_job(job, run_times)

    def _run_job_success(self, job_id: str, events: list[Any]) -> None:
        for event in events:
            self._scheduler._dispatch_event(event)

    def _run_job_error(self, job_id: str, exc: BaseException, traceback: Any = None) -> None:
        self._logger.error("Error running job %s", job_id, exc_info=(type(exc), exc, traceback))
