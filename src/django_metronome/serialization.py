"""
Versioned JSON for jobs and triggers: what ``DjangoJob.state`` holds.

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
        "max_instances": 1
    }

The job's id, name, function reference and next run time live in their own
columns. Datetimes are ISO 8601 strings with their offset, followed by the
zone name in brackets when the zone has one (``2026-03-08T03:00:00-04:00
[America/New_York]``), so both the instant and the wall clock come back.

Each trigger class has a codec: a type name and a pair of functions. Only
exact classes are encoded, because a subclass may carry state its parent's
codec would silently drop; register a codec for your own triggers with
:func:`register_trigger_codec`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from inspect import isclass, ismethod
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.job import Job
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import obj_to_ref, ref_to_obj

from .exceptions import (
    JobStateError,
    UnreferenceableFunction,
    UnserializableArgument,
    UnserializableTrigger,
)
from .firing import MISFIRE_POLICIES

#: Version of the job state written by this release. Older versions are read.
STATE_VERSION = 1

JSONDict = dict[str, Any]


# --- time zones and datetimes ----------------------------------------------


def encode_tz(tz: tzinfo | None) -> str | None:
    """
    Name a time zone: an IANA key, ``"UTC"``, or a fixed offset such as ``"+05:30"``.

    Raise UnserializableTrigger for a zone that has no portable name.
    """
    if tz is None:
        return None
    if tz is UTC:
        return "UTC"
    if isinstance(tz, ZoneInfo):
        if tz.key is None:
            raise UnserializableTrigger(
                f"The time zone {tz!r} was loaded from a file and has no IANA name; "
                "use ZoneInfo('Area/City') instead."
            )
        return tz.key
    if isinstance(tz, timezone):
        return _format_offset(tz.utcoffset(None))
    zone = getattr(tz, "zone", None) or getattr(tz, "key", None)  # pytz, dateutil
    if isinstance(zone, str):
        decode_tz(zone)  # refuse names zoneinfo does not know
        return zone
    raise UnserializableTrigger(
        f"The time zone {tz!r} has no IANA name; use ZoneInfo('Area/City') or a "
        "datetime.timezone fixed offset."
    )


def decode_tz(name: str | None) -> tzinfo | None:
    """Inverse of :func:`encode_tz`."""
    if name is None:
        return None
    if name == "UTC":
        return UTC
    if name[:1] in "+-":
        return timezone(_parse_offset(name))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnserializableTrigger(
            f"Unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin'."
        ) from exc


def _format_offset(offset: timedelta | None) -> str:
    seconds = int((offset or timedelta(0)).total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    return f"{text}:{secs:02d}" if secs else text


def _parse_offset(text: str) -> timedelta:
    sign = -1 if text[0] == "-" else 1
    parts = [int(p) for p in text[1:].split(":")]
    parts += [0] * (3 - len(parts))
    return sign * timedelta(hours=parts[0], minutes=parts[1], seconds=parts[2])


def encode_datetime(value: datetime | None) -> str | None:
    """``2026-03-08T03:00:00-04:00[America/New_York]``; fixed offsets carry no bracket."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise UnserializableTrigger(f"Cannot store the naive datetime {value!r}; give it a zone.")
    text = value.isoformat()
    if isinstance(value.tzinfo, timezone) and value.tzinfo is not UTC:
        return text
    return f"{text}[{encode_tz(value.tzinfo)}]"


def decode_datetime(text: str | None) -> datetime | None:
    """Inverse of :func:`encode_datetime`: the same instant, in the same zone."""
    if text is None:
        return None
    iso, _, zone = text.partition("[")
    value = datetime.fromisoformat(iso)
    if zone:
        value = value.astimezone(decode_tz(zone.rstrip("]")))
    return value


def _encode_timedelta(value: timedelta) -> JSONDict:
    return {"days": value.days, "seconds": value.seconds, "microseconds": value.microseconds}


def _decode_timedelta(data: Mapping[str, int]) -> timedelta:
    return timedelta(days=data["days"], seconds=data["seconds"], microseconds=data["microseconds"])


def _encode_date(value: date | datetime | None) -> str | None:
    if isinstance(value, datetime):
        return encode_datetime(value)
    return value.isoformat() if value is not None else None


