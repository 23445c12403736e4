"""
The types of ``manage.py metronome``'s arguments: durations, date-times, counts.

Each turns the text of one argument into a value, or refuses it with an
``argparse.ArgumentTypeError`` that says what to write instead.
"""

from __future__ import annotations

import argparse
import math
import re
from datetime import UTC, datetime, timedelta, tzinfo

from ..time.preview import MAX_PREVIEW

#: Seconds in each unit a duration may be written in.
DURATION_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_PART = re.compile(r"(\d+)([wdhms])")


def duration(value: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w``, or a sum such as ``1d12h``."""
    text = value.strip().lower()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a duration: write a whole number and a unit "
            "(w, d, h, m or s), e.g. 30d, 12h, 90m or 3600s."
        )
    return timedelta(seconds=sum(int(number) * DURATION_UNITS[unit] for number, unit in parts))


def moment(value: str) -> datetime:
    """An ISO 8601 date and time; naive (no offset) when none was written."""
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 date and time: write e.g. 2026-12-01T09:00 "
            "or 2026-12-01T09:00+01:00."
        ) from None


def seconds(value: str) -> float:
    """A finite number of seconds, 0 or more."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds.") from None
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a finite number of seconds, 0 or more.")
    return number


def _whole_number(value: str, low: int, high: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < low or (high is not None and number > high):
        limits = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number {limits}.")
    return number


def positive(value: str) -> int:
    """A whole number, 1 or more."""
    return _whole_number(value, 1)


def preview_count(value: str) -> int:
    """How many fire times to preview: 0 to ``MAX_PREVIEW``."""
    return _whole_number(value, 0, MAX_PREVIEW)


def run_count(value: str) -> int:
    """How many recent runs to show: 0 or more."""
    return _whole_number(value, 0)


def aware(value: datetime, zone: tzinfo) -> datetime:
    """``value`` if it has an offset; else the same wall time read in ``zone``."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value
    # Through UTC and back: a wall time in a DST gap comes out as a real instant.
    return value.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
