"""
A job as the store keeps it: versioned JSON in ``DjangoJob.state``, checked arguments.

No pickle anywhere. A job's state is a plain dict::

    {
        "version": 1,
        "trigger": {"type": "cron", "fields": {...}, "timezone": "Asia/Seoul", ...},
        "timezone": "Asia/Seoul",
        "executor": "default",
        "args": [...],
        "kwargs": {...},
        "misfire_grace_time": 1,
        "coalesce": true,
        "max_instances": 1,
        "overlap": "buffer_one"
    }

``misfire_policy`` and ``overlap`` are written only when given: a row
without them (every row written before they existed) loads unchanged.
The job's id, name, function reference and next run time live in their own
columns. The trigger, zones and datetimes are written by the time core's codecs
(:mod:`django_metronome.time.codecs`). What cannot be stored is refused here,
naming the argument (``kwargs['when']``), the function or the field at fault.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from inspect import isclass, ismethod
from typing import Any

from apscheduler.job import Job
from apscheduler.triggers.base import BaseTrigger
from apscheduler.util import obj_to_ref, ref_to_obj

from ..exceptions import (
    InvalidJob,
    JobStateError,
    UnreferenceableFunction,
    UnserializableArgument,
    UnserializableTrigger,
)
from ..time.codecs import JSONDict, decode_trigger, encode_trigger, encode_tz, trigger_timezone
from ..time.firing import MISFIRE_POLICIES
from ..time.overlap import ONE_AT_A_TIME, UNBOUNDED_INSTANCES, check_overlap, effective_overlap

#: Version of the job state written by this release. Older versions are read.
STATE_VERSION = 1


# --- arguments ---------------------------------------------------------------

_HINTS: dict[str, str] = {
    "datetime": "pass value.isoformat() and parse it inside the job",
    "date": "pass value.isoformat() and parse it inside the job",
    "time": "pass value.isoformat() and parse it inside the job",
    "timedelta": "pass value.total_seconds()",
    "Decimal": "pass str(value)",
    "UUID": "pass str(value)",
    "set": "pass sorted(value)",
    "frozenset": "pass sorted(value)",
    "bytes": "decode it to str, or pass base64.b64encode(value).decode()",
}


def _argument_hint(value: object) -> str:
    from django.db.models import Model  # deferred: this module is usable without Django set up

    if isinstance(value, Model):
        return "pass its primary key and fetch the object inside the job"
    return _HINTS.get(type(value).__name__, "")


def check_json_value(job_id: str, path: str, value: Any) -> Any:
    """
    Return ``value`` as JSON-ready data; raise UnserializableArgument naming ``path``.

    Tuples become lists (JSON has no tuple). Floats must be finite: NaN and
    infinity are not JSON and PostgreSQL refuses them.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnserializableArgument(job_id, path, value, "NaN and infinity are not JSON")
        return value
    if isinstance(value, list | tuple):
        return [check_json_value(job_id, f"{path}[{i}]", item) for i, item in enumerate(value)]
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise UnserializableArgument(
                    job_id,
                    f"the key {key!r} of {path}",
                    key,
                    "JSON object keys must be str",
                )
            result[key] = check_json_value(job_id, f"{path}[{key!r}]", item)
        return result
    raise UnserializableArgument(job_id, path, value, _argument_hint(value))


def check_json_arguments(
    job_id: str, args: Iterable[Any], kwargs: Mapping[str, Any]
) -> tuple[list[Any], JSONDict]:
    """Validate and convert a job's arguments; the error names the first bad one."""
    json_args = [check_json_value(job_id, f"args[{i}]", value) for i, value in enumerate(args)]
    json_kwargs = {
        key: check_json_value(job_id, f"kwargs[{key!r}]", value) for key, value in kwargs.items()
    }
    return json_args, json_kwargs


# --- jobs --------------------------------------------------------------------


