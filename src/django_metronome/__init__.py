"""django-metronome: APScheduler's API, with jobs and their run history in the Django database."""

__version__ = "0.1.0.dev0"
