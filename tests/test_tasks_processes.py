"""
django.tasks jobs with real processes: scheduler processes that enqueue, real
django-tasks-db workers that run, and ``kill -9`` at the two instants of an
enqueue (docs/tasks.md, "When a scheduler dies mid-enqueue").

* ``enqueue``: the fire is marked running (committed), the task not enqueued.
* ``enqueued``: the task enqueued, the ledger not told yet; with django-tasks-db
  on the ledger's database this is inside the one transaction of both writes.

The promise: a fire killed there is *interrupted* (shown, never silently lost),
and never enqueued by anyone else; with django-tasks-db on the same database
no task exists for it. With a backend outside that transaction a task enqueued
just before the kill may run (the immediate backend shows it: it runs the task
inside the enqueue).
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("django_tasks_db", reason="the test extra installs django-tasks-db")
from django.db import connection

import django_metronome
from django_metronome.models import (
    DjangoJob,
    DjangoJobExecution,
    ExecutionStatus,
    SchedulerNode,
)
from tests.conftest import wait_for
from tests.tasksapp.models import TaskRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def db_results():
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects


def scheduler(processes, **env: str):
    return processes.start(
        ["-m", "django", "runscheduler", "--settings=tests.settings_procs"],
        METRONOME_PROC_WORKERS="4",
        **env,
    )


def worker(processes):
    """django-tasks-db's own worker process, polling every 50 ms."""
    return processes.start(
        [
            "-m",
            "django",
            "db_worker",
            "--settings=tests.settings_procs",
            "--interval=0.05",
            "--no-startup-delay",
            "--queue-name=*",
        ]
    )


def live(count: int) -> None:
    wait_for(
        lambda: SchedulerNode.objects.filter(stopped_at__isnull=True).count() >= count,
        timeout=60,
    )


#: Only the transaction of the task row and the ledger write depends on the database:
#: the other two windows are the same on each, and run in the SQLite run.
sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the same on every database: run in the SQLite run"
)