class MetronomeJob(Job):
    """
    An APScheduler ``Job`` with a misfire policy.

    ``misfire_policy`` is ``"once"``, ``"all"``, ``"skip"`` or None (the
    ``METRONOME["MISFIRE_POLICY"]`` default). Everything else is APScheduler's.
    """

    __slots__ = ("misfire_policy", "overlap", "task_options")

    def _modify(self, **changes: Any) -> None:
        # Refused here, before any query, whichever way the job is built or changed
        # (add_job, scheduled_job, modify_job, reschedule_job).
        from ..conf import conf  # deferred: this module is usable without Django set up
        from ..time.validation import check_trigger

        for field in ("id", "name"):
            check_length(field, changes.get(field))
        if isinstance(changes.get("trigger"), BaseTrigger):
            check_trigger(changes["trigger"], conf.MIN_INTERVAL)
        if "overlap" in changes or "max_instances" in changes:
            self._modify_overlap(changes)
        task = None
        if "func" in changes or "task_options" in changes:
            task = self._task_target(changes)
        if "misfire_policy" in changes:
            policy = changes.pop("misfire_policy")
            if policy is not None and policy not in MISFIRE_POLICIES:
                raise ValueError(
                    f"misfire_policy must be one of {', '.join(map(repr, MISFIRE_POLICIES))} "
                    f"or None, not {policy!r}."
                )
            super()._modify(**changes)
            self.misfire_policy = policy
        else:
            super()._modify(**changes)
        if task is not None:
            self._set_task(task)

    def _task_target(self, changes: dict[str, Any]) -> Any:
        """
        A ``django.tasks`` Task given as ``func`` (or named by a reference): APScheduler
        checks the arguments against the task's function, the job keeps the Task.
        """
        from . import taskfires  # deferred: this module is usable without Django set up

        options = changes.pop("task_options", getattr(self, "task_options", None))
        job_id = str(changes.get("id") or getattr(self, "id", "(new job)"))
        self.task_options = taskfires.check_task_options(job_id, options)
        target = changes.get("func", getattr(self, "func", None))
        if isinstance(target, str) and taskfires.framework() is not None:
            try:
                target = ref_to_obj(target)
            except (LookupError, ValueError):
                pass  # APScheduler says what is wrong with the reference
        task = taskfires.as_task(target)
        if task is not None and "func" in changes:
            changes["func"] = task.func
        elif task is None and self.task_options is not None:
            raise InvalidJob(
                f"Job {job_id!r}: task_options is for a "
                "django.tasks Task target (a function decorated with @task); this job's "
                "target is not one. Remove task_options, or schedule the task."
            )
        return task

    def _set_task(self, task: Any) -> None:
        from . import taskfires

        # Checked by the task's backend now: an unknown backend or queue is refused here.
        taskfires.configured_task(task, self.task_options, self.id)
        job: Any = self  # APScheduler's attributes (not this class's slots)
        job.func = task
        job.func_ref = taskfires.task_reference(task)

    def _modify_overlap(self, changes: dict[str, Any]) -> None:
        """Check ``overlap`` against ``max_instances``; fill in the max_instances it implies."""
        current = getattr(self, "overlap", None)
        if "overlap" not in changes:
            if current is not None and "max_instances" in changes:
                check_overlap(current, changes["max_instances"])
            return
        policy = changes.pop("overlap")
        check_overlap(policy, changes.get("max_instances"))
        if policy is not None and "max_instances" not in changes:
            # One at a time, or no bound: what the policy means, not the scheduler's default.
            one = policy in ONE_AT_A_TIME
            changes["max_instances"] = 1 if one else UNBOUNDED_INSTANCES
        self.overlap = policy


def callable_name(func: Any) -> str:
    """A ``module:qualname`` description of any callable or Task, for display only."""
    # A Task (it has the function it wraps, and enqueue) is named after its function.
    wraps = isinstance(func, functools.partial) or callable(getattr(func, "enqueue", None))
    target = func.func if wraps else func
    module = getattr(target, "__module__", None) or type(target).__module__
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}:{qualname}"


def func_reference(job: Job) -> str:
    """The ``module:qualname`` reference of a job's function, or a clear error."""
    func = job.func
    if job.func_ref:
        ref: str = job.func_ref
    else:
        try:
            ref = obj_to_ref(func)
        except ValueError as exc:
            raise UnreferenceableFunction(job.id, func, str(exc).lower()) from None
    if ismethod(func) and not isclass(func.__self__):
        raise UnreferenceableFunction(
            job.id,
            func,
            f"it is a method bound to a {type(func.__self__).__name__} instance, and the "
            "instance cannot be stored as JSON; schedule a module-level function, a "
            "staticmethod or a classmethod that finds the instance",
        )
    return ref


