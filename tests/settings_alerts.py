"""Scheduler subprocesses of the incident tests: a short watch, the webhook of the test."""

import os

from tests.settings_procs import *  # noqa: F403

METRONOME = {
    **METRONOME,  # noqa: F405
    "ALLOWED_MODULES": ["tests.alertjobs"],
    "WATCH_INTERVAL": 0.5,
    "EXPECT_SCHEDULER": False,
    "NOTIFIERS": ["logging", "webhook"],
    "WEBHOOK_URL": os.environ.get("METRONOME_ALERT_WEBHOOK"),
    "WEBHOOK_SECRET": "s3cret",
    "WEBHOOK_RETRIES": 2,
}
