"""
django-metronome's checks for django-health-check, through django-health-check's own view.

``tests/urls.py`` mounts ``HealthCheckView`` at ``/health/`` with
``SchedulerAlive``, ``NothingOverdue(max_overdue=300)`` and
``NothingQuarantined``; each test reads its JSON (``?format=json``), and the
plain-text format once. The checks share ``metronome health``'s report, so the
last test holds the two to the same verdict.
"""

from __future__ import annotations

import io
import socket
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.core.management.base import CommandError

from django_metronome.models import DjangoJob, SchedulerNode
from django_metronome.observe.health_check import NothingOverdue, SchedulerAlive
from django_metronome.store.db import utcnow

URL = "/health/"


def node(identity: str = "web:1:aaa", heartbeat_age: float = 1.0, stopped: bool = False):
    now = utcnow()
    return SchedulerNode.objects.create(
        id=identity,
        hostname="web",
        pid=1,
        started_at=now - timedelta(hours=1),
        last_heartbeat=now - timedelta(seconds=heartbeat_age),
        stopped_at=now if stopped else None,
    )


def job(job_id: str, due_in: float | None) -> DjangoJob:
    return DjangoJob.objects.create(
        id=job_id,
        func_ref="tests.testapp.jobs:noop",
        next_run_time=None if due_in is None else utcnow() + timedelta(seconds=due_in),
    )


def health(client) -> tuple[int, dict[str, str]]:
    """The status code, and each check's result by the check's class name."""
    response = client.get(URL, {"format": "json"})
    results = {key.split("(", 1)[0]: text for key, text in response.json().items()}
    return response.status_code, results


def test_healthy(client, db):
    node()
    job("soon", due_in=30)
    job("paused", due_in=None)
    assert health(client) == (
        200,
        {"SchedulerAlive": "OK", "NothingOverdue": "OK", "NothingQuarantined": "OK"},
    )


def test_no_scheduler_process(client, db):
    node("web:2:old", heartbeat_age=3600, stopped=True)
    node("web:3:mute", heartbeat_age=95)
    status, results = health(client)
    assert status == 500
    assert results == {
        "SchedulerAlive": "Unavailable: No scheduler process has heart-beaten in the last 30 s: "
        "start one with `manage.py runscheduler`.",
        "NothingOverdue": "OK",
        "NothingQuarantined": "OK",
    }


def test_an_overdue_job(client, db):
    node()
    job("late", due_in=-600)
    job("a-little-late", due_in=-60)  # within the view's allowance of 300 s
    status, results = health(client)
    assert status == 500
    assert results["NothingOverdue"] == "Unavailable: 1 job is overdue by more than 5 min."
    assert results["SchedulerAlive"] == results["NothingQuarantined"] == "OK"
    job("later", due_in=-900)
    assert health(client)[1]["NothingOverdue"] == (
        "Unavailable: 2 jobs are overdue by more than 5 min."
    )


def test_a_quarantined_job(client, db):
    node()
    job("broken", due_in=-600)
    DjangoJob.objects.quarantine("broken", "its function is gone")
    status, results = health(client)
    assert status == 500
    assert results == {
        "SchedulerAlive": "OK",
        # Quarantined jobs are not overdue: nobody is meant to run them.
        "NothingOverdue": "OK",
        "NothingQuarantined": "Unavailable: 1 job is quarantined: it does not run until it is "
        "fixed.",
    }


def test_the_text_format_names_the_checks_and_their_settings(client, db):
    response = client.get(URL, {"format": "text"})
    assert response.status_code == 500
    lines = response.content.decode().splitlines()
    assert lines[0].startswith(
        "SchedulerAlive(database=None, max_heartbeat_age=None, this_host=False): Unavailable: "
    )
    assert lines[1:] == [
        "NothingOverdue(database=None, max_overdue=300): OK",
        "NothingQuarantined(database=None): OK",
    ]


@pytest.mark.parametrize(
    ("heartbeat_age", "due_in", "quarantined"),
    [(1, 30, False), (95, 30, False), (1, -600, False), (1, 30, True), (95, -600, True)],
)
def test_the_plugin_and_the_command_agree(client, db, heartbeat_age, due_in, quarantined):
    node(heartbeat_age=heartbeat_age)
    job("one", due_in=due_in)
    if quarantined:
        job("broken", due_in=30)
        DjangoJob.objects.quarantine("broken", "gone")
    _, results = health(client)
    try:
        call_command("metronome", "health", "--max-overdue", "300", stdout=io.StringIO())
    except CommandError:
        command_healthy = False
    else:
        command_healthy = True
    # The command is a liveness probe: a quarantined job does not fail it.
    plugin_healthy = results["SchedulerAlive"] == results["NothingOverdue"] == "OK"
    assert command_healthy is plugin_healthy
    assert (results["NothingQuarantined"] == "OK") is not quarantined


def run_check(check) -> str:
    """One check's result, as django-health-check's view gets it."""
    result = async_to_sync(check.get_result)()
    return "OK" if result.error is None else str(result.error)


def test_the_options_of_scheduler_alive(db):
    node("elsewhere:1:abc", heartbeat_age=20)
    SchedulerNode.objects.filter(pk="elsewhere:1:abc").update(hostname="elsewhere")
    assert run_check(SchedulerAlive()) == "OK"
    assert run_check(SchedulerAlive(max_heartbeat_age=10)) == (
        "Unavailable: No scheduler process has heart-beaten in the last 10 s: start one with "
        "`manage.py runscheduler`."
    )
    # Only the processes on this host count: there are none here.
    assert run_check(SchedulerAlive(this_host=True)).startswith("Unavailable: ")
    here = socket.gethostname()
    node(f"{here}:2:def")
    SchedulerNode.objects.filter(pk=f"{here}:2:def").update(hostname=here)
    assert run_check(SchedulerAlive(this_host=True)) == "OK"


def test_an_unknown_database_is_an_error_of_the_check(db):
    # django-health-check logs it and reports a generic error, never the details.
    assert run_check(NothingOverdue(database="nowhere")) == "Unknown Error: unknown error"
