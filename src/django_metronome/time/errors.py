"""The time core's one error: an expression, a trigger argument or a time zone that is not valid."""

from __future__ import annotations

__all__ = ["CronError"]


class CronError(ValueError):
    """A crontab expression or its time zone is not valid; the message names the part."""
