"""
django.tasks jobs on RQ (django-tasks-rq): a real redis-server (Debian's, started
by scripts/test: ``start_redis`` in scripts/services.sh), real scheduler processes
and real RQ workers (django-rq's ``rqworker``): two sharing the queue, and one
killed mid-task (what the ledger shows then: docs/tasks.md).

RQ keeps its tasks outside the ledger's database, so an enqueue and its ledger
write are two steps: a scheduler killed between them leaves the task in Redis
(it runs) and the fire interrupted in the ledger, as docs/tasks.md says.
"""

from __future__ import annotations

import os
import signal
import socket
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
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

    def clean() -> None:
        # The queue, what its registries keep of earlier runs (a killed worker's job
        # stays started for minutes), and a maintenance lock a killed worker may hold.
        rq_queue.empty()
        rq_queue.connection.delete(
            rq_queue.started_job_registry.key,
            rq_queue.failed_job_registry.key,
            rq_queue.registry_cleaning_key,
        )

    clean()
    yield rq_queue
    clean()


def scheduler(processes, **env: str):
    return processes.start(
        ["-m", "django", "runscheduler", "--settings=tests.settings_procs"], **env
    )


def rq_worker(processes, name: str = ""):
    """django-rq's ``rqworker``; ``name`` (unique: RQ keeps a killed worker's for minutes)."""
    return processes.start(
        [
            "-m",
            "django",
            "rqworker",
            settings.RQ_QUEUE,
            "--worker-class=rq.worker.SimpleWorker",
            "--job-class=django_tasks_rq.backend.Job",
            "--settings=tests.settings_procs",
            *([f"--name={name}"] if name else []),
        ]
    )


def worker_name(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:12]}"


def live(count: int) -> None:
    wait_for(
        lambda: SchedulerNode.objects.filter(stopped_at__isnull=True).count() >= count,
        timeout=60,
    )


OPTIONS = {"backend": "rq", "fire_kwargs": True}


def test_schedulers_and_two_rq_workers_run_every_fire_exactly_once(processes, queue):
    from rq import Worker

    options = {**OPTIONS, "queue_name": settings.RQ_QUEUE}
    for _ in range(2):
        scheduler(processes)
    # Two workers on the one queue: RQ hands each job to one of them.
    workers = {worker_name("first"), worker_name("second")}
    for name in workers:
        rq_worker(processes, name)
    live(2)
    wait_for(lambda: {worker.name for worker in Worker.all(queue=queue)} >= workers, timeout=60)
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
    assert {row.task_worker for row in rows} == workers  # both took their share
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


def test_an_rq_worker_killed_mid_task_leaves_the_fire_running_until_rq_abandons_the_job(
    processes, tmp_path, queue
):
    """
    docs/tasks.md, "A worker killed mid-task": the fire stays running on the dead
    worker while RQ has the job started; once RQ gives the job up as abandoned (a
    worker's maintenance, after the job's timeout + 60 s) its failure callback fails
    the fire, and the reconciliation reads RQ's error for it.
    """
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    from django_metronome.store import taskfires

    scheduler(processes)
    victim_name = worker_name("victim")
    victim = rq_worker(processes, victim_name)
    live(1)
    marker = tmp_path / "holding"
    django_metronome.add_job(
        "tests.tasksapp.tasks:hold",
        "date",
        run_date=datetime.now(UTC),
        id="rq-held",
        args=[str(marker)],
        task_options={"backend": "rq", "queue_name": settings.RQ_QUEUE},
    )
    wait_for(marker.exists, timeout=60)  # the task is inside the victim, holding
    row = wait_for(
        lambda: DjangoJobExecution.objects.filter(
            job_id="rq-held", status=ExecutionStatus.RUNNING, task_worker=victim_name
        ).first(),
        timeout=30,
    )
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=10) == -signal.SIGKILL

    # RQ still has the job started on the dead worker, and so has the ledger: the
    # reconciliation reads RUNNING and changes nothing.
    result = taskfires.framework().backends["rq"].get_result(row.task_result_id)
    assert str(result.status.value) == "RUNNING"
    later = datetime.now(UTC) + timedelta(hours=1)
    assert taskfires.reconcile(connection.alias, later, older_than=timedelta(minutes=5)) == 0
    row.refresh_from_db()
    assert (row.status, row.task_worker) == (ExecutionStatus.RUNNING, victim_name)

    # RQ gives a started job up when its entry in the started registry expires (the
    # job's timeout + 60 s: 4 minutes here), at a worker's next maintenance (at its
    # start, then every 10 minutes). The expiry is brought forward; the rest is RQ's.
    started = StartedJobRegistry(queue=queue)
    entries = queue.connection.zrange(started.key, 0, -1)
    assert [entry.decode().split(":")[0] for entry in entries] == [row.task_result_id]
    queue.connection.zadd(started.key, dict.fromkeys(entries, 1))
    marker.unlink()  # the task's run would make it again
    rq_worker(processes, worker_name("survivor"))
    # RQ's failure callback (django-tasks-rq's task_finished, in the survivor) fails
    # the fire; the signal carries no error, which the reconciliation reads from RQ.
    wait_for(
        lambda: DjangoJobExecution.objects.filter(
            pk=row.pk, status=ExecutionStatus.FAILED
        ).exists(),
        timeout=30,
    )
    row.refresh_from_db()
    assert (row.reason, row.task_worker) == (taskfires.ERROR_TO_READ, victim_name)
    # RQ records the failure just after the callback (why the error is read later).
    wait_for(lambda: row.task_result_id in FailedJobRegistry(queue=queue).get_job_ids())
    assert taskfires.reconcile(connection.alias, later, older_than=timedelta(minutes=5)) == 1
    row.refresh_from_db()
    assert row.status == ExecutionStatus.FAILED
    assert row.reason == ""
    assert "AbandonedJobError" in row.exception
    assert row.task_worker == victim_name
    # Read once: nothing left to ask about. RQ does not run an abandoned job again.
    assert taskfires.reconcile(connection.alias, later, older_than=timedelta(minutes=5)) == 0
    assert queue.count == 0
    assert not marker.exists()
