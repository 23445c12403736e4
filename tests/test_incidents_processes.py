"""Three real schedulers, a job that stops succeeding: one incident, one POST each way."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection

from django_metronome import add_job
from django_metronome.alerts import store_expectation
from django_metronome.models import Incident, IncidentKind, WatchTurn
from tests.conftest import wait_for
from tests.test_webhook import Receiver, verify

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="three schedulers racing for the watch: PostgreSQL only (unit tests cover the rest)",
    ),
]


def events(receiver: Receiver) -> list[str]:
    return [json.loads(body)["event"] for _, body in receiver.posts]


def test_one_incident_across_three_schedulers_and_its_resolution(processes, tmp_path, settings):
    settings.METRONOME = {"ALLOWED_MODULES": ["tests.alertjobs"]}
    receiver = Receiver()
    try:
        flag = tmp_path / "failing"
        flag.touch()
        add_job("tests.alertjobs:fail_while", "interval", seconds=1, args=[str(flag)], id="flaky")
        store_expectation("flaky", max_failures=1)
        for _ in range(3):
            processes.start(
                ["-m", "django", "runscheduler", "--settings=tests.settings_alerts"],
                METRONOME_ALERT_WEBHOOK=receiver.url,
                no_proxy="127.0.0.1",
                NO_PROXY="127.0.0.1",
            )
        wait_for(lambda: "incident.opened" in events(receiver), timeout=30)
        # Several more turns of the watch, by whichever process: still one incident, one POST.
        first = WatchTurn.objects.get().evaluated_at
        wait_for(
            lambda: WatchTurn.objects.get().evaluated_at >= first + timedelta(seconds=1.5),
            timeout=20,
        )
        assert events(receiver) == ["incident.opened"]
        incident = Incident.objects.get()
        assert (incident.job_id, incident.kind, incident.is_open) == (
            "flaky",
            IncidentKind.FAILING,
            True,
        )

        flag.unlink()  # the job succeeds again
        wait_for(lambda: "incident.resolved" in events(receiver), timeout=30)
        first = WatchTurn.objects.get().evaluated_at
        wait_for(
            lambda: WatchTurn.objects.get().evaluated_at >= first + timedelta(seconds=1.5),
            timeout=20,
        )
        assert events(receiver) == ["incident.opened", "incident.resolved"]
        assert all(verify(headers, body) for headers, body in receiver.posts)
        ids = {json.loads(body)["incident"]["id"] for _, body in receiver.posts}
        assert ids == {incident.pk}
        incident.refresh_from_db()
        assert incident.is_open is None and incident.resolved_at is not None
        assert Incident.objects.count() == 1
    finally:
        receiver.close()