def encode_job(job: Job, *, func_ref: str | None = None) -> tuple[str, JSONDict]:
    """
    Return ``(func_ref, state)`` for a job; raise a SerializationError naming the problem.

    Pass ``func_ref`` for a job declared in code: it runs from the declaring
    processes' registry, so its function needs no importable reference and
    ``func_ref`` only names it.
    """
    for field in ("id", "name"):
        check_length(field, getattr(job, field, None))  # the same message on every database
    if func_ref is None:
        func_ref = func_reference(job)
    args, kwargs = check_json_arguments(job.id, job.args, job.kwargs)
    try:
        trigger = encode_trigger(job.trigger)
    except UnserializableTrigger as exc:
        raise UnserializableTrigger(f"Job {job.id!r}: {exc}") from None
    tz = trigger_timezone(job.trigger)
    state = {
        "version": STATE_VERSION,
        "trigger": trigger,
        "timezone": encode_tz(tz) if tz is not None else None,
        "executor": job.executor,
        "args": args,
        "kwargs": kwargs,
        "misfire_grace_time": job.misfire_grace_time,
        "coalesce": job.coalesce,
        "max_instances": job.max_instances,
    }
    policy = getattr(job, "misfire_policy", None)
    if policy is not None:
        state["misfire_policy"] = policy
    overlap = getattr(job, "overlap", None)
    if overlap is not None:
        state["overlap"] = overlap
    task_options = getattr(job, "task_options", None)
    if task_options is not None:
        state["task_options"] = task_options
    return func_ref, state


def decode_job(
    *,
    job_id: str,
    name: str,
    func_ref: str,
    state: Mapping[str, Any],
    next_run_time: datetime | None,
    resolve_func: Callable[[str], Callable[..., Any]] = ref_to_obj,
) -> Job:
    """
    Rebuild an APScheduler ``Job`` (without scheduler or store) from its row.

    Raise JobStateError (or the resolver's LookupError) when the row cannot be
    loaded; the caller quarantines it.
    """
    version = state.get("version") if isinstance(state, Mapping) else None
    if not isinstance(version, int):
        raise JobStateError("The stored state is not a versioned django-metronome job state.")
    if version > STATE_VERSION:
        raise JobStateError(
            f"The stored state has version {version}, newer than this release understands "
            f"({STATE_VERSION}); upgrade django-metronome on this machine."
        )
    try:
        trigger = decode_trigger(state["trigger"])
        job = MetronomeJob.__new__(MetronomeJob)
        job._scheduler = None
        job._jobstore_alias = None
        job.id = job_id
        job.name = name
        job.func_ref = func_ref
        job.func = resolve_func(func_ref)
        job.trigger = trigger
        job.executor = state["executor"]
        job.args = tuple(state["args"])
        job.kwargs = dict(state["kwargs"])
        job.misfire_grace_time = state["misfire_grace_time"]
        job.coalesce = state["coalesce"]
        job.max_instances = state["max_instances"]
        job.misfire_policy = state.get("misfire_policy")
        job.overlap = state.get("overlap")
        job.task_options = state.get("task_options")
        if job.overlap is not None:
            effective_overlap(job.overlap, job.max_instances)  # an unknown name: quarantined
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise JobStateError(f"The stored state is malformed: {type(exc).__name__}: {exc}") from exc
    if next_run_time is not None:
        tz = trigger_timezone(trigger)
        next_run_time = next_run_time.astimezone(tz) if tz is not None else next_run_time
    job.next_run_time = next_run_time
    return job


# --- ids and names -----------------------------------------------------------------

#: Longest job id and name: the columns are ``varchar(255)`` on every database.
MAX_LENGTH = 255


def check_job_id(job_id: object) -> None:
    """Refuse an id that is given but empty (APScheduler would replace it by a random one)."""
    if job_id is None:
        return
    if not isinstance(job_id, str):
        raise InvalidJob(f"A job id must be a str, not {type(job_id).__name__} ({job_id!r}).")
    if not job_id.strip():
        raise InvalidJob(
            f"The job id {job_id!r} is empty or blank. Give a non-empty id, or leave id out: a job "
            "declared in code then gets a stable id from its function's name, a job added "
            "at run time a random one."
        )
    check_length("id", job_id)


def check_length(field: str, value: object) -> None:
    """Refuse a job id or name longer than its column, on every database alike."""
    if isinstance(value, str) and len(value) > MAX_LENGTH:
        raise InvalidJob(
            f"The job {field} is {len(value)} characters long, more than the {MAX_LENGTH} "
            f"a job {field} may have: {value[:40]!r}... Use a shorter {field}."
        )
