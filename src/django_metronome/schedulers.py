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
  rows and advances the job (see :mod:`django_metronome.claims`), then
  dispatched to the executor; outcomes are written back in batches.
* ``max_instances`` counts running fires in the ledger, across processes.
* A fire later than its ``misfire_grace_time`` follows the job's
  ``misfire_policy`` (``"once"`` by default): APScheduler would drop it.
* Crontab strings are triggers: ``add_job(func, "0 8 * * *")``.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import inspect
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from traceback import format_tb
from typing import Any
from uuid import uuid4

from apscheduler.events import (
    EVENT_JOB_ADDED,
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_REMOVED,
    EVENT_JOB_SUBMITTED,
    EVENT_SCHEDULER_SHUTDOWN,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
    SchedulerEvent,
)
from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.schedulers import SchedulerAlreadyRunningError, SchedulerNotRunningError
from apscheduler.schedulers.asyncio import AsyncIOScheduler as _AsyncIOScheduler
from apscheduler.schedulers.asyncio import run_in_event_loop
from apscheduler.schedulers.background import BackgroundScheduler as _BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING, STATE_STOPPED
from apscheduler.schedulers.blocking import BlockingScheduler as _BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import get_callable_name, obj_to_ref, undefined
from django import db
from django.apps import apps
from django.db import OperationalError, connections
from tzlocal import get_localzone

from . import allowlist, autostart, claims, faults, nodes, retention, validation
from .claims import ClaimBatch, Fire, Outcome
from .clock import clock
from .conf import conf
from .context import FireContext, _current
from .crontab import as_zoneinfo
from .executors import FireExecutor, ThreadPoolExecutor
from .firing import FirePlan, plan_fires
from .jobstores import DjangoJobStore, quarantine_refused
from .models import DjangoJob, ExecutionStatus, format_exception, format_traceback
from .pool import PoolTask
from .serialization import MetronomeJob, check_json_arguments, encode_trigger
from .triggers import CrontabTrigger, next_fire_time, seek_function
from .util import close_connection, utcnow

__all__ = ["AsyncIOScheduler", "BackgroundScheduler", "BlockingScheduler"]

logger = logging.getLogger("django_metronome.scheduler")

#: Longest pause between tries while the database fails, in seconds.
MAX_BACKOFF = 10.0


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


@dataclass(frozen=True)
class StartRequest:
    """Fires to mark started, and whom to tell which were."""

    ids: list[int]
    done: Callable[[Collection[int]], None]


class LedgerWriter:
    """
    Writes a process's fire starts and outcomes to the ledger, from its own thread.

    Job threads only put outcomes on a queue, and the pool only asks for
    groups of fires to be marked started: neither touches the ledger, so a
    slow or failing database never blocks a job, each round of writes covers
    whatever has accumulated (one statement for the starts, a handful for the
    outcomes), and nothing is dropped: a failed write is retried until it
    succeeds or the process ends. Starts go first: workers wait for them.
    """

    def __init__(self, using: str, node: str, batch_size: int = 500) -> None:
        self.using = using
        self.node = node
        self.batch_size = batch_size
        self._queue: queue.SimpleQueue[Outcome | StartRequest | None] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._run, name="metronome-ledger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, outcome: Outcome) -> None:
        with self._lock:  # the condition's own lock, without its wrapper: one per fire
            self._pending += 1
        self._queue.put(outcome)

    def request_start(self, ids: list[int], done: Callable[[Collection[int]], None]) -> None:
        """Mark these claimed fires started (soon, in a group), then call ``done(marked)``."""
        with self._lock:
            self._pending += 1
        self._queue.put(StartRequest(ids, done))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything put so far is written; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self, timeout: float | None = None) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        try:
            while not stopping:
                item = self._queue.get()
                outcomes: list[Outcome] = []
                starts: list[StartRequest] = []
                while True:
                    if item is None:
                        stopping = True
                    elif isinstance(item, StartRequest):
                        starts.append(item)
                    else:
                        outcomes.append(item)
                    if len(outcomes) >= self.batch_size:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if starts:
                    self._start(starts)
                if outcomes:
                    faults.point("outcomes")
                    self._retry(
                        functools.partial(claims.record_outcomes, self.using, outcomes), outcomes
                    )
                self._done(len(starts) + len(outcomes))
        finally:
            connections.close_all()

    def _start(self, requests: list[StartRequest]) -> None:
        ids = [pk for request in requests for pk in request.ids]
        marked: Collection[int] = ()
        if ids:
            marked = set(
                self._retry(lambda: claims.start_fires(self.using, self.node, ids, utcnow()), ids)
            )
        for request in requests:
            try:
                request.done(marked)
            except Exception:
                logger.exception("Error handing started fires to the workers.")

    def _retry(self, write: Callable[[], Any], items: list[Any]) -> Any:
        failures = 0
        while True:
            try:
                return write()
            except Exception:
                failures += 1
                # The first retry is at once, on a new connection: after a server restart
                # the old one is merely stale, and an outcome that waits holds its fire's
                # instance, so the job's next fire would be skipped.
                delay = 0.0 if failures == 1 else min(MAX_BACKOFF, 0.2 * 2**failures)
                logger.exception(
                    "Could not write %d ledger change(s); retrying in %.1f s.", len(items), delay
                )
                close_connection(self.using)
                time.sleep(delay)

    def _done(self, count: int) -> None:
        with self._idle:
            self._pending -= count
            self._idle.notify_all()