def _decode_date(text: str | None) -> date | datetime | None:
    if text is None:
        return None
    if "T" in text:
        return decode_datetime(text)
    return date.fromisoformat(text)


# --- triggers ----------------------------------------------------------------


@dataclass(frozen=True)
class TriggerCodec:
    """How one trigger class becomes JSON and back."""

    name: str
    cls: type[BaseTrigger]
    encode: Callable[[Any], JSONDict]
    decode: Callable[[JSONDict], BaseTrigger]


_CODECS_BY_TYPE: dict[str, TriggerCodec] = {}
_CODECS_BY_CLASS: dict[type, TriggerCodec] = {}


def register_trigger_codec(
    type_name: str,
    cls: type[BaseTrigger],
    encode: Callable[[Any], JSONDict],
    decode: Callable[[JSONDict], BaseTrigger],
) -> None:
    """
    Teach the store to keep triggers of class ``cls``.

    ``encode`` returns a JSON-ready dict (without the ``"type"`` key, which is
    added); ``decode`` receives that dict back and returns an equal trigger.
    """
    codec = TriggerCodec(type_name, cls, encode, decode)
    _CODECS_BY_TYPE[type_name] = codec
    _CODECS_BY_CLASS[cls] = codec


def encode_trigger(trigger: BaseTrigger) -> JSONDict:
    """Return the JSON form of ``trigger``; raise UnserializableTrigger if it has none."""
    codec = _CODECS_BY_CLASS.get(type(trigger))
    if codec is None:
        known = ", ".join(sorted(c.cls.__name__ for c in _CODECS_BY_CLASS.values()))
        raise UnserializableTrigger(
            f"{type(trigger).__module__}.{type(trigger).__qualname__} cannot be stored as "
            f"JSON. Use one of {known}, or register a codec for it with "
            "django_metronome.serialization.register_trigger_codec()."
        )
    return {"type": codec.name, **codec.encode(trigger)}


def decode_trigger(data: Mapping[str, Any]) -> BaseTrigger:
    """Rebuild a trigger from :func:`encode_trigger`'s output."""
    data = dict(data)
    type_name = data.pop("type", None)
    codec = _CODECS_BY_TYPE.get(type_name)  # type: ignore[arg-type]
    if codec is None:
        raise JobStateError(f"Unknown trigger type {type_name!r} in stored job state.")
    return codec.decode(data)


def trigger_timezone(trigger: BaseTrigger) -> tzinfo | None:
    """The zone a trigger computes wall times in, if it has one."""
    tz = getattr(trigger, "timezone", None)
    if tz is None and isinstance(trigger, DateTrigger):
        tz = trigger.run_date.tzinfo
    return tz


def _restore(cls: Any, state: JSONDict) -> Any:
    trigger = cls.__new__(cls)
    trigger.__setstate__(state)
    return trigger


def _encode_date_trigger(trigger: DateTrigger) -> JSONDict:
    return {"run_date": encode_datetime(trigger.run_date)}


def _decode_date_trigger(data: JSONDict) -> DateTrigger:
    return _restore(DateTrigger, {"version": 1, "run_date": decode_datetime(data["run_date"])})


def _encode_interval_trigger(trigger: IntervalTrigger) -> JSONDict:
    return {
        "interval": _encode_timedelta(trigger.interval),
        "start_date": encode_datetime(trigger.start_date),
        "end_date": encode_datetime(trigger.end_date),
        "timezone": encode_tz(trigger.timezone),
        "jitter": trigger.jitter,
    }


def _decode_interval_trigger(data: JSONDict) -> IntervalTrigger:
    return _restore(
        IntervalTrigger,
        {
            "version": 2,
            "interval": _decode_timedelta(data["interval"]),
            "start_date": decode_datetime(data["start_date"]),
            "end_date": decode_datetime(data["end_date"]),
            "timezone": decode_tz(data["timezone"]),
            "jitter": data.get("jitter"),
        },
    )


def _encode_cron_trigger(trigger: CronTrigger) -> JSONDict:
    return {
        "fields": {field.name: str(field) for field in trigger.fields},
        "defaults": [field.name for field in trigger.fields if field.is_default],
        "start_date": encode_datetime(trigger.start_date),
        "end_date": encode_datetime(trigger.end_date),
        "timezone": encode_tz(trigger.timezone),
        "jitter": trigger.jitter,
    }


