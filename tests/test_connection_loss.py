"""
Connections that go away under a running scheduler: killed by an operator, or
closed by the server when idle (MariaDB's wait_timeout). The loop goes on, and
no fire is lost or doubled.
"""

from __future__ import annotations

import itertools
from datetime import UTC, timedelta

import pytest
from django.db import connection

from django_metronome.executors import ThreadPoolExecutor
from django_metronome.models import DjangoJobExecution, ExecutionStatus
from django_metronome.schedulers import BackgroundScheduler
from tests.conftest import server_db_only, wait_for
from tests.proctools import duplicates
from tests.testapp import jobs
from tests.testapp.models import FireRecord

pytestmark = [pytest.mark.django_db(transaction=True), server_db_only(), pytest.mark.slow]


def other_sessions(idle_only: bool = False) -> list[int]:
    """
    The server's ids of every other connection to the test database; with
    ``idle_only``, of those not running a statement right now (a connection kept
    between jobs, which is what a killed pooled connection is).
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()" + (" AND state = 'idle'" if idle_only else "")
            )
        else:
            cursor.execute(
                "SELECT id FROM information_schema.processlist "
                "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
                + (" AND command = 'Sleep'" if idle_only else "")
            )
        return [row[0] for row in cursor.fetchall()]


def kill(session: int) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_terminate_backend(%s)", [session])
        else:
            cursor.execute(f"KILL {int(session)}")


def every_fire_accounted_for(job_id: str, step: timedelta) -> None:
    runs = list(DjangoJobExecution.objects.filter(job_id=job_id).order_by("run_time"))
    times = [run.run_time for run in runs]
    assert all(b - a == step for a, b in itertools.pairwise(times)), times
    assert {run.status for run in runs} <= {ExecutionStatus.SUCCEEDED, ExecutionStatus.MISSED}
    succeeded = {run.run_time for run in runs if run.status == ExecutionStatus.SUCCEEDED}
    assert set(FireRecord.objects.filter(job_id=job_id).values_list("run_time", flat=True)) == (
        succeeded
    )
    assert duplicates() == []


@pytest.fixture
def scheduler(settings):
    settings.METRONOME = {
        "POLL_INTERVAL": 0.1,
        "HEARTBEAT_INTERVAL": 0.3,
        "DEAD_AFTER": 3,
        "MIN_INTERVAL": 0.05,
    }
    made = BackgroundScheduler(timezone=UTC)
    yield made
    if made.running:
        made.shutdown(wait=True, timeout=5)


def test_killing_the_schedulers_connections_from_another_session(scheduler):
    scheduler.add_job(jobs.record_fire, "interval", seconds=0.5, id="tick")
    scheduler.start()
    wait_for(lambda: FireRecord.objects.count() >= 2)

    killed = other_sessions()
    assert killed, "the scheduler's threads hold connections of their own"
    for session in killed:
        kill(session)
    count = FireRecord.objects.count()

    wait_for(lambda: FireRecord.objects.count() >= count + 4, timeout=30)
    scheduler.shutdown(wait=True, timeout=5)
    every_fire_accounted_for("tick", timedelta(seconds=0.5))


@pytest.mark.skipif(connection.vendor != "mysql", reason="wait_timeout is MariaDB/MySQL's")
def test_an_idle_scheduler_outlives_wait_timeout(scheduler, settings, monkeypatch):
    # Every connection the scheduler's threads open is dropped by the server after
    # one idle second, and every thread stays idle longer than that.
    options = dict(connection.settings_dict["OPTIONS"])
    init = options.get("init_command", "")
    options["init_command"] = (init + ", " if init else "SET ") + "SESSION wait_timeout = 1"
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    settings.METRONOME = {"POLL_INTERVAL": 1.5, "HEARTBEAT_INTERVAL": 2, "DEAD_AFTER": 10}
    scheduler.add_job(jobs.record_fire, "interval", seconds=2.5, id="slow-tick")
    scheduler.start()
    wait_for(lambda: FireRecord.objects.count() >= 3, timeout=30)
    scheduler.shutdown(wait=True, timeout=5)
    every_fire_accounted_for("slow-tick", timedelta(seconds=2.5))


def test_a_job_gets_a_working_connection_after_its_old_one_was_killed(scheduler, monkeypatch):
    """Persistent connections with health checks: a job's thread never reuses a dead one."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    scheduler.configure(executors={"default": ThreadPoolExecutor(1)})  # one job thread
    scheduler.add_job(jobs.record_fire_plainly, "interval", seconds=0.5, id="plain")
    scheduler.start()
    wait_for(lambda: FireRecord.objects.count() >= 2)

    # The connections kept between jobs (killing one in the middle of a job's own
    # query would fail that job, rightly: not what this test is about).
    for session in other_sessions(idle_only=True):
        kill(session)
    count = FireRecord.objects.count()

    wait_for(lambda: FireRecord.objects.count() >= count + 3, timeout=30)
    scheduler.shutdown(wait=True, timeout=5)
    # The job thread's persistent connection is closed at the stop (its thread, and
    # the server's session, end a moment later).
    wait_for(lambda: other_sessions() == [], timeout=10)
    assert not DjangoJobExecution.objects.filter(job_id="plain", status="failed").exists()
    every_fire_accounted_for("plain", timedelta(seconds=0.5))


def test_with_default_settings_job_threads_keep_no_connection(scheduler):
    """CONN_MAX_AGE = 0 (Django's default): a job's connection is closed after it."""
    before = len(other_sessions())  # threads of earlier tests may still be closing theirs
    scheduler.add_job(jobs.record_fire_plainly, "interval", seconds=0.3, id="plain")
    scheduler.start()
    wait_for(lambda: FireRecord.objects.count() >= 3)
    sessions = len(other_sessions())
    scheduler.shutdown(wait=True, timeout=5)
    # The loop, the heart, the ledger writer and, on PostgreSQL, the listener hold one
    # each; the job threads none.
    assert sessions <= before + 3 + (connection.vendor == "postgresql")
