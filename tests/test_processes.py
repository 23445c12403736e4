"""
One fire, one run, across real processes.

Each test starts real scheduler processes (``manage.py runscheduler``, or the
reference project's web process whose ``AppConfig.ready()`` starts a
scheduler) on the test database, and counts what the jobs themselves wrote
(``FireRecord`` rows), not only the ledger. Crashes are real ``kill -9``; the
database restart is a real server restart.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.date import DateTrigger
from django.db import InterfaceError, OperationalError, connection

from django_metronome.jobstores import DjangoJobStore
from django_metronome.models import (
    FINAL_STATUSES,
    DjangoJob,
    DjangoJobExecution,
    ExecutionStatus,
    SchedulerNode,
)
from django_metronome.store.db import close_connection
from tests.conftest import wait_for
from tests.proctools import duplicates
from tests.testapp.models import FireRecord

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FINAL = [status.value for status in FINAL_STATUSES]


def reconnecting(query):
    """Run a query, reconnecting once if the server dropped this connection."""
    try:
        return query()
    except (OperationalError, InterfaceError):
        close_connection()
        return query()


def live_nodes(count: int) -> list[SchedulerNode]:
    return wait_for(
        lambda: (
            nodes
            if len(nodes := list(SchedulerNode.objects.filter(stopped_at__isnull=True))) >= count
            else None
        ),
        timeout=60,
    )


def add_one_shots(count: int, when: datetime) -> None:
    store = DjangoJobStore()
    store.start(None, "default")
    from apscheduler.job import Job
    from apscheduler.schedulers.background import BackgroundScheduler

    owner = BackgroundScheduler(timezone=UTC)
    for i in range(count):
        store.add_job(
            Job(
                owner,
                id=f"one-shot-{i:04d}",
                func="tests.testapp.jobs:record_fire",
                trigger=DateTrigger(when),
                executor="default",
                args=(),
                kwargs={},
                name=f"one shot {i}",
                misfire_grace_time=60,
                coalesce=True,
                max_instances=1,
                next_run_time=when,
            )
        )


def consecutive(run_times: list[datetime], step: timedelta) -> bool:
    return all(b - a == step for a, b in itertools.pairwise(run_times))


def test_three_processes_run_every_fire_exactly_once(processes):
    for _ in range(3):
        processes.runscheduler("every-second")
    live_nodes(3)
    add_one_shots(500, datetime.now(UTC) + timedelta(seconds=1))

    wait_for(
        lambda: FireRecord.objects.filter(job_id__startswith="one-shot-").count() >= 500,
        timeout=120,
    )
    wait_for(lambda: FireRecord.objects.filter(job_id="every-second").count() >= 5, timeout=30)
    assert processes.stop() == [0, 0, 0]

    assert duplicates() == []
    one_shots = FireRecord.objects.filter(job_id__startswith="one-shot-")
    assert one_shots.values("job_id").distinct().count() == 500
    ledger = DjangoJobExecution.objects.filter(job__id__startswith="one-shot-")
    assert ledger.count() == 500
    assert set(ledger.values_list("status", flat=True)) == {ExecutionStatus.SUCCEEDED}

    every = DjangoJobExecution.objects.filter(job_id="every-second").order_by("run_time")
    ran = list(FireRecord.objects.filter(job_id="every-second").order_by("run_time"))
    succeeded = [r.run_time for r in every if r.status == ExecutionStatus.SUCCEEDED]
    assert [r.run_time for r in ran] == succeeded
    assert consecutive([r.run_time for r in every], timedelta(seconds=1))
    assert not every.exclude(status__in=FINAL).exists()


def test_the_reference_usage_in_three_web_processes_fires_once(processes):
    def web_processes(wall_time: str) -> None:
        for _ in range(3):
            processes.start(["-m", "tests.proc_reference", wall_time])

    status_job = "tests.refapp.operator:start.<locals>.check_campaign_status_job"
    funding_job = "tests.refapp.operator:start.<locals>.check_funding_success_job"

    # Three web workers start a few seconds before 08:00 in Seoul.
    web_processes("2026-11-26T07:59:57+09:00")
    wait_for(lambda: FireRecord.objects.filter(job_id=status_job).exists(), timeout=60)
    time.sleep(1)  # give a duplicate every chance to show up
    processes.stop()

    (fire,) = FireRecord.objects.filter(job_id=status_job)
    assert fire.run_time == datetime(2026, 11, 25, 23, 0, tzinfo=UTC)  # 08:00 in Seoul
    assert sorted(DjangoJob.objects.values_list("id", flat=True)) == [status_job, funding_job]

    # A redeploy: three new workers start before 08:10.
    web_processes("2026-11-26T08:09:57+09:00")
    wait_for(lambda: FireRecord.objects.filter(job_id=funding_job).exists(), timeout=60)
    time.sleep(1)
    processes.stop()

    assert FireRecord.objects.filter(job_id=funding_job).count() == 1
    assert FireRecord.objects.filter(job_id=status_job).count() == 1
    assert duplicates() == []
    tomorrow = DjangoJob.objects.get(pk=status_job).next_run_time
    assert tomorrow == datetime(2026, 11, 26, 23, 0, tzinfo=UTC)


def test_kill_9_mid_job_interrupts_that_fire_and_the_survivor_goes_on(processes):
    processes.runscheduler("every-second,slow")
    processes.runscheduler("every-second,slow")
    live_nodes(2)

    running = wait_for(
        lambda: DjangoJobExecution.objects.filter(job_id="slow", status="running").first(),
        timeout=30,
    )
    victim = SchedulerNode.objects.get(pk=running.node)
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = datetime.now(UTC)

    interrupted = wait_for(
        lambda: DjangoJobExecution.objects.filter(pk=running.pk, status="interrupted").first(),
        timeout=30,
    )
    assert "presumed dead" in interrupted.reason
    # The survivor takes the slow job over, and keeps the other job's cadence.
    survivor_run = wait_for(
        lambda: (
            DjangoJobExecution.objects.filter(job_id="slow", status="running")
            .exclude(node=victim.pk)
            .first()
        ),
        timeout=30,
    )
    assert survivor_run.run_time > running.run_time
    wait_for(
        lambda: (
            FireRecord.objects.filter(
                job_id="every-second", run_time__gt=killed_at + timedelta(seconds=2)
            ).count()
            >= 3
        ),
        timeout=30,
    )
    processes.stop()

    assert duplicates() == []
    slow = DjangoJobExecution.objects.filter(job_id="slow")
    # While the killed process held the slow job's only instance, its fires were skipped.
    assert slow.filter(status="skipped", reason__contains="max_instances").exists()
    assert not DjangoJobExecution.objects.filter(status="running").exists()


def test_a_job_that_raises_and_one_that_hangs_do_not_stop_the_others(processes):
    processes.runscheduler("every-second,slow,raises")
    processes.runscheduler("every-second,slow,raises")
    live_nodes(2)

    wait_for(
        lambda: DjangoJobExecution.objects.filter(job_id="raises", status="failed").count() >= 3,
        timeout=30,
    )
    wait_for(
        lambda: DjangoJobExecution.objects.filter(job_id="slow", status="skipped").count() >= 3,
        timeout=30,
    )
    wait_for(lambda: FireRecord.objects.filter(job_id="every-second").count() >= 4, timeout=30)
    processes.stop()

    failed = DjangoJobExecution.objects.filter(job_id="raises", status="failed").first()
    assert failed.exception == "ValueError: this job always fails"
    assert "fail_loudly" in failed.traceback
    # The hanging run was cut short by the shutdown and says so.
    hung = DjangoJobExecution.objects.filter(job_id="slow").exclude(status="skipped")
    assert {r.status for r in hung} == {ExecutionStatus.INTERRUPTED}
    assert duplicates() == []


def restart_database_server() -> None:
    if connection.vendor == "postgresql":
        version = subprocess.run(
            ["pg_lsclusters", "-h"], check=True, capture_output=True, text=True
        ).stdout.split()[0]
        subprocess.run(["pg_ctlcluster", version, "main", "restart"], check=True)
    else:
        subprocess.run(["service", "mariadb", "restart"], check=True, capture_output=True)


@pytest.mark.restarts_server
@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite has no server to restart")
def test_schedulers_survive_a_database_restart_without_duplicates(processes):
    processes.runscheduler("every-second")
    processes.runscheduler("every-second")
    live_nodes(2)
    wait_for(lambda: FireRecord.objects.filter(job_id="every-second").count() >= 3, timeout=30)

    restart_database_server()
    back_at = datetime.now(UTC)
    close_connection()

    wait_for(
        lambda: (
            reconnecting(
                lambda: FireRecord.objects.filter(
                    job_id="every-second", run_time__gt=back_at
                ).count()
            )
            >= 4
        ),
        timeout=60,
    )
    assert [p.poll() for p in processes.procs] == [None, None]  # nobody restarted them
    processes.stop()

    assert duplicates() == []
    every = list(DjangoJobExecution.objects.filter(job_id="every-second").order_by("run_time"))
    # Every fire is accounted for: no gap in the ledger, nothing left running.
    assert consecutive([r.run_time for r in every], timedelta(seconds=1))
    assert {r.status for r in every} <= {ExecutionStatus.SUCCEEDED, ExecutionStatus.MISSED}
    ran = FireRecord.objects.filter(job_id="every-second").count()
    assert ran == sum(r.status == ExecutionStatus.SUCCEEDED for r in every)
