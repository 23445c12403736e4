"""Moved to :mod:`django_metronome.time.triggers`; this path keeps working."""

from .time.triggers import *  # noqa: F403
from .time.triggers import __all__  # noqa: F401