_offset_reported: list[float] = []


def sync_clock(using: str) -> float | None:
    """
    Measure the database's clock against this process's and schedule by it.

    Return the offset in seconds (None with ``CLOCK = "local"``). An offset
    beyond ``MAX_CLOCK_OFFSET`` is logged when it first appears (and again if
    it changes by more than the bound).
    """
    if conf.CLOCK == "local":
        clock.reset()
        return None
    offset = nodes.measure_offset(using)
    clock.set_offset(offset)
    bound = conf.MAX_CLOCK_OFFSET
    if abs(offset) > bound and (not _offset_reported or abs(offset - _offset_reported[-1]) > bound):
        _offset_reported.append(offset)
        logger.warning(
            "This process's clock is %.3f s %s the database's: it schedules by the "
            "database's clock, but fix the time synchronisation (NTP) of this machine.",
            abs(offset),
            "behind" if offset > 0 else "ahead of",
        )
    return offset


class Heart:
    """
    A scheduler process's housekeeping thread.

    Every ``HEARTBEAT_INTERVAL`` it refreshes this process's heartbeat,
    presumes silent processes dead (their running fires become interrupted),
    resumes jobs whose pause has ended, publishes the jobs this process
    declares and flags orphans; every ``PRUNE_INTERVAL`` it prunes the history.
    """

    def __init__(self, using: str, identity: str, declared: Callable[[], list[str]]) -> None:
        self.using = using
        self.identity = identity
        self.declared = declared
        self._published: list[str] | None = None
        self._pruned_at = 0.0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metronome-heart", daemon=True)
        self.registered = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stopped.set()
        self._thread.join(timeout)

    def beat(self) -> None:
        faults.point("heartbeat")
        offset = sync_clock(self.using)
        now = utcnow()
        dead_after = timedelta(seconds=conf.DEAD_AFTER)
        declared = sorted(self.declared())
        if not self.registered.is_set():
            nodes.register(self.using, self.identity, now, declared, clock_offset=offset)
            self.registered.set()
        else:
            nodes.heartbeat(self.using, self.identity, now, clock_offset=offset)
        if declared != self._published:
            nodes.publish_declarations(self.using, self.identity, declared)
            self._published = declared
        nodes.reap(self.using, now, dead_after)
        DjangoJob.objects.using(self.using).resume_due(now)
        nodes.mark_orphans(self.using, now, dead_after)
        if time.monotonic() - self._pruned_at >= conf.PRUNE_INTERVAL:
            self._pruned_at = time.monotonic()
            # Rows edited by hand to call what the allow-list refuses: flagged before
            # they fall due (they would be refused when loaded anyway).
            quarantine_refused(self.using)
            # Jobs whose schedule ended and whose last fire finished, left behind by a
            # crash between the two.
            claims.delete_ended_jobs(self.using)
            max_age = conf.HISTORY_MAX_AGE
            retention.prune(
                self.using,
                now,
                max_age=None if max_age is None else timedelta(seconds=max_age),
                max_per_job=conf.HISTORY_MAX_PER_JOB,
            )

    def _run(self) -> None:
        failures = 0
        try:
            while not self._stopped.is_set():
                try:
                    self.beat()
                    failures = 0
                    wait = conf.HEARTBEAT_INTERVAL
                except Exception as exc:
                    failures += 1
                    # The first retry at once, on a new connection (see the loop).
                    wait = 0 if failures == 1 else min(conf.HEARTBEAT_INTERVAL, 0.2 * 2**failures)
                    if isinstance(exc, OperationalError) and failures < 3:
                        # A busy SQLite or a restarting server: worth a line, not a trace.
                        logger.warning("Heartbeat failed (%s); retrying in %.1f s.", exc, wait)
                    else:
                        logger.exception("Heartbeat failed; retrying in %.1f s.", wait)
                    close_connection(self.using)
                self._stopped.wait(wait)
        finally:
            connections.close_all()


