"""A project whose AppConfig.ready() starts a scheduler (tests/readyapp), as the reference does."""

from tests.settings_procs import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.readyapp"]  # noqa: F405
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_metronome": {"handlers": ["console"], "level": "WARNING"},
        # Where a scheduler started in ready() starts, and why not: one INFO line.
        "django_metronome.autostart": {"level": "INFO"},
    },
}
