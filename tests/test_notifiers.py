"""The built-in notifiers (logging, mail_admins), their checks, and the fire signals."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import django
import pytest
from django.core import mail

from django_metronome.checks import check_settings
from django_metronome.loop import watch
from django_metronome.models import Incident, IncidentKind
from django_metronome.schedulers import BackgroundScheduler
from django_metronome.signals import fire_failed, fire_missed, incident_opened
from django_metronome.store.incidents import Changes
from tests.conftest import wait_for
from tests.testapp import jobs

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


#: Django 6.0 takes addresses; 5.2 wants (name, address) pairs, which 6.x deprecates.
ADMINS = ["ops@example.com"] if django.VERSION >= (6,) else [("Ops", "ops@example.com")]


@pytest.fixture(autouse=True)
def mailers(settings):
    """Django 6.1 wants MAILERS configured (a warning, an error here, without)."""
    if django.VERSION >= (6, 1):
        settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


def incident(**kwargs) -> Incident:
    fields = {"pk": 3, "job_id": "report", "kind": IncidentKind.OVERDUE, "opened_at": NOW}
    fields.update(kwargs)
    return Incident(detail="No successful run in the 60 s since the expectation was set.", **fields)


def test_mail_admins_once_per_opening_and_resolution(settings):
    settings.ADMINS = ADMINS
    settings.METRONOME = {"NOTIFIERS": ["mail_admins"]}
    changes = Changes(opened=[incident()], resolved=[incident(pk=2, resolved_at=NOW)])
    watch.send(changes)
    assert [m.subject for m in mail.outbox] == [
        "[Django] Incident opened: no recent success: job report",
        "[Django] Incident resolved: no recent success: job report",
    ]
    assert mail.outbox[0].to == ["ops@example.com"]
    assert "since the expectation was set" in mail.outbox[0].body


def test_logging_is_the_default_notifier(caplog):
    with caplog.at_level(logging.INFO, logger="django_metronome.alerts"):
        watch.send(Changes(opened=[incident()], resolved=[incident(resolved_at=NOW)]))
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert (
        levels[0][0] == "WARNING"
        and "Incident 3 opened (no recent success: job report)" in (levels[0][1])
    )
    assert levels[1] == ("INFO", "Incident 3 resolved (no recent success: job report).")
    assert not mail.outbox


def test_a_failing_notifier_or_receiver_does_not_stop_the_others(settings, caplog):
    settings.ADMINS = ADMINS
    settings.METRONOME = {"NOTIFIERS": ["webhook", "nope", "mail_admins"]}  # webhook without URL

    def broken(sender, incident, **kwargs):
        raise RuntimeError("receiver bug")

    incident_opened.connect(broken)
    try:
        watch.send(Changes(opened=[incident()]))
    finally:
        incident_opened.disconnect(broken)
    # (Django's own AdminEmailHandler mails the receiver's error too.)
    assert [m.subject for m in mail.outbox if "Incident" in m.subject] == [
        "[Django] Incident opened: no recent success: job report"
    ]
    assert "['WEBHOOK_URL'] is not set" in caplog.text
    assert "Unknown notifier 'nope'" in caplog.text
    assert "receiver bug" in caplog.text


def test_the_announcer_sends_from_its_own_thread():
    threads: list[str] = []

    def record(sender, incident, **kwargs):
        time.sleep(0.05)
        threads.append(threading.current_thread().name)

    incident_opened.connect(record)
    try:
        announcer = watch.Announcer()
        started = time.monotonic()
        announcer.announce(Changes(opened=[incident(), incident(pk=4)]))
        assert time.monotonic() - started < 0.05  # the caller does not wait
        assert announcer.flush(10)
    finally:
        incident_opened.disconnect(record)
    assert threads == ["metronome-announcer"] * 2


@pytest.mark.parametrize(
    ("metronome", "words"),
    [
        ({"NOTIFIERS": "logging"}, "E016"),
        ({"NOTIFIERS": ["logging", "slack"]}, "E016"),
        ({"NOTIFIERS": ["webhook"]}, "E017"),
        ({"WEBHOOK_URL": "ftp://example.com/"}, "E017"),
        ({"WEBHOOK_RETRIES": -1}, "E017"),
        ({"WEBHOOK_TIMEOUT": 0}, "E005"),
        ({"WATCH_INTERVAL": "often"}, "E005"),
    ],
)
def test_bad_alert_settings_are_reported(settings, metronome, words):
    settings.METRONOME = metronome
    assert [e.id for e in check_settings()] == [f"django_metronome.{words}"]


def test_good_alert_settings_pass(settings):
    settings.METRONOME = {
        "NOTIFIERS": ["logging", "mail_admins", "webhook"],
        "WEBHOOK_URL": "https://alerts.example.com/metronome",
        "WEBHOOK_SECRET": "x",
        "WEBHOOK_RETRIES": 0,
        "WATCH_INTERVAL": 30,
    }
    assert check_settings() == []


# --- fire_failed and fire_missed, from a running scheduler -----------------------------


@pytest.mark.django_db(transaction=True)
def test_fire_failed_and_fire_missed_reach_their_receivers():
    """A real scheduler in this process: one failing job, one fire long past its grace."""
    failed: list[tuple[str, str, str]] = []
    missed: list[tuple[str, float]] = []

    def on_failed(sender, job_id, run_time, exception, traceback, **kwargs):
        failed.append((job_id, repr(exception), threading.current_thread().name))

    def on_missed(sender, job_id, run_time, lateness, **kwargs):
        missed.append((job_id, lateness))

    fire_failed.connect(on_failed)
    fire_missed.connect(on_missed)
    scheduler = BackgroundScheduler(timezone=UTC)
    try:
        now = datetime.now(UTC)
        scheduler.add_job(jobs.fail_loudly, "date", run_date=now + timedelta(seconds=0.2), id="f")
        scheduler.add_job(
            jobs.noop,
            "interval",
            hours=1,
            id="late",
            next_run_time=now - timedelta(hours=2),
            misfire_grace_time=1,
        )
        scheduler.start()
        wait_for(lambda: failed and missed)
    finally:
        fire_failed.disconnect(on_failed)
        fire_missed.disconnect(on_missed)
        scheduler.shutdown(wait=True, timeout=5)
    assert failed[0][:2] == ("f", "ValueError('this job always fails')")
    assert failed[0][2] != threading.current_thread().name
    assert missed[0][0] == "late" and missed[0][1] > 7000
