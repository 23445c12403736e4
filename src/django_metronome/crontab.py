"""Moved to :mod:`django_metronome.time.crontab` (and ``.describe``, ``.zones``)."""

from .time.crontab import *  # noqa: F403
from .time.crontab import __all__ as _moved
from .time.describe import describe
from .time.zones import as_zoneinfo, close_zone_names

__all__ = [*_moved, "as_zoneinfo", "close_zone_names", "describe"]
