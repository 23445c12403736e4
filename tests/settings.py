"""
Settings for the test suite.

``METRONOME_TEST_DB`` picks the database: ``sqlite`` (default), ``postgres``
or ``mariadb``. The test command (``scripts/test``) starts the servers; these
settings only say where they are.
"""

import getpass
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_metronome",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DB_KIND = os.environ.get("METRONOME_TEST_DB", "sqlite")
# Several test runs (Python versions) may share one server: keep their databases apart.
RUN_TAG = os.environ.get("METRONOME_TEST_TAG", "")

if DB_KIND == "sqlite":
    db_dir = Path(os.environ.get("METRONOME_TEST_DB_DIR", BASE_DIR.parent / ".test-dbs"))
    db_dir.mkdir(exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(db_dir / f"metronome{RUN_TAG}.sqlite3"),
            # A file, not memory: the multi-process tests share it with subprocesses.
            "TEST": {"NAME": str(db_dir / f"test_metronome{RUN_TAG}.sqlite3")},
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
elif DB_KIND == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "metronome",
            "USER": os.environ.get("PGUSER", getpass.getuser()),
            "HOST": os.environ.get("PGHOST", ""),
            "PORT": os.environ.get("PGPORT", ""),
            "TEST": {"NAME": f"test_metronome{RUN_TAG}"},
        }
    }
elif DB_KIND == "mariadb":
    # mysqlclient, Django's supported driver for MySQL and MariaDB.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": "metronome",
            "USER": os.environ.get("MYSQL_USER", "metronome"),
            "PASSWORD": os.environ.get("MYSQL_PASSWORD", "metronome"),
            "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("MYSQL_PORT", "3306"),
            "OPTIONS": {
                # utf8mb4: job ids and names may hold any Unicode, emoji included
                # (MySQL's "utf8" is utf8mb3 and has no 4-byte characters).
                "charset": "utf8mb4",
                # READ COMMITTED: Django's recommendation for MySQL/MariaDB (and its
                # default when unset). The scheduler needs it: every statement sees
                # the latest committed rows, so reads repeated in one transaction
                # (the due jobs, a row after another process's claim committed) are
                # not answered from a stale snapshot; and the claim's SELECT ... FOR
                # UPDATE SKIP LOCKED locks only the rows it returns, without
                # REPEATABLE READ's gap locks on the due range, which would make
                # other processes' inserts and updates wait for the claim.
                "isolation_level": "read committed",
                # Strict mode: a value too long or out of range is an error, not
                # a silent truncation (Django's check mysql.W002 asks for it). The
                # other two modes are the server defaults since MariaDB 10.2.4.
                "init_command": (
                    "SET sql_mode='STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,"
                    "NO_ENGINE_SUBSTITUTION'"
                ),
            },
            "TEST": {
                "NAME": f"test_metronome{RUN_TAG}",
                "CHARSET": "utf8mb4",
                # Case- and accent-insensitive, like the servers' defaults: the
                # tests meet what users' databases do (tests/test_mariadb.py).
                "COLLATION": "utf8mb4_unicode_ci",
            },
        }
    }
else:
    raise RuntimeError(f"Unknown METRONOME_TEST_DB {DB_KIND!r}: use sqlite, postgres or mariadb.")

# Scheduler subprocesses started by the tests use the test database directly.
if os.environ.get("METRONOME_TEST_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["METRONOME_TEST_DB_NAME"]

STATIC_URL = "/static/"
# The tests use intervals down to 0.1 s, below the default floor of one second.
METRONOME = {"MIN_INTERVAL": 0.05}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_metronome": {"handlers": ["console"], "level": "WARNING"}},
}

# django.tasks (issue 14, tests/test_tasks*.py): Django's own framework on Django 6,
# the django-tasks backport on 5.2; the database backend on the test database.
from importlib.util import find_spec  # noqa: E402

TASKS_FRAMEWORK = "django.tasks" if find_spec("django.tasks") else "django_tasks"
INSTALLED_APPS += ["tests.tasksapp"]
# Installed with the test extra; without it the task tests skip (tests/test_tasks*.py).
if find_spec("django_tasks_db"):
    INSTALLED_APPS += [
        *(["django_tasks"] if TASKS_FRAMEWORK == "django_tasks" else []),
        "django_tasks_db",
    ]
    TASKS = {
        "default": {
            "BACKEND": "django_tasks_db.DatabaseBackend",
            "QUEUES": ["default", "reports"],
        },
        "immediate": {"BACKEND": f"{TASKS_FRAMEWORK}.backends.immediate.ImmediateBackend"},
        "brokerdown": {"BACKEND": "tests.tasksapp.backends.BrokerDownBackend"},
    }
# RQ through django-tasks-rq (tests/test_tasks_rq.py): scripts/test starts Debian's
# redis-server on METRONOME_TEST_REDIS_PORT; each run tag has a queue of its own.
if find_spec("django_tasks_db") and find_spec("django_tasks_rq"):
    RQ_QUEUE = f"metronome{RUN_TAG}"
    _redis = {
        "HOST": "127.0.0.1",
        "PORT": int(os.environ.get("METRONOME_TEST_REDIS_PORT", "6390")),
        "DB": 0,
    }
    # django-rq's get_connection() (django-tasks-rq's get_result) reads the "default" queue.
    RQ_QUEUES = {RQ_QUEUE: _redis, "default": _redis}
    INSTALLED_APPS += ["django_rq"]
    TASKS["rq"] = {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": [RQ_QUEUE]}