def _decode_cron_trigger(data: JSONDict) -> CronTrigger:
    defaults = set(data.get("defaults", ()))
    fields = [
        CronTrigger.FIELDS_MAP[name](name, data["fields"][name], name in defaults)
        for name in CronTrigger.FIELD_NAMES
    ]
    return _restore(
        CronTrigger,
        {
            "version": 2,
            "fields": fields,
            "start_date": decode_datetime(data["start_date"]),
            "end_date": decode_datetime(data["end_date"]),
            "timezone": decode_tz(data["timezone"]),
            "jitter": data.get("jitter"),
        },
    )


def _encode_calendar_trigger(trigger: CalendarIntervalTrigger) -> JSONDict:
    time_of_day = trigger._time  # APScheduler keeps it private; its state exposes it too.
    return {
        "years": trigger.years,
        "months": trigger.months,
        "weeks": trigger.weeks,
        "days": trigger.days,
        "time": [time_of_day.hour, time_of_day.minute, time_of_day.second],
        "start_date": _encode_date(trigger.start_date),
        "end_date": _encode_date(trigger.end_date),
        "timezone": encode_tz(trigger.timezone),
        "jitter": trigger.jitter,
    }


def _decode_calendar_trigger(data: JSONDict) -> CalendarIntervalTrigger:
    return _restore(
        CalendarIntervalTrigger,
        {
            "version": 1,
            "interval": [data["years"], data["months"], data["weeks"], data["days"]],
            "time": list(data["time"]),
            "start_date": _decode_date(data["start_date"]),
            "end_date": _decode_date(data["end_date"]),
            "timezone": decode_tz(data["timezone"]),
            "jitter": data.get("jitter"),
        },
    )


def _combining_codec(cls: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def encode(trigger: AndTrigger | OrTrigger) -> JSONDict:
        return {
            "triggers": [encode_trigger(child) for child in trigger.triggers],
            "jitter": trigger.jitter,
        }

    def decode(data: JSONDict) -> BaseTrigger:
        trigger = cls.__new__(cls)
        trigger.triggers = [decode_trigger(child) for child in data["triggers"]]
        trigger.jitter = data.get("jitter")
        return trigger

    return encode, decode


register_trigger_codec("date", DateTrigger, _encode_date_trigger, _decode_date_trigger)
register_trigger_codec(
    "interval", IntervalTrigger, _encode_interval_trigger, _decode_interval_trigger
)
register_trigger_codec("cron", CronTrigger, _encode_cron_trigger, _decode_cron_trigger)
register_trigger_codec(
    "calendarinterval",
    CalendarIntervalTrigger,
    _encode_calendar_trigger,
    _decode_calendar_trigger,
)
register_trigger_codec("and", AndTrigger, *_combining_codec(AndTrigger))
register_trigger_codec("or", OrTrigger, *_combining_codec(OrTrigger))


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

    __slots__ = ("misfire_policy",)

    def _modify(self, **changes: Any) -> None:
        # Refused here, before any query, whichever way the job is built or changed
        # (add_job, scheduled_job, modify_job, reschedule_job).
        from .conf import conf  # deferred: this module is usable without Django set up
        from .validation import check_length, check_trigger

        for field in ("id", "name"):
            check_length(field, changes.get(field))
        if isinstance(changes.get("trigger"), BaseTrigger):
            check_trigger(changes["trigger"], conf.MIN_INTERVAL)
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


def callable_name(func: Any) -> str:
    """A ``module:qualname`` description of any callable, for display only."""
    target = func.func if isinstance(func, functools.partial) else func
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
    from .validation import check_length

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
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise JobStateError(f"The stored state is malformed: {type(exc).__name__}: {exc}") from exc
    if next_run_time is not None:
        tz = trigger_timezone(trigger)
        next_run_time = next_run_time.astimezone(tz) if tz is not None else next_run_time
    job.next_run_time = next_run_time
    return job


# Our own triggers register their codecs when their module is imported; import
# it here so that a stored crontab job can be loaded by any process.
from . import triggers as _triggers  # noqa: E402, F401
