"""
django.tasks jobs on RQ (django-tasks-rq): a real redis-server (Debian's, started
by scripts/test: ``start_redis`` in scripts/services.sh), real scheduler processes
and a real RQ worker (django-rq's ``rqworker``).

RQ keeps its tasks outside the ledger's database, so an enqueue and its ledger
write are two steps: a scheduler killed between them leaves the task in Redis
(it runs) and the fire interrupted in the ledger, as docs/tasks.md says.
"""

from __future__ import annotations

import os
import signal
import socket
from collections import Counter
from datetime import UTC, datetime
from importlib.util import find_spec

import pytest

pytest.importorskip("django_tasks_db", reason="the test extra installs django-tasks-db")
from django.conf import settings
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

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not find_spec("django_tasks_rq"), reason="django-tasks-rq is not installed"),
    # RQ keeps its tasks in Redis whatever the ledger's database: one run is enough,
    # the MariaDB run's (the others have more multi-process tests of their own).
    pytest.mark.skipif(
        connection.vendor != "mysql", reason="RQ's tests run in the MariaDB run only"
    ),
]


def redis_answers() -> bool:
    port = settings.RQ_QUEUES[settings.RQ_QUEUE]["PORT"]
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(autouse=True)
def queue():
    if not redis_answers():
        message = "redis-server is not running (scripts/services.sh: start_redis)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    import django_rq

    rq_queue = django_rq.get_queue(settings.RQ_QUEUE)
    rq_queue.empty()
    yield rq_queue
    rq_queue.empty()


def scheduler(processes, **env: str):
    return processes.start(
        ["-m", "django", "runscheduler", "--settings=tests.settings_procs"], **env
    )


def rq_worker(processes):
    return processes.start(
        [
            "-m",
            "django",
            "rqworker",
            settings.RQ_QUEUE,
            "--worker-class=rq.worker.SimpleWorker",
            "--job-class=django_tasks_rq.backend.Job",
            "--settings=tests.settings_procs",
        ]
    )


def live(count: int) -> None:
    wait_for(
        lambda: SchedulerNode.objects.filter(stopped_at__isnull=True).count() >= count,
        timeout=60,
    )


OPTIONS = {"backend": "rq", "fire_kwargs": True}


def test_schedulers_and_an_rq_worker_run_every_fire_exactly_once(processes):
    options = {**OPTIONS, "queue_name": settings.RQ_QUEUE}
    for _ in range(2):
        scheduler(processes)
    rq_worker(processes)
    live(2)
    now = datetime.now(UTC)
    fires = 20
    for number in range(fires):
        django_metronome.add_job(
            "tests.tasksapp.tasks:record",
            "date",
            run_date=now,
            id=f"rq-{number:02d}",
            misfire_grace_time=3600,
            task_options=options,
        )
    django_metronome.add_job(
        "tests.tasksapp.tasks:record", "interval", seconds=1, id="rq-tick", task_options=options
    )
    wait_for(lambda: DjangoJobExecution.objects.filter(job_id="rq-tick").count() >= 2, timeout=60)
    DjangoJob.objects.filter(pk="rq-tick").update(next_run_time=None)  # paused

    def finished() -> bool:
        return not DjangoJobExecution.objects.exclude(
            status__in=[ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED]
        ).exists()

    try:
        wait_for(finished, timeout=60)
    except AssertionError:
        found = DjangoJobExecution.objects.values_list("status", "task_result_id", "reason")
        raise AssertionError(f"open fires: {list(found)[:5]}") from None
    rows = list(DjangoJobExecution.objects.all())
    assert Counter(row.status for row in rows) == Counter({"succeeded": len(rows)})
    assert {(row.task_backend, row.task_queue) for row in rows} == {("rq", settings.RQ_QUEUE)}
    assert all(row.task_worker and row.task_result_id for row in rows)
    runs = Counter(TaskRun.objects.values_list("key", flat=True))
    assert [key for key, count in runs.items() if count > 1] == [], "a fire ran twice"
    assert set(runs) == {f"{row.job_id}@{row.run_time.isoformat()}" for row in rows}
    assert len(rows) >= fires + 2


def test_a_scheduler_killed_after_the_enqueue_leaves_the_task_to_run_and_the_fire_interrupted(
    processes,
):
    victim = scheduler(processes, METRONOME_FAULTS="enqueued=kill")
    rq_worker(processes)
    live(1)
    django_metronome.add_job(
        "tests.tasksapp.tasks:record",
        "date",
        run_date=datetime.now(UTC),
        id="rq-victim",
        misfire_grace_time=3600,
        task_options={**OPTIONS, "queue_name": settings.RQ_QUEUE},
    )
    wait_for(lambda: victim.poll() is not None, timeout=60)
    assert victim.returncode == -signal.SIGKILL
    # The task reached Redis before the kill: the worker runs it, once.
    wait_for(lambda: TaskRun.objects.exists(), timeout=60)
    scheduler(processes)
    wait_for(
        lambda: DjangoJobExecution.objects.filter(
            job_id="rq-victim", status=ExecutionStatus.INTERRUPTED
        ).exists(),
        timeout=60,
    )
    (row,) = DjangoJobExecution.objects.filter(job_id="rq-victim")
    assert row.task_result_id is None  # the ledger never heard of the task
    assert TaskRun.objects.count() == 1