class MetronomeSchedulerMixin:
    """Our processing loop and job declarations, on top of an APScheduler scheduler."""

    #: Schedulers of this family record their own runs; register_events adds nothing.
    _metronome_records_itself = True

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
        return DjangoJobStore().database

    # -- declaring jobs ----------------------------------------------------------------

    def add_job(
        self,
        func: Callable[..., Any] | str,
        trigger: Any = None,
        args: Any = None,
        kwargs: Any = None,
        id: str | None = None,
        name: str | None = None,
        misfire_grace_time: Any = undefined,
        coalesce: Any = undefined,
        max_instances: Any = undefined,
        next_run_time: Any = undefined,
        jobstore: str = "default",
        executor: str = "default",
        replace_existing: bool = False,
        misfire_policy: str | None = None,
        **trigger_args: Any,
    ) -> Job:
        """
        APScheduler's ``add_job``, refusing what cannot be stored right here.

        ``misfire_policy`` (``"once"``, ``"all"`` or ``"skip"``) says what to do
        with fires later than ``misfire_grace_time``; a crontab string is a
        trigger. Arguments that are not JSON, an unknown time zone and an
        unstorable trigger raise now, not when the job would run.
        """
        declared = (
            self._declaring
            or self.state == STATE_STOPPED  # type: ignore[attr-defined]
            or not _referenceable(func)
        )
        job = self.build_job(
            func,
            trigger,
            args,
            kwargs,
            id,
            name,
            misfire_grace_time,
            coalesce,
            max_instances,
            next_run_time,
            executor,
            misfire_policy,
            declared=declared,
            **trigger_args,
        )
        if declared:
            self._metronome_registry[job.id] = job.func
        with self._jobstores_lock:  # type: ignore[attr-defined]
            if self.state == STATE_STOPPED:  # type: ignore[attr-defined]
                self._pending_jobs.append((job, jobstore, replace_existing))  # type: ignore[attr-defined]
            else:
                self._real_add_job(job, jobstore, replace_existing)
        return job

    def build_job(
        self,
        func: Callable[..., Any] | str,
        trigger: Any = None,
        args: Any = None,
        kwargs: Any = None,
        id: str | None = None,
        name: str | None = None,
        misfire_grace_time: Any = undefined,
        coalesce: Any = undefined,
        max_instances: Any = undefined,
        next_run_time: Any = undefined,
        executor: str = "default",
        misfire_policy: str | None = None,
        *,
        declared: bool,
        **trigger_args: Any,
    ) -> Job:
        """
        Build and check a job without adding it anywhere.

        A ``declared`` job without an id gets a stable one (its function's
        qualified name); a run-time job a random one, as in APScheduler.
        """
        if not declared and isinstance(func, str):
            # Judged before APScheduler imports anything the reference names.
            allowlist.check_allowed("(new job)" if id is None else id, func)
        validation.check_job_id(id)  # an empty id would silently become a random one
        job_id = id
        if job_id is None:
            job_id = self._stable_id(func) if declared else uuid4().hex
            self._auto_ids.add(job_id)
        options = {
            "trigger": self._create_trigger(trigger, dict(trigger_args)),
            "executor": executor,
            "func": func,
            "args": tuple(args) if args is not None else (),
            "kwargs": dict(kwargs) if kwargs is not None else {},
            "id": job_id,
            "name": name,
            "misfire_grace_time": misfire_grace_time,
            "coalesce": coalesce,
            "max_instances": max_instances,
            "next_run_time": next_run_time,
            "misfire_policy": misfire_policy,
        }
        _adopt_project_zone(options["trigger"], self.timezone)  # type: ignore[attr-defined]
        job = MetronomeJob(self, **{k: v for k, v in options.items() if v is not undefined})
        check_json_arguments(job.id, job.args, job.kwargs)
        encode_trigger(job.trigger)
        return job

    def scheduled_job(self, trigger: Any, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        """APScheduler's decorator: declares the function's job in code (replacing it)."""

        def declare(func: Callable[..., Any]) -> Callable[..., Any]:
            self._declaring = True
            try:
                self.add_job(func, trigger, *args, replace_existing=True, **kwargs)  # type: ignore[misc]
            finally:
                self._declaring = False
            return func

        return declare

    def _stable_id(self, func: Any) -> str:
        """``module:qualname`` of the function; ``#2``, ``#3`` for further jobs of it."""
        base = func if isinstance(func, str) else _qualified_name(func)
        taken = set(self._metronome_registry) | {
            job.id
            for job, _, _ in self._pending_jobs  # type: ignore[attr-defined]
        }
        candidate, number = base, 1
        while candidate in taken:
            number += 1
            candidate = f"{base}#{number}"
        return candidate

    def _real_add_job(self, job: Job, jobstore_alias: str, replace_existing: bool) -> None:
        replacements = {
            key: value
            for key, value in self._job_defaults.items()  # type: ignore[attr-defined]
            if not hasattr(job, key)
        }
        explicit_next_run_time = hasattr(job, "next_run_time")
        if not explicit_next_run_time:
            now = datetime.now(self.timezone)  # type: ignore[attr-defined]
            replacements["next_run_time"] = next_fire_time(job.trigger, None, now)
        job._modify(**replacements)

        store = self._lookup_jobstore(jobstore_alias)  # type: ignore[attr-defined]
        if isinstance(store, DjangoJobStore) and job.id in self._metronome_registry:
            outcome = store.declare_job(
                job,
                may_replace=replace_existing or job.id in self._auto_ids,
                keep_next_run_time=not explicit_next_run_time,
                floating_start=_floating_start(job.trigger),
            )
            logger.info("Declared job %r: %s.", job.id, outcome)
        else:
            try:
                store.add_job(job)
            except ConflictingIdError:
                if not replace_existing:
                    raise
                store.update_job(job)
        job._jobstore_alias = jobstore_alias
        self._dispatch_event(JobEvent(EVENT_JOB_ADDED, job.id, jobstore_alias))  # type: ignore[attr-defined]
        if self.state == STATE_RUNNING:  # type: ignore[attr-defined]
            self.wakeup()  # type: ignore[attr-defined]

    def remove_job(self, job_id: str, jobstore: str | None = None) -> None:
        super().remove_job(job_id, jobstore)  # type: ignore[misc]
        self._metronome_registry.pop(job_id, None)

    def reschedule_job(
        self, job_id: str, jobstore: str | None = None, trigger: Any = None, **trigger_args: Any
    ) -> Job:
        new_trigger = self._create_trigger(trigger, trigger_args)
        now = datetime.now(self.timezone)  # type: ignore[attr-defined]
        return self.modify_job(  # type: ignore[attr-defined,no-any-return]
            job_id,
            jobstore,
            trigger=new_trigger,
            next_run_time=next_fire_time(new_trigger, None, now),
        )

    def resume_job(self, job_id: str, jobstore: str | None = None) -> Job | None:
        with self._jobstores_lock:  # type: ignore[attr-defined]
            job, alias = self._lookup_job(job_id, jobstore)  # type: ignore[attr-defined]
            now = datetime.now(self.timezone)  # type: ignore[attr-defined]
            next_run_time = next_fire_time(job.trigger, None, now)
            if next_run_time:
                return self.modify_job(job_id, alias, next_run_time=next_run_time)  # type: ignore[attr-defined,no-any-return]
            self.remove_job(job.id, alias)
            return None

    # -- starting and stopping ---------------------------------------------------------

    def _start_services(self) -> None:
        self._failures = 0
        self._writer = LedgerWriter(self.database, self.identity, conf.BATCH_SIZE)
        self._writer.start()
        self._heart = Heart(self.database, self.identity, lambda: list(self._metronome_registry))
        self._heart.start()

    def _stop_services(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._inflight and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._inflight:
            logger.warning(
                "Stopping with %d fire(s) still running; they are recorded as interrupted.",
                len(self._inflight),
            )
        if self._writer is not None:
            self._writer.flush(max(0.0, deadline - time.monotonic()) + 5)
            self._writer.stop(5)
        if self._heart is not None:
            self._heart.stop(5)
        self._close_job_connections()
        try:
            # The last write, after a database restart perhaps: it reconnects once, as
            # every other write does.
            self._final_write(nodes.stop, self.database, self.identity, utcnow())
        except Exception:
            logger.exception("Could not mark scheduler process %s stopped.", self.identity)
        finally:
            connections.close_all()

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

    # -- the loop ------------------------------------------------------------------------

    def _process_jobs(self) -> float | None:
        """One turn of the loop: claim and dispatch what is due; return the seconds to wait."""
        if self.state != STATE_RUNNING:  # type: ignore[attr-defined]
            return None if self.state == STATE_PAUSED else 0  # type: ignore[attr-defined]
        try:
            wait = self._claim_and_dispatch()
        except Exception as exc:
            self._failures += 1
            close_connection(self.database)
            if self._failures == 1 and isinstance(exc, OperationalError):
                # Most often a connection the server dropped (a restart, an idle
                # timeout, a kill): try again at once, on a new one.
                logger.warning("Database error in the scheduler loop (%s); retrying now.", exc)
                return 0
            wait = min(MAX_BACKOFF, 0.1 * 2**self._failures)
            logger.exception(
                "Scheduler loop error (%d in a row); retrying in %.1f s.", self._failures, wait
            )
            return wait
        if self._failures:
            logger.warning("Scheduler loop recovered after %d error(s).", self._failures)
            self._failures = 0
        return wait

    def _capacity(self) -> int:
        """How many fires to claim now: what the default executor can start soon."""
        executor = self._executors.get("default")  # type: ignore[attr-defined]
        if isinstance(executor, FireExecutor):
            return min(conf.BATCH_SIZE, executor.capacity())
        return conf.BATCH_SIZE

    def _claim_and_dispatch(self) -> float:
        using, poll = self.database, conf.POLL_INTERVAL
        if conf.CLOCK != "local" and (not clock.measured or clock.jumped()):
            # Never claim by a clock that has not been checked against the database's.
            sync_clock(using)
        declared = list(self._metronome_registry)
        store = self._jobstores["default"]  # type: ignore[attr-defined]
        room = self._capacity()
        if room and claims.has_manual_fires(using):
            batch = claims.claim_manual_fires(
                using=using,
                node=self.identity,
                now=utcnow(),
                limit=room,
                declared=declared,
                load=store.load_rows,
            )
            self._dispatch(batch)
            room = self._capacity()
        next_due = claims.next_due_time(using=using, declared=declared)
        now = utcnow()
        while next_due is not None and next_due <= now and self.state == STATE_RUNNING:  # type: ignore[attr-defined]
            if room <= 0:
                # Busy: the pool wakes the loop when a worker comes free.
                return poll
            batch = claims.claim_due_fires(
                using=using,
                node=self.identity,
                now=now,
                limit=room,
                declared=declared,
                load=store.load_rows,
                plan=self._plan,
            )
            self._dispatch(batch)
            if not batch.full:
                if not batch.claimed and not batch.missed and not batch.skipped:
                    # Due, but locked by other processes claiming them right now.
                    return min(poll, 0.05)
                next_due = claims.next_due_time(using=using, declared=declared)
            now = utcnow()
            room = self._capacity()
        if next_due is None:
            return poll
        return max(0.0, min(poll, (next_due - utcnow()).total_seconds()))

    def _plan(self, job: Job, now: datetime) -> FirePlan:
        trigger = job.trigger
        grace = job.misfire_grace_time
        return plan_fires(
            lambda previous, at: next_fire_time(trigger, previous, at),
            job.next_run_time,
            now,
            policy=getattr(job, "misfire_policy", None) or conf.MISFIRE_POLICY,
            grace=None if grace is None else timedelta(seconds=grace),
            coalesce=job.coalesce,
            max_catch_up=conf.MAX_CATCH_UP,
            seek=seek_function(trigger),
        )

    def _dispatch(self, batch: ClaimBatch) -> None:
        self._prepare(batch)
        self._hand_over(batch)

    def _prepare(self, batch: ClaimBatch) -> None:
        """In the claiming thread, after the commit: log, and start coroutine fires."""
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
                if inspect.iscoroutinefunction(claimed.job.func)
                for fire in claimed.fires
            ]
        )

    def _start_now(self, fires: list[Fire]) -> None:
        if fires:
            marked = self.mark_started([fire.execution_id for fire in fires])
            self._started_now.update(dict.fromkeys(marked, True))

    def _hand_over(self, batch: ClaimBatch) -> None:
        """Give the claimed fires to their executors; dispatch the batch's events."""
        for claimed in batch.claimed:
            self._submit(claimed.job, claimed.fires)
        for job_id, run_time, _lateness in batch.missed:
            self._dispatch_event(JobExecutionEvent(EVENT_JOB_MISSED, job_id, "default", run_time))  # type: ignore[attr-defined]
        for job_id in batch.removed:
            self._dispatch_event(JobEvent(EVENT_JOB_REMOVED, job_id, "default"))  # type: ignore[attr-defined]

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
            return claims.start_fires(self.database, self.identity, ids, utcnow())
        except Exception:
            close_connection(self.database)
            raise

    def _submit(self, job: Job, fires: list[Fire]) -> None:
        run_times = [fire.run_time for fire in fires]
        for fire in fires:
            self._inflight[(job.id, fire.run_time)] = fire
        # The grace time was applied when the fires were planned; the executor
        # must not apply it again to a late fire that its policy runs.
        job.misfire_grace_time = None
        try:
            executor = self._lookup_executor(job.executor)  # type: ignore[attr-defined]
            if isinstance(executor, FireExecutor) and not inspect.iscoroutinefunction(job.func):
                self._submit_to_pool(executor, job, fires)
                return
            coroutine = inspect.iscoroutinefunction(job.func)
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
            logger.exception("Could not submit job %r to its executor.", job.id)
            self._settle(job.id, fires, ExecutionStatus.FAILED, exception=format_exception(exc))
        else:
            self._dispatch_event(  # type: ignore[attr-defined]
                JobSubmissionEvent(EVENT_JOB_SUBMITTED, job.id, "default", run_times)
            )

    # -- the direct path: our thread pool ---------------------------------------------

    def _submit_to_pool(self, executor: Any, job: Job, fires: list[Fire]) -> None:
        """
        Queue a job's claimed fires on our pool, which marks each started and runs it.

        APScheduler's executor path (a future, a done-callback, an event per
        run, the executor's lock and instance count) costs more per fire than
        claiming it from the database does. Our pool runs :meth:`_run_fire`
        instead: ``max_instances`` is counted in the ledger anyway, and events
        are still dispatched to the listeners the application added, when there
        are any.
        """
        notify = self._has_listeners()
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


