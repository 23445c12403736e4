"""
Time zones: the one place a name becomes a zone, and a wrong name gets help.

Every layer asks here: the crontab evaluation (which needs IANA zones, to
know their DST rules), the JSON codecs, the admin and the command line.
"""

from __future__ import annotations

import functools
from datetime import UTC, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import CronError

__all__ = [
    "as_zoneinfo",
    "close_zone_names",
    "format_offset",
    "parse_offset",
    "unknown_zone_message",
    "zone_named",
    "zone_or_utc",
]


@functools.cache
def _zone_names() -> dict[str, str]:
    """Every IANA zone name this machine knows, by its lower-case form."""
    from zoneinfo import available_timezones

    return {name.lower(): name for name in available_timezones()}


def close_zone_names(name: str, n: int = 3) -> list[str]:
    """Known IANA zone names close to ``name`` (a typo, a wrong case), best first."""
    import difflib

    names = _zone_names()
    lowered = name.strip().lower()
    exact = names.get(lowered)
    if exact is not None and exact != name:
        return [exact]
    if "/" not in lowered:
        # "Seoul": a city without its area.
        by_city = sorted(key for key in names if key.rpartition("/")[2] == lowered)
        if by_city:
            return [names[key] for key in by_city[:n]]
    scored = sorted(
        ((difflib.SequenceMatcher(None, lowered, key).ratio(), key) for key in names),
        reverse=True,
    )
    best = scored[0][0] if scored else 0.0
    # Only the names about as close as the best one, and only if that one is close.
    return [names[key] for ratio, key in scored[:n] if ratio >= max(0.75, best - 0.05)]


def unknown_zone_message(name: object) -> str:
    """Why ``name`` is not a time zone, with the closest known names if there are any."""
    message = f"Unknown time zone {name!r}"
    close = close_zone_names(name) if isinstance(name, str) else []
    if close:
        return f"{message}; did you mean {' or '.join(map(repr, close))}?"
    return f"{message}; use an IANA name such as 'Europe/Berlin' or 'UTC'."


def as_zoneinfo(value: str | tzinfo | None, *, default: str = "UTC") -> ZoneInfo:
    """
    Return the IANA zone named by ``value`` (a name, a ZoneInfo, UTC, or None for ``default``).

    Raise CronError for an unknown name or a zone without an IANA name.
    """
    if value is None:
        value = default
    if isinstance(value, ZoneInfo):
        if value.key is None:
            raise CronError(
                f"The time zone {value!r} was loaded from a file and has no IANA name; "
                "use ZoneInfo('Area/City') instead."
            )
        return value
    if value is UTC:
        return ZoneInfo("UTC")
    if not isinstance(value, str):
        # pytz and dateutil zones carry their IANA name under one of these.
        name = getattr(value, "zone", None) or getattr(value, "key", None)
        if not isinstance(name, str):
            raise CronError(
                f"The time zone {value!r} has no IANA name; crontab schedules need one, "
                "such as 'Europe/Berlin' or 'UTC'."
            )
        value = name
    return zone_named(value)


def zone_or_utc(name: str | tzinfo | None) -> tzinfo:
    """
    The zone ``name`` names, or UTC when it names none this machine knows.

    For showing a stored job: a row written by a newer release (or a zone
    database that lost a name) must still be readable.
    """
    if isinstance(name, tzinfo):
        return name
    if name and name[:1] in "+-":
        try:
            return timezone(parse_offset(name))
        except ValueError:
            return UTC
    try:
        return zone_named(name or "UTC")
    except CronError:
        return UTC


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone of this name; CronError, with close names, for one this machine lacks."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(unknown_zone_message(name)) from None


def format_offset(offset: timedelta | None) -> str:
    """A fixed offset as text: ``+05:30``, ``-04:00``, ``+00:00:30``."""
    seconds = int((offset or timedelta(0)).total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    return f"{text}:{secs:02d}" if secs else text


def parse_offset(text: str) -> timedelta:
    """Inverse of :func:`format_offset`."""
    sign = -1 if text[0] == "-" else 1
    parts = [int(p) for p in text[1:].split(":")]
    parts += [0] * (3 - len(parts))
    return sign * timedelta(hours=parts[0], minutes=parts[1], seconds=parts[2])
