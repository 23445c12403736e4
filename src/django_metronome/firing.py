"""Moved to :mod:`django_metronome.time.firing`; this path keeps working."""

from .time.firing import *  # noqa: F403
from .time.firing import __all__  # noqa: F401
