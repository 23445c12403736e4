"""
Declaring jobs: APScheduler's ``add_job`` and ``scheduled_job``, with the
registry of jobs declared in code and stable ids for them.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from apscheduler.events import (
    EVENT_JOB_ADDED,
    JobEvent,
)
from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.schedulers.base import STATE_RUNNING, STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import convert_to_datetime, get_callable_name, obj_to_ref, undefined
from tzlocal import get_localzone

from ..store import allowlist
from ..store.db import utcnow
from ..store.jobs import MetronomeJob, check_job_id, check_json_arguments
from ..store.jobstore import DjangoJobStore
from ..store.taskfires import as_task, task_reference
from ..time.codecs import encode_trigger
from ..time.triggers import CrontabTrigger, next_fire_time
from ..time.wrappers import wrap_trigger
from ..time.zones import as_zoneinfo
from .parts import SchedulerParts

logger = logging.getLogger("django_metronome.scheduler")


@dataclass
class JobSpec:
    """
    What ``add_job`` is given, in APScheduler's order: the one list of its parameters.

    The scheduler's ``add_job`` and ``scheduled_job`` and ``django_metronome.add_job``
    all come down to one of these; :meth:`of` reads them as APScheduler's
    ``add_job(func, trigger=None, args=None, ..., **trigger_args)`` does.
    """

    func: Callable[..., Any] | str
    trigger: Any = None
    args: Any = None
    kwargs: Any = None
    id: str | None = None
    name: str | None = None
    misfire_grace_time: Any = undefined
    coalesce: Any = undefined
    max_instances: Any = undefined
    next_run_time: Any = undefined
    jobstore: str = "default"
    executor: str = "default"
    replace_existing: bool = False
    #: What to do with fires later than their grace time: "once", "all" or "skip".
    misfire_policy: str | None = None
    #: What a fire does while the previous one runs (:mod:`..time.overlap`).
    overlap: str | None = None
    #: A django.tasks target's overrides: backend, queue_name, priority, fire_kwargs.
    task_options: dict[str, Any] | None = None
    #: Everything else: the trigger's own arguments (``hour=8``, ``seconds=30``).
    trigger_args: dict[str, Any] = dataclass_field(default_factory=dict)

    @classmethod
    def of(cls, func: Callable[..., Any] | str, *arguments: Any, **options: Any) -> JobSpec:
        """The spec of ``add_job(func, *arguments, **options)``."""
        names = [f.name for f in fields(cls)][1:-1]
        if len(arguments) > len(names):
            raise TypeError(f"add_job() takes at most {len(names) + 1} positional arguments")
        given = dict(zip(names, arguments, strict=False))
        for key in list(options):
            if key in names:
                if key in given:
                    raise TypeError(f"add_job() got multiple values for argument {key!r}")
                given[key] = options.pop(key)
        return cls(func, **given, trigger_args=options)


class DeclaringMixin(SchedulerParts):
    """Job declarations on top of an APScheduler scheduler."""

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
        overlap: str | None = None,
        task_options: dict[str, Any] | None = None,
        **trigger_args: Any,
    ) -> Job:
        """
        APScheduler's ``add_job``, refusing what cannot be stored right here.

        ``misfire_policy`` (``"once"``, ``"all"`` or ``"skip"``) says what to do
        with fires later than ``misfire_grace_time``; ``overlap`` (``"skip"``,
        ``"allow_all"``, ``"buffer_one"``, ``"buffer_all"`` or ``"cancel_other"``)
        what a fire does while the job's previous one runs; ``task_options`` (for a
        ``django.tasks`` Task target: ``backend``, ``queue_name``, ``priority``,
        ``fire_kwargs``) how its fires are enqueued; a crontab string is a
        trigger. Arguments that are not JSON, an unknown time zone and an
        unstorable trigger raise now, not when the job would run.
        """
        spec = JobSpec(
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
            jobstore,
            executor,
            replace_existing,
            misfire_policy,
            overlap,
            task_options,
            trigger_args,
        )
        declared = self._declaring or self.state == STATE_STOPPED or not _referenceable(func)  # type: ignore[attr-defined]
        job = self.build_job(spec, declared=declared)
        if declared:
            self._metronome_registry[job.id] = job.func
        with self._jobstores_lock:  # type: ignore[attr-defined]
            if self.state == STATE_STOPPED:  # type: ignore[attr-defined]
                self._pending_jobs.append((job, jobstore, replace_existing))  # type: ignore[attr-defined]
            else:
                self._real_add_job(job, jobstore, replace_existing)
        return job

    def build_job(self, spec: JobSpec, *, declared: bool) -> Job:
        """
        Build and check a job without adding it anywhere.

        A ``declared`` job without an id gets a stable one (its function's
        qualified name); a run-time job a random one, as in APScheduler.
        """
        func, id = spec.func, spec.id
        if not declared and isinstance(func, str):
            # Judged before APScheduler imports anything the reference names.
            allowlist.check_allowed("(new job)" if id is None else id, func)
        check_job_id(id)  # an empty id would silently become a random one
        job_id = id
        if job_id is None:
            job_id = self._stable_id(func) if declared else uuid4().hex
            self._auto_ids.add(job_id)
        trigger_args = dict(spec.trigger_args)
        wrapping = _schedule_options(spec.trigger, trigger_args, self.timezone)  # type: ignore[attr-defined]
        options = {
            "trigger": self._create_trigger(spec.trigger, trigger_args),
            "executor": spec.executor,
            "func": func,
            "args": tuple(spec.args) if spec.args is not None else (),
            "kwargs": dict(spec.kwargs) if spec.kwargs is not None else {},
            "id": job_id,
            "name": spec.name,
            "misfire_grace_time": spec.misfire_grace_time,
            "coalesce": spec.coalesce,
            "max_instances": spec.max_instances,
            "next_run_time": spec.next_run_time,
            "misfire_policy": spec.misfire_policy,
            "overlap": spec.overlap,
            "task_options": spec.task_options,
        }
        _adopt_project_zone(options["trigger"], self.timezone)  # type: ignore[attr-defined]
        options["trigger"] = wrap_trigger(options["trigger"], key=job_id, **wrapping)
        job = MetronomeJob(self, **{k: v for k, v in options.items() if v is not undefined})
        check_json_arguments(job.id, job.args, job.kwargs)
        encode_trigger(job.trigger)
        return job

    def store_job(
        self, job: Job, jobstore: str = "default", replace_existing: bool = False
    ) -> None:
        """Store a built job now (started or not): what ``add_job`` does once running."""
        self._real_add_job(job, jobstore, replace_existing)

    def declared_function(self, job_id: str) -> Callable[..., Any] | None:
        """The function this process declared in code for ``job_id`` (the store asks)."""
        return self._metronome_registry.get(job_id)

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
        wrapping = _schedule_options(trigger, trigger_args, self.timezone)  # type: ignore[attr-defined]
        new_trigger = wrap_trigger(
            self._create_trigger(trigger, trigger_args), key=job_id, **wrapping
        )
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


#: Triggers that take ``start_date``/``end_date`` themselves (APScheduler's own).
_WINDOWED_TRIGGERS = ("cron", "interval", "calendarinterval")


def _schedule_options(trigger: Any, trigger_args: dict[str, Any], zone: Any) -> dict[str, Any]:
    """
    Take the options that wrap a trigger out of ``trigger_args`` (see ``time/wrappers``).

    ``exclude``, ``on_excluded`` and ``max_runs`` always; ``start_date`` and
    ``end_date`` when the trigger does not take them itself (a crontab string,
    a date, and/or, a trigger object), so that every trigger honours them.
    Times without a zone are in the scheduler's.
    """
    options: dict[str, Any] = {
        name: trigger_args.pop(name)
        for name in ("exclude", "on_excluded", "max_runs")
        if name in trigger_args
    }
    if isinstance(trigger, str) and trigger in _WINDOWED_TRIGGERS:
        options["given_start"] = trigger_args.get("start_date") is not None
    else:
        for name in ("start_date", "end_date"):
            if name in trigger_args and trigger != "date":
                value = trigger_args.pop(name)
                options[name] = None if value is None else convert_to_datetime(value, zone, name)
    return options


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
    for _ in range(10):  # inside the wrappers (business days, limits, jitter), if any
        if isinstance(trigger, IntervalTrigger) or getattr(trigger, "trigger", None) is None:
            break
        trigger = trigger.trigger  # type: ignore[attr-defined]
    if not isinstance(trigger, IntervalTrigger) or trigger.start_date is None:
        return False
    built = trigger.start_date - trigger.interval
    return timedelta(0) <= utcnow() - built < timedelta(minutes=1)


def _referenceable(func: Any) -> bool:
    if isinstance(func, str) or as_task(func) is not None:
        return True
    try:
        obj_to_ref(func)
    except (ValueError, TypeError):
        return False
    return not (inspect.ismethod(func) and not inspect.isclass(func.__self__))


def _qualified_name(func: Any) -> str:
    task = as_task(func)
    if task is not None:
        return task_reference(task)
    target = func.func if isinstance(func, functools.partial) else func
    module = getattr(target, "__module__", None) or type(target).__module__
    return f"{module}:{get_callable_name(target)}"
