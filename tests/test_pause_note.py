"""
Pause with a note: who paused a job, when and why, shown until it is resumed.

From the command line, the API and APScheduler's own pause_job; the admin's
form is tested with the admin (tests/test_audit_admin.py).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from django_metronome.api import add_job, pause_job, resume_job
from django_metronome.models import DjangoJob
from django_metronome.schedulers import BackgroundScheduler
from django_metronome.store.audit import os_user, process_actor

pytestmark = pytest.mark.django_db(transaction=True)


def metronome(*args: str) -> str:
    out = io.StringIO()
    call_command("metronome", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def job():
    add_job("tests.testapp.jobs:noop", "interval", hours=1, id="nightly", name="Nightly export")
    return DjangoJob.objects.get(pk="nightly")


def test_the_command_line_pauses_with_a_note_and_shows_who_and_why(job):
    before = datetime.now(UTC)
    metronome("pause", "nightly", "--note", "Supplier outage, ticket 4711")
    job.refresh_from_db()
    assert job.is_paused
    assert job.pause_note == "Supplier outage, ticket 4711"
    assert job.paused_by == os_user()
    assert before - timedelta(seconds=1) <= job.paused_at <= datetime.now(UTC)

    shown = metronome("show", "nightly")
    line = next(line for line in shown.splitlines() if line.startswith("Paused "))
    assert f"by {os_user()}" in line
    assert line.endswith("Supplier outage, ticket 4711")
    data = json.loads(metronome("show", "nightly", "--json"))
    assert (data["pause_note"], data["paused_by"]) == ("Supplier outage, ticket 4711", os_user())


def test_resuming_clears_the_note(job):
    metronome("pause", "nightly", "--note", "outage")
    metronome("resume", "nightly")
    job.refresh_from_db()
    assert not job.is_paused
    assert (job.pause_note, job.paused_by, job.paused_at) == (None, None, None)
    assert not any(line.startswith("Paused ") for line in metronome("show", "nightly").splitlines())


def test_the_api_pauses_with_a_note_and_who(job):
    paused = pause_job("nightly", note="Quarter end freeze", by="ops-bot")
    assert (paused.pause_note, paused.paused_by) == ("Quarter end freeze", "ops-bot")
    job.refresh_from_db()
    assert (job.pause_note, job.paused_by, job.next_run_time) == (
        "Quarter end freeze",
        "ops-bot",
        None,
    )
    assert resume_job("nightly", by="ops-bot") is not None
    job.refresh_from_db()
    assert job.pause_note is None


def test_the_api_without_who_names_this_process(job):
    pause_job("nightly")
    job.refresh_from_db()
    assert job.paused_by == process_actor()
    assert job.pause_note is None


def test_apscheduler_pause_job_records_when_and_which_process(settings):
    settings.METRONOME = {"POLL_INTERVAL": 0.05, "MIN_INTERVAL": 0.05, "SHUTDOWN_TIMEOUT": 2}
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start()
    try:
        scheduler.add_job("tests.testapp.jobs:noop", "interval", hours=1, id="coded")
        scheduler.pause_job("coded")
        row = DjangoJob.objects.get(pk="coded")
        assert row.paused_by == process_actor()
        assert row.paused_at is not None
        scheduler.resume_job("coded")
        row.refresh_from_db()
        assert (row.paused_at, row.paused_by) == (None, None)
    finally:
        scheduler.shutdown(wait=True)
