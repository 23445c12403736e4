"""
A project with both django-apscheduler 0.7.0 and django-metronome installed: the
database ``import_django_apscheduler`` is tested on (tests/test_import.py runs it
in subprocesses, each on a database of its own).

``LEGACY_DB_KIND`` is ``sqlite`` (``LEGACY_DB`` is the file), ``postgres`` or
``mariadb`` (``LEGACY_DB`` is the database name, on the servers of tests/settings.py).
"""

import getpass
import os

SECRET_KEY = "tests-only-not-secret"
USE_TZ = True
TIME_ZONE = "Asia/Seoul"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_apscheduler",
    "django_metronome",
]
if os.environ.get("LEGACY_APP_REMOVED"):
    # The import reads the tables with plain SQL: the app need not be installed.
    INSTALLED_APPS.remove("django_apscheduler")

KIND = os.environ.get("LEGACY_DB_KIND", "sqlite")
NAME = os.environ["LEGACY_DB"]
if KIND == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": NAME,
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
elif KIND == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": NAME,
            "USER": os.environ.get("PGUSER", getpass.getuser()),
            "HOST": os.environ.get("PGHOST", ""),
            "PORT": os.environ.get("PGPORT", ""),
        }
    }
elif KIND == "mariadb":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": NAME,
            "USER": os.environ.get("MYSQL_USER", "metronome"),
            "PASSWORD": os.environ.get("MYSQL_PASSWORD", "metronome"),
            "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("MYSQL_PORT", "3306"),
            "OPTIONS": {"charset": "utf8mb4", "isolation_level": "read committed"},
        }
    }
else:
    raise RuntimeError(f"Unknown LEGACY_DB_KIND {KIND!r}: use sqlite, postgres or mariadb.")

# The module of a job that the test later makes unimportable.
METRONOME = {"ALLOWED_MODULES": ["legacy_jobs"]}
