"""
The process's default scheduler: ``from django_metronome import scheduler``.

One ``BackgroundScheduler`` per process, created on first use and configured
from ``settings.METRONOME``. Jobs declared on it in the ``jobs`` module of any
installed app (found by :func:`autodiscover`) are declared in code: every
process that imports them can run them, and the database makes sure each fire
runs once.
"""

from __future__ import annotations

import threading

from django.utils.module_loading import autodiscover_modules

from .loop.flavours import BackgroundScheduler

_lock = threading.Lock()
_scheduler: BackgroundScheduler | None = None


def get_scheduler() -> BackgroundScheduler:
    """The process's default scheduler, created on first use."""
    global _scheduler
    with _lock:
        if _scheduler is None:
            _scheduler = BackgroundScheduler()
        return _scheduler


def autodiscover() -> None:
    """Import the ``jobs`` module of every installed app, as the admin does with ``admin``."""
    autodiscover_modules("jobs")
