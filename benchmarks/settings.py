"""
Django settings for one benchmark run (one system, one database, one process).

``benchmarks/throughput.py`` sets the environment before Django starts:

* ``METRONOME_BENCH_APP``: the app under test, ``django_metronome`` or
  ``django_apscheduler``; only that one is installed, so the other's tables and
  checks stay out of the measurement.
* ``METRONOME_BENCH_DB``: ``sqlite`` or ``postgres``.
* ``METRONOME_BENCH_SQLITE``: the SQLite file (a fresh one per run).
* ``METRONOME_BENCH_PG_NAME``: the PostgreSQL database (dropped and created per run);
  ``PGHOST``, ``PGPORT`` and ``PGUSER`` say where the server is, as for ``psql``.
* ``METRONOME_BENCH_CONN_MAX_AGE`` (optional, for experiments): Django's
  ``CONN_MAX_AGE`` for the run; unset means Django's default.

Everything else is Django's default on purpose: no SQLite journal or timeout
tuning, no connection pooling, ``DEBUG`` off. A benchmark of what a project gets
out of the box.
"""

import getpass
import os

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [os.environ.get("METRONOME_BENCH_APP", "django_metronome")]

_kind = os.environ.get("METRONOME_BENCH_DB", "sqlite")
if _kind == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("METRONOME_BENCH_SQLITE", "metronome_bench.sqlite3"),
        }
    }
elif _kind == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("METRONOME_BENCH_PG_NAME", "metronome_bench"),
            "USER": os.environ.get("PGUSER", getpass.getuser()),
            "HOST": os.environ.get("PGHOST", ""),
            "PORT": os.environ.get("PGPORT", ""),
        }
    }
else:
    raise RuntimeError(f"Unknown METRONOME_BENCH_DB {_kind!r}: use sqlite or postgres.")

# For experiments only (the published figures use Django's default, 0):
# METRONOME_BENCH_CONN_MAX_AGE=60, or "none" for connections kept for ever.
_max_age = os.environ.get("METRONOME_BENCH_CONN_MAX_AGE")
if _max_age:
    DATABASES["default"]["CONN_MAX_AGE"] = None if _max_age == "none" else int(_max_age)

# Warnings and errors (a dying scheduler thread, a lost ledger write) go to
# stderr, which throughput.py keeps in a log file per run.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
