"""
A project on SQLite exactly as ``startproject`` writes it: no OPTIONS.

No timeout (Python's 5 s), no ``transaction_mode``, the default rollback
journal: what a new user's scheduler meets first. ``METRONOME_TEST_DB_NAME`` is
the file.
"""

import os

from tests.settings_procs import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["METRONOME_TEST_DB_NAME"],
    }
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_metronome": {"handlers": ["console"], "level": "INFO"}},
}
