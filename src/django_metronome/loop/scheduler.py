"""
APScheduler's schedulers, coordinated through the database.

``BlockingScheduler``, ``BackgroundScheduler`` and ``AsyncIOScheduler`` are
APScheduler's classes with ``DjangoJobStore`` as the default store and our
processing loop: every process may run one, and each fire still runs once.
``add_job``, ``scheduled_job``, ``modify_job``, ``pause_job``, ``get_jobs``,
executors and listeners behave as APScheduler documents, with these
differences, each made on purpose:

* Jobs declared before ``start()`` (or with a function that has no importable
  reference, such as a nested function) are *declared in code*: they are kept
  in a per-process registry, a process runs only those it declared, and a
  declaration without an explicit id gets a stable id from the function's
  qualified name. At start an unchanged declaration keeps its stored next
  run time and paused state.
* Due fires are claimed in a database transaction that writes their ledger
  rows and advances the job (see :mod:`django_metronome.store.claims`), then
  dispatched to the executor; outcomes are written back in batches.
* ``max_instances`` counts running fires in the ledger, across processes.
* A fire later than its ``misfire_grace_time`` follows the job's
  ``misfire_policy`` (``"once"`` by default): APScheduler would drop it.
* Crontab strings are triggers: ``add_job(func, "0 8 * * *")``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_SCHEDULER_SHUTDOWN,
    SchedulerEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor as _APSThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from django import db
from django.db import connections

from ..conf import conf
from ..store import changes, nodes
from ..store.claims import Fire
from ..store.db import close_connection, database_alias, utcnow
from ..store.jobstore import DjangoJobStore
from ..time import validation
from ..time.clock import clock
from ..time.triggers import CrontabTrigger
from .cycle import CycleMixin
from .declare import DeclaringMixin
from .dispatch import DispatchMixin
from .executors import ThreadPoolExecutor
from .heart import Heart
from .outcomes import LedgerWriter
from .run import RunMixin
from .tasks import TaskFiresMixin

logger = logging.getLogger("django_metronome.scheduler")


class MetronomeSchedulerMixin(DeclaringMixin, CycleMixin, DispatchMixin, TaskFiresMixin, RunMixin):
    """Our processing loop and job declarations, on top of an APScheduler scheduler."""

    #: Schedulers of this family record their own runs; register_events adds nothing.
    records_its_runs = True

    def __init__(self, gconfig: dict[str, Any] | None = None, **options: Any) -> None:
        self._metronome_registry: dict[str, Callable[..., Any]] = {}
        self._auto_ids: set[str] = set()
        self._inflight: dict[tuple[str, datetime], Fire] = {}
        #: Fires of coroutine jobs marked started before they go to the event loop.
        self._started_now: dict[int, bool] = {}
        self._timings: dict[int, tuple[datetime, datetime]] = {}
        #: Connections kept open by job threads (persistent connections), to close at stop.
        self._job_connections: set[Any] = set()
        self._writer: LedgerWriter | None = None
        self._heart: Heart | None = None
        self._listener: changes.Listener | None = None
        self.identity = nodes.new_identity()
        self._failures = 0
        self._declaring = False
        super().__init__(gconfig or {}, **options)  # type: ignore[call-arg]
        self.add_listener(self._on_job_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)  # type: ignore[attr-defined]

    # -- configuration -------------------------------------------------------------

    def _configure(self, config: dict[str, Any]) -> None:
        config.setdefault("timezone", conf.TIME_ZONE)
        super()._configure(config)  # type: ignore[misc]

    def _create_default_jobstore(self) -> DjangoJobStore:
        return DjangoJobStore()

    def _create_default_executor(self) -> Any:
        return ThreadPoolExecutor(conf.WORKERS)

    def _create_trigger(self, trigger: Any, trigger_args: dict[str, Any]) -> BaseTrigger:
        """
        APScheduler's trigger factory, plus crontab strings, refusing bad triggers at once.

        A wrong keyword argument is named with its value and close right names,
        as a crontab string's errors are; an interval below MIN_INTERVAL, one
        that does not move forward, and a start after the end are refused.
        """
        if isinstance(trigger, str) and (trigger.startswith("@") or " " in trigger.strip()):
            trigger_args = {"expression": trigger, **trigger_args}
            trigger = "crontab"
        known = {**self._trigger_plugins, **self._trigger_classes}  # type: ignore[attr-defined]
        return validation.create_trigger(
            self._build_trigger, trigger, dict(trigger_args), known, conf.MIN_INTERVAL
        )

    def _build_trigger(self, trigger: Any, trigger_args: dict[str, Any]) -> BaseTrigger:
        if trigger == "crontab":
            trigger_args.setdefault("timezone", self.timezone)  # type: ignore[attr-defined]
            return CrontabTrigger(**trigger_args)
        return super()._create_trigger(trigger, trigger_args)  # type: ignore[misc]

    def add_executor(self, executor: Any, alias: str = "default", **executor_opts: Any) -> None:
        """
        APScheduler's ``add_executor``; its own thread pool becomes ours, of the same size.

        APScheduler's ``ThreadPoolExecutor`` (an instance, or the ``"threadpool"``
        plugin of a configuration dict) queues fires behind its threads where the
        ledger cannot see them: one that dies with its process would be lost.
        Ours runs jobs in threads the same way (same events, same
        ``max_workers``) and marks each fire started only when a worker takes it.
        Subclasses and other executors are kept as given.
        """
        if executor == "threadpool":
            executor, executor_opts = ThreadPoolExecutor(**executor_opts), {}
        elif type(executor) is _APSThreadPoolExecutor:
            executor = ThreadPoolExecutor(executor._pool._max_workers)
        super().add_executor(executor, alias, **executor_opts)  # type: ignore[misc]

    def add_jobstore(self, jobstore: Any, alias: str = "default", **jobstore_opts: Any) -> None:
        """Add a job store; it must be a ``DjangoJobStore`` (the loop claims from the database)."""
        if isinstance(jobstore, str):
            raise TypeError(
                f"Give a DjangoJobStore instance, not the plugin name {jobstore!r}: "
                "django-metronome's schedulers only run jobs kept in the database."
            )
        if not isinstance(jobstore, DjangoJobStore):
            raise TypeError(
                f"{type(jobstore).__name__} cannot be used with django-metronome's schedulers, "
                "which coordinate processes through the database: use DjangoJobStore, or "
                "APScheduler's own scheduler classes for other stores."
            )
        super().add_jobstore(jobstore, alias, **jobstore_opts)  # type: ignore[misc]

    def get_jobs(self, jobstore: str | None = None, pending: bool | None = None) -> list[Job]:
        """APScheduler's get_jobs; stores on the same database list each job once."""
        jobs = super().get_jobs(jobstore, pending)  # type: ignore[misc]
        seen: set[str] = set()
        unique = []
        for job in jobs:
            if job.id not in seen:
                seen.add(job.id)
                unique.append(job)
        return unique

    @property
    def database(self) -> str:
        store = self._jobstores.get("default")  # type: ignore[attr-defined]
        if isinstance(store, DjangoJobStore):
            return store.database
        return database_alias()

    # -- starting and stopping ---------------------------------------------------------

    def _start_services(self) -> None:
        self._failures = 0
        self._start_watching()
        self._writer = LedgerWriter(self.database, self.identity, conf.BATCH_SIZE)
        self._writer.start()
        self._heart = Heart(self.database, self.identity, lambda: list(self._metronome_registry))
        self._heart.start()

    def _stop_services(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._inflight and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._writer is not None:
            self._writer.flush(max(0.0, deadline - time.monotonic()) + 5)
            self._writer.stop(5)
        if self._heart is not None:
            self._heart.stop(5)
        if self._listener is not None:
            self._listener.stop(5)
            self._listener = None
        self._close_job_connections()
        try:
            # The last write, after a database restart perhaps: it reconnects once, as
            # every other write does.
            interrupted, handed_back = self._final_write(
                nodes.stop, self.database, self.identity, utcnow()
            )
            # Counted by the stop itself: fires claimed and never started are not
            # "running" (they were counted so before, as interrupted, which they are not).
            if interrupted:
                logger.warning(
                    "Stopped with %d fire(s) still running; they are recorded as interrupted.",
                    interrupted,
                )
            if handed_back:
                logger.warning(
                    "Stopped with %d fire(s) claimed and not started; they are handed back "
                    "to the other processes.",
                    handed_back,
                )
        except Exception:
            logger.exception("Could not mark scheduler process %s stopped.", self.identity)
        finally:
            connections.close_all()
            # Without a scheduler, the process goes back to its own clock.
            clock.reset()

    def _start_watching(self) -> None:
        """Forget what the last run knew: the loop's first turn decides how to learn of changes."""
        self._stale, self._marker, self._next_due, self._rescan_at = True, None, None, 0.0
        self._watch, self._when_free = None, False

    def _final_write(self, write: Callable[..., Any], *args: Any) -> Any:
        try:
            return write(*args)
        except (db.OperationalError, db.InterfaceError) as exc:
            logger.warning("Database error at stop (%s); retrying once on a new connection.", exc)
            close_connection(self.database)
            return write(*args)

    def _close_job_connections(self) -> None:
        """
        Close what job threads keep open (with CONN_MAX_AGE > 0) once they are done.

        Their threads live on in the executor's pool, idle; their connections
        would stay open until the process exits.
        """
        while self._job_connections:
            wrapper = self._job_connections.pop()
            wrapper.inc_thread_sharing()
            try:
                wrapper.close()
            except Exception:  # noqa: S110  (a dead connection is closed enough)
                pass
            finally:
                wrapper.dec_thread_sharing()

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """
        Stop claiming, give running jobs up to ``timeout`` seconds, then stop.

        ``wait=False`` gives them none. Fires still running at the end are
        recorded as interrupted; fires claimed and not started yet are handed
        back to the other processes. (APScheduler's ``shutdown(wait=True)``
        waits without limit; a scheduler in a web worker must not.)
        """
        if self.state == STATE_STOPPED:  # type: ignore[has-type]
            raise SchedulerNotRunningError
        self.state = STATE_STOPPED
        self._stop_loop()
        grace = (conf.SHUTDOWN_TIMEOUT if timeout is None else timeout) if wait else 0.0
        with self._executors_lock, self._jobstores_lock:  # type: ignore[attr-defined]
            for executor in self._executors.values():  # type: ignore[attr-defined]
                self._stop_executor(executor)
            for store in self._jobstores.values():  # type: ignore[attr-defined]
                store.shutdown()
        self._stop_services(grace)
        self._logger.info("Scheduler has been shut down")  # type: ignore[attr-defined]
        self._dispatch_event(SchedulerEvent(EVENT_SCHEDULER_SHUTDOWN))  # type: ignore[attr-defined]

    def _stop_executor(self, executor: Any) -> None:
        """Stop an executor without waiting; forget the fires it never started."""
        if isinstance(executor, ThreadPoolExecutor):
            # Claimed, never started: handed back at the stop (nodes.stop), not waited for.
            for task in executor.stop(timeout=0):
                self._forget(task)
        else:
            executor.shutdown(wait=False)

    def _stop_loop(self) -> None:
        raise NotImplementedError
