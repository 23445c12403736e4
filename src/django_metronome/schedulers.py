"""
APScheduler's schedulers, coordinated through the database.

The classes live in :mod:`django_metronome.loop`; this path, which
django-apscheduler users import from, keeps working::

    from django_metronome.schedulers import BackgroundScheduler
"""

from .loop.flavours import AsyncIOScheduler, BackgroundScheduler, BlockingScheduler
from .loop.scheduler import MetronomeSchedulerMixin

__all__ = [
    "AsyncIOScheduler",
    "BackgroundScheduler",
    "BlockingScheduler",
    "MetronomeSchedulerMixin",
]
