"""
The three schedulers: APScheduler's Blocking, Background and AsyncIO schedulers with our loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from apscheduler.events import (
    EVENT_SCHEDULER_SHUTDOWN,
    SchedulerEvent,
)
from apscheduler.job import Job
from apscheduler.schedulers import SchedulerAlreadyRunningError, SchedulerNotRunningError
from apscheduler.schedulers.asyncio import AsyncIOScheduler as _AsyncIOScheduler
from apscheduler.schedulers.asyncio import run_in_event_loop
from apscheduler.schedulers.background import BackgroundScheduler as _BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.schedulers.blocking import BlockingScheduler as _BlockingScheduler
from django.apps import apps
from django.db import connections

from ..conf import conf
from ..store.claims import ClaimBatch
from . import startrules
from .scheduler import MetronomeSchedulerMixin

logger = logging.getLogger("django_metronome.scheduler")


__all__ = ["AsyncIOScheduler", "BackgroundScheduler", "BlockingScheduler"]


class BlockingScheduler(MetronomeSchedulerMixin, _BlockingScheduler):
    """Runs the loop in the calling thread: ``start()`` returns after ``shutdown()``."""

    def start(self, paused: bool = False, *, force: bool = False) -> None:
        """
        Run the loop in this thread until ``shutdown()``.

        Called while Django loads the apps, it follows the rules of
        :func:`django_metronome.startrules.decide_while_loading` (``force``
        overrides them). A scheduler already running raises
        ``SchedulerAlreadyRunningError`` before anything changes.
        """
        if self.state != STATE_STOPPED:
            raise SchedulerAlreadyRunningError
        if not apps.ready and not startrules.may_start_while_loading(self, force):
            return
        self._start_services()
        try:
            super().start(paused)
        except BaseException:
            if self.state == STATE_STOPPED:
                self._stop_services(0)
            raise
        finally:
            connections.close_all()

    def _stop_loop(self) -> None:
        self._event.set()


class BackgroundScheduler(MetronomeSchedulerMixin, _BackgroundScheduler):
    """Runs the loop in a daemon thread: ``start()`` returns at once."""

    #: A start() made while the apps loaded waits for them in a thread.
    _start_pending = False

    def start(self, paused: bool = False, *, force: bool = False) -> None:
        """
        Start the loop in its thread and return.

        Called from ``AppConfig.ready()`` (the brief's reference usage), while
        Django loads the apps, it starts only where the rules of
        :func:`django_metronome.startrules.decide_while_loading` say a
        scheduler should run: in server processes and ``runscheduler``, not in
        ``migrate``, ``shell`` or the autoreloader's parent; one log line says
        why not, and ``force=True`` overrides. The start (which writes the
        declared jobs) then waits in a thread until the apps are loaded:
        Django discourages touching the database during app initialisation.
        Any error is then logged, and the scheduler stops when the process
        exits. A scheduler already running (or about to) raises
        ``SchedulerAlreadyRunningError`` before anything changes.
        """
        if self.state != STATE_STOPPED or self._start_pending:
            raise SchedulerAlreadyRunningError
        if not apps.ready:
            if not startrules.may_start_while_loading(self, force):
                return
            self._start_pending = True
            threading.Thread(
                target=self._start_when_apps_ready,
                args=(paused,),
                name="metronome-start",
                daemon=True,
            ).start()
            return
        self._start_services()
        try:
            super().start(paused)
        except BaseException:
            self._stop_services(0)
            raise
        if self._thread is not None:
            self._thread.name = "metronome-scheduler"

    def _start_when_apps_ready(self, paused: bool) -> None:
        while not apps.ready:
            time.sleep(0.01)
        try:
            self._start_pending = False
            self.start(paused)
            # A process that exits cleanly (runserver reloading after a code change, a
            # worker on SIGTERM) lets running jobs finish and marks its node stopped.
            atexit.register(startrules.stop_at_exit, self)
        except Exception:
            logger.exception("The scheduler started from AppConfig.ready() could not start.")
        finally:
            connections.close_all()

    def _main_loop(self) -> None:
        try:
            super()._main_loop()
        except BaseException:
            logger.critical("The scheduler loop stopped on an unexpected error.", exc_info=True)
            raise
        finally:
            connections.close_all()

    @property
    def running(self) -> bool:
        """True while the loop's thread is alive and the scheduler is not stopped."""
        thread = getattr(self, "_thread", None)
        return self.state != STATE_STOPPED and (thread is None or thread.is_alive())

    def _stop_loop(self) -> None:
        self._event.set()
        thread = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._thread = None


class AsyncIOScheduler(MetronomeSchedulerMixin, _AsyncIOScheduler):
    """
    Runs on an asyncio event loop; coroutine jobs run on that loop.

    Django's ORM may not run on an event loop, so all database work (the
    loop's claims, and API calls such as ``add_job`` or ``get_jobs`` made from
    a coroutine) runs in one helper thread; a call made on the loop waits for
    it, as APScheduler's own stores make the loop wait.
    """

    _busy = False

    def _create_default_executor(self) -> Any:
        # Coroutine jobs run on the event loop: APScheduler's AsyncIOExecutor.
        return _AsyncIOScheduler._create_default_executor(self)

    def __init__(self, gconfig: dict[str, Any] | None = None, **options: Any) -> None:
        self._db_thread = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="metronome-db"
        )
        super().__init__(gconfig, **options)

    def _on_db_thread(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return method(*args, **kwargs)
        return self._db_thread.submit(method, *args, **kwargs).result()

    def start(self, paused: bool = False, *, force: bool = False) -> None:
        """
        Start on the event loop; called while Django loads the apps, it follows
        the rules of :func:`django_metronome.startrules.decide_while_loading`
        (``force`` overrides them). A scheduler already running raises
        ``SchedulerAlreadyRunningError`` before anything changes.
        """
        if self.state != STATE_STOPPED:
            raise SchedulerAlreadyRunningError
        if not apps.ready and not startrules.may_start_while_loading(self, force):
            return
        if self._db_thread is None:
            self._db_thread = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="metronome-db"
            )
        self._start_services()
        try:
            super().start(paused)
        except BaseException:
            self._on_db_thread(self._stop_services, 0)
            raise

    def _real_add_job(self, job: Job, jobstore_alias: str, replace_existing: bool) -> None:
        self._on_db_thread(super()._real_add_job, job, jobstore_alias, replace_existing)

    def get_jobs(self, jobstore: str | None = None, pending: bool | None = None) -> list[Job]:
        return self._on_db_thread(super().get_jobs, jobstore, pending)  # type: ignore[no-any-return]

    def _lookup_job(self, job_id: str, jobstore_alias: str | None) -> Any:
        return self._on_db_thread(super()._lookup_job, job_id, jobstore_alias)

    def modify_job(self, job_id: str, jobstore: str | None = None, **changes: Any) -> Job:
        return self._on_db_thread(super().modify_job, job_id, jobstore, **changes)  # type: ignore[no-any-return]

    def remove_job(self, job_id: str, jobstore: str | None = None) -> None:
        self._on_db_thread(super().remove_job, job_id, jobstore)

    def remove_all_jobs(self, jobstore: str | None = None) -> None:
        self._on_db_thread(super().remove_all_jobs, jobstore)

    @run_in_event_loop
    def wakeup(self) -> None:
        self._stop_timer()
        if self._busy or self.state == STATE_STOPPED:
            return
        self._busy = True
        loop: Any = self._eventloop  # type: ignore[has-type]
        future = loop.run_in_executor(self._db_thread, self._process_jobs)
        future.add_done_callback(self._processed)

    def _processed(self, future: asyncio.Future[float | None]) -> None:
        self._busy = False
        if self.state == STATE_STOPPED or self._eventloop is None:  # type: ignore[has-type]
            return
        self._start_timer(future.result())

    def _dispatch(self, batch: ClaimBatch) -> None:
        # Claims run on the helper thread, which also marks coroutine fires started;
        # AsyncIOExecutor must be fed on the loop.
        self._prepare(batch)
        loop: Any = self._eventloop
        loop.call_soon_threadsafe(self._hand_over, batch)

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        if not self.running:
            raise SchedulerNotRunningError
        self._stop_timer()
        self.state = STATE_STOPPED
        with self._executors_lock:
            for executor in self._executors.values():
                executor.shutdown(wait=False)
        grace = (conf.SHUTDOWN_TIMEOUT if timeout is None else timeout) if wait else 0.0
        db_thread: Any = self._db_thread
        self._db_thread = None  # type: ignore[assignment]
        db_thread.submit(self._stop_services, grace)
        db_thread.shutdown(wait=False)
        self._logger.info("Scheduler has been shut down")
        self._dispatch_event(SchedulerEvent(EVENT_SCHEDULER_SHUTDOWN))
        self._eventloop = None

    def _stop_loop(self) -> None:
        """Nothing runs between turns: shutdown() stops the timer."""
