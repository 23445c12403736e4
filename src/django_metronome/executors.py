"""Executors for django-metronome's schedulers. Live in :mod:`django_metronome.loop.executors`."""

from .loop.executors import FireExecutor, ThreadPoolExecutor

__all__ = ["FireExecutor", "ThreadPoolExecutor"]