def _adopt_project_zone(trigger: BaseTrigger, zone: Any) -> None:
    """
    Give a trigger built without a time zone the project's zone, not the machine's.

    APScheduler's triggers fall back to the machine's local zone (tzlocal):
    ``CronTrigger(hour=8)`` in a project whose ``TIME_ZONE`` is Asia/Seoul would
    fire at 08:00 UTC on most servers, while ``"cron", hour=8`` fires at 08:00
    in Seoul. A trigger whose zone is exactly tzlocal's object, with no dates
    given that were read in that zone, gets the scheduler's zone instead.
    """
    if isinstance(trigger, AndTrigger | OrTrigger):
        for child in trigger.triggers:
            _adopt_project_zone(child, zone)
        return
    if isinstance(trigger, CrontabTrigger):
        if not trigger.zone_given and zone is not None:
            trigger.timezone = as_zoneinfo(zone)
        return
    if not isinstance(trigger, CronTrigger | IntervalTrigger | CalendarIntervalTrigger):
        return
    local = get_localzone()
    if trigger.timezone is not local or zone is None or str(zone) == str(local):
        return
    if getattr(trigger, "end_date", None) is not None:
        return
    if isinstance(trigger, IntervalTrigger):
        if not _floating_start(trigger):
            return
        trigger.start_date = trigger.start_date.astimezone(zone)
    elif trigger.start_date is not None:
        return
    if isinstance(trigger, CalendarIntervalTrigger):
        trigger._time = trigger._time.replace(tzinfo=zone)
    trigger.timezone = zone