@pytest.mark.parametrize(
    ("point", "target", "ran"),
    [
        pytest.param("enqueue", "record", 0, marks=sqlite_only),
        # Inside the transaction of the task row and the ledger write: both roll back.
        ("enqueued", "record", 0),
        # A backend outside the ledger's transaction: the task was enqueued (and, this
        # backend being immediate, ran) before the kill; the ledger says interrupted.
        pytest.param("enqueued", "at_once", 1, marks=sqlite_only),
    ],
)
def test_a_scheduler_killed_mid_enqueue_leaves_the_fire_interrupted_and_enqueued_by_none(
    processes, point, target, ran
):
    victim = scheduler(processes, METRONOME_FAULTS=f"{point}=kill")
    live(1)
    django_metronome.add_job(
        f"tests.tasksapp.tasks:{target}",
        "date",
        run_date=datetime.now(UTC),
        id="victim-fire",
        misfire_grace_time=3600,
    )
    wait_for(lambda: victim.poll() is not None, timeout=60)
    assert victim.returncode == -signal.SIGKILL
    (row,) = DjangoJobExecution.objects.filter(job_id="victim-fire")
    assert (row.status, row.task_result_id) == (ExecutionStatus.RUNNING, None)

    # A survivor presumes the victim dead and marks what it had started.
    scheduler(processes)
    wait_for(
        lambda: DjangoJobExecution.objects.filter(
            job_id="victim-fire", status=ExecutionStatus.INTERRUPTED
        ).exists(),
        timeout=60,
    )
    assert DjangoJobExecution.objects.filter(job_id="victim-fire").count() == 1
    assert db_results().count() == 0
    assert TaskRun.objects.count() == ran


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the many-process run is PostgreSQL's (SQLite and MariaDB: the kill tests above)",
)
def test_schedulers_and_workers_run_every_fire_exactly_once(processes):
    # 60 in the suite (its time budget); METRONOME_TEST_TASK_FIRES=500 runs the
    # issue's full count on demand.
    fires = int(os.environ.get("METRONOME_TEST_TASK_FIRES", "60"))
    for _ in range(3):
        scheduler(processes)
    for _ in range(2):
        worker(processes)
    live(3)
    now = datetime.now(UTC)
    builder_ids = [f"shot-{number:03d}" for number in range(fires)]
    for job_id in builder_ids:
        django_metronome.add_job(
            "tests.tasksapp.tasks:record",
            "date",
            run_date=now,
            id=job_id,
            misfire_grace_time=3600,
            task_options={"fire_kwargs": True},
        )
    django_metronome.add_job(
        "tests.tasksapp.tasks:record",
        "interval",
        seconds=1,
        id="tick",
        task_options={"fire_kwargs": True},
    )
    ticks_from = datetime.now(UTC)
    # At least three fires of the interval job, and every fire finished.
    wait_for(lambda: DjangoJobExecution.objects.filter(job_id="tick").count() >= 3, timeout=60)
    DjangoJob.objects.filter(pk="tick").update(next_run_time=None)  # paused

    def finished() -> bool:
        return not DjangoJobExecution.objects.exclude(
            status__in=[ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED]
        ).exists()

    wait_for(finished, timeout=90)

    rows = list(DjangoJobExecution.objects.all())
    assert Counter(row.status for row in rows) == Counter({"succeeded": len(rows)})
    assert len([row for row in rows if row.job_id.startswith("shot-")]) == fires
    assert len(rows) >= fires + 2
    runs = Counter(TaskRun.objects.values_list("key", flat=True))
    assert [key for key, count in runs.items() if count > 1] == [], "a fire ran twice"
    expected = {f"{row.job_id}@{row.run_time.isoformat()}" for row in rows}
    assert set(runs) == expected
    assert db_results().count() == len(rows)
    assert {row.task_worker for row in rows} <= {
        worker_id for result in db_results().all() for worker_id in result.worker_ids
    }
    assert all(row.task_worker for row in rows)
    assert min(row.run_time for row in rows if row.job_id == "tick") >= ticks_from - timedelta(
        seconds=1
    )


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="one database is enough for the worker's kill (the scheduler's kills run on each)",
)
def test_a_worker_killed_mid_task_leaves_the_fire_running_on_it_and_no_scheduler_interrupts_it(
    processes, tmp_path
):
    from django_metronome.store import taskfires

    victim_scheduler = scheduler(processes)
    victim_worker = worker(processes)
    live(1)
    marker = tmp_path / "holding"
    django_metronome.add_job(
        "tests.tasksapp.tasks:hold",
        "date",
        run_date=datetime.now(UTC),
        id="held",
        args=[str(marker)],
    )
    wait_for(marker.exists, timeout=60)
    row = wait_for(
        lambda: DjangoJobExecution.objects.filter(
            job_id="held", status=ExecutionStatus.RUNNING, task_worker__isnull=False
        ).first(),
        timeout=30,
    )
    victim_worker.send_signal(signal.SIGKILL)
    victim_scheduler.send_signal(signal.SIGKILL)
    node = row.node
    # A survivor presumes the scheduler dead: it interrupts what that process ran
    # itself, not the fire that a task worker runs.
    scheduler(processes)
    wait_for(
        lambda: (
            SchedulerNode.objects.filter(pk=node, stopped_at__isnull=False).exists()
            or not SchedulerNode.objects.filter(pk=node).exists()
        ),
        timeout=60,
    )
    row.refresh_from_db()
    assert row.status == ExecutionStatus.RUNNING
    assert row.task_worker and row.task_result_id
    assert db_results().get(id=row.task_result_id).status == "RUNNING"
    later = datetime.now(UTC) + timedelta(hours=1)
    assert taskfires.reconcile(connection.alias, later, older_than=timedelta(minutes=5)) == 0
    row.refresh_from_db()
    assert row.status == ExecutionStatus.RUNNING
