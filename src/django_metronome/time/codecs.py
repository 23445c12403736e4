"""
Triggers, time zones and datetimes as JSON: the time core's half of a job's state.

Datetimes are ISO 8601 strings with their offset, followed by the zone name in
brackets when the zone has one (``2026-03-08T03:00:00-04:00[America/New_York]``),
so both the instant and the wall clock come back. Each trigger class has a
codec: a type name and a pair of functions. Only exact classes are encoded,
because a subclass may carry state its parent's codec would silently drop;
register a codec for your own triggers with :func:`register_trigger_codec`
(``CrontabTrigger`` registers its own, in :mod:`.triggers`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ..exceptions import JobStateError, UnserializableTrigger
from .errors import CronError
from .zones import format_offset, parse_offset, zone_named

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
        return format_offset(tz.utcoffset(None))
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
        return timezone(parse_offset(name))
    try:
        return zone_named(name)
    except CronError as exc:
        raise UnserializableTrigger(str(exc)) from None


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
