"""
Settings of the example project: a campaigns app scheduled with django-metronome, on SQLite.

Two environment variables matter:

* ``SCHEDULER_DEFAULT=1`` makes ``campaigns.apps.CampaignsConfig.ready()`` start the
  scheduler of ``campaigns/operator.py`` in the process, as django-apscheduler users do
  in their web workers. It is off by default so that ``migrate`` and other commands do
  not start one: ``SCHEDULER_DEFAULT=1 python manage.py runserver``.
* ``EXAMPLE_DATABASE`` is the SQLite file (default: ``db.sqlite3`` beside manage.py).
* ``EXAMPLE_WORKERS=1`` is the worker mode (docs/tasks.md): each campaign's end is a
  ``django.tasks`` task (``campaigns/queued.py``), which the schedulers enqueue and
  django-tasks-db's worker runs (``python manage.py db_worker``).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only-not-secret"  # noqa: S105
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
ROOT_URLCONF = "mysite.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Times are stored in UTC and shown in Seoul; the campaign jobs run at 08:00 Seoul time.
USE_TZ = True
TIME_ZONE = "Asia/Seoul"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_metronome",
    "campaigns",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DATABASE") or BASE_DIR / "db.sqlite3",
        # Django 5.1+: writers take the write lock when their transaction begins and
        # wait up to 20 s for it, instead of failing with "database is locked" when
        # the scheduler, its job threads and a web request write at the same moment.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}

STATIC_URL = "/static/"

# The worker mode: campaign ends are enqueued into django-tasks-db (same database),
# and run by its worker. On Django 5.2 the framework is the django-tasks backport.
EXAMPLE_WORKERS = os.environ.get("EXAMPLE_WORKERS", "") in ("1", "true", "True")
if EXAMPLE_WORKERS:
    from importlib.util import find_spec

    INSTALLED_APPS += [
        *([] if find_spec("django.tasks") else ["django_tasks"]),
        "django_tasks_db",
    ]
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# Start the reference usage's scheduler in AppConfig.ready() (see campaigns/apps.py).
SCHEDULER_DEFAULT = os.environ.get("SCHEDULER_DEFAULT", "") in ("1", "true", "True")

# django-metronome's settings; every key is optional (see the README's reference).
METRONOME = {
    # Jobs without a zone of their own use this one (default: TIME_ZONE).
    "TIME_ZONE": "Asia/Seoul",
    # How often each scheduler looks at the database for due jobs and changes.
    "POLL_INTERVAL": 0.5,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "django_metronome": {"handlers": ["console"], "level": "WARNING"},
        "apscheduler": {"handlers": ["console"], "level": "WARNING"},
    },
}
