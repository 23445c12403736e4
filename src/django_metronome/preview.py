"""Moved to :mod:`django_metronome.time.preview`; this path keeps working."""

from .time.preview import *  # noqa: F403
from .time.preview import __all__  # noqa: F401