def _floating_start(trigger: BaseTrigger) -> bool:
    """
    An IntervalTrigger built without a start date starts "one interval from
    now"; recognise one built in the last minute, so that a redeploy keeps the
    stored schedule instead of re-anchoring it.
    """
    if not isinstance(trigger, IntervalTrigger) or trigger.start_date is None:
        return False
    built = trigger.start_date - trigger.interval
    return timedelta(0) <= utcnow() - built < timedelta(minutes=1)


def _referenceable(func: Any) -> bool:
    if isinstance(func, str):
        return True
    try:
        obj_to_ref(func)
    except (ValueError, TypeError):
        return False
    return not (inspect.ismethod(func) and not inspect.isclass(func.__self__))


def _qualified_name(func: Any) -> str:
    target = func.func if isinstance(func, functools.partial) else func
    module = getattr(target, "__module__", None) or type(target).__module__
    return f"{module}:{get_callable_name(target)}"


class BlockingScheduler(MetronomeSchedulerMixin, _BlockingScheduler):
    """Runs the loop in the calling thread: ``start()`` returns after ``shutdown()``."""

    def start(self, paused: bool = False, *, force: bool = False) -> None:
        """
        Run the loop in this thread until ``shutdown()``.

        Called while Django loads the apps, it follows the rules of
        :func:`django_metronome.autostart.decide_while_loading` (``force``
        overrides them). A scheduler already running raises
        ``SchedulerAlreadyRunningError`` before anything changes.
        """
        if self.state != STATE_STOPPED:
            raise SchedulerAlreadyRunningError
        if not apps.ready and not autostart.may_start_while_loading(self, force):
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
        :func:`django_metronome.autostart.decide_while_loading` say a
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
            if not autostart.may_start_while_loading(self, force):
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
            atexit.register(autostart.stop_at_exit, self)
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
        the rules of :func:`django_metronome.autostart.decide_while_loading`
        (``force`` overrides them). A scheduler already running raises
        ``SchedulerAlreadyRunningError`` before anything changes.
        """
        if self.state != STATE_STOPPED:
            raise SchedulerAlreadyRunningError
        if not apps.ready and not autostart.may_start_while_loading(self, force):
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
