"""
``DjangoJobStore`` and ``register_events``, where django-apscheduler users import them.

They live in :mod:`django_metronome.store.jobstore` and
:mod:`django_metronome.store.recorder`; this path keeps working::

    from django_metronome.jobstores import DjangoJobStore, register_events
"""

from .store.jobstore import DjangoJobStore
from .store.recorder import register_events

__all__ = ["DjangoJobStore", "register_events"]
