"""
django.tasks jobs (issue 14): a Task is a job target, each fire enqueues it once,
and the ledger row follows it to its end on a real worker (django-tasks-db's).

Django 6 runs these with its own ``django.tasks``; Django 5.2 with the
``django-tasks`` backport. The worker here is django-tasks-db's own
``db_worker`` command in batch mode (it runs what is ready, then returns).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

pytest.importorskip("django_tasks_db", reason="the test extra installs django-tasks-db")
from apscheduler.schedulers.base import STATE_STOPPED
from django.core.management import call_command
from django.db import connection

import django_metronome
from django_metronome.exceptions import ForbiddenFunction, InvalidJob
from django_metronome.models import DjangoJob, DjangoJobExecution, ExecutionStatus
from django_metronome.schedulers import BackgroundScheduler
from django_metronome.store import taskfires
from tests.conftest import wait_for
from tests.tasksapp import tasks
from tests.tasksapp.backends import BrokerDownBackend
from tests.tasksapp.models import TaskRun

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_settings(settings):
    settings.METRONOME = {
        "POLL_INTERVAL": 0.05,
        "HEARTBEAT_INTERVAL": 0.2,
        "DEAD_AFTER": 2,
        "SHUTDOWN_TIMEOUT": 2,
        "MIN_INTERVAL": 0.05,
    }


@pytest.fixture
def make_scheduler():
    made = []

    def make(**options):
        scheduler = BackgroundScheduler(timezone=UTC, **options)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        if scheduler.state != STATE_STOPPED:
            scheduler.shutdown(wait=True, timeout=5)


def db_results():
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects


def run_worker(queues: str = "*") -> None:
    """django-tasks-db's worker, in batch mode: runs every ready task, then returns."""
    call_command(
        "db_worker", "--batch", "--no-startup-delay", f"--queue-name={queues}", verbosity=0
    )


def settled(job_id: str, count: int = 1, statuses=("enqueued",)):
    return wait_for(
        lambda: (
            found
            if len(
                found := list(
                    DjangoJobExecution.objects.filter(job_id=job_id, status__in=statuses).order_by(
                        "run_time"
                    )
                )
            )
            >= count
            else None
        )
    )


def test_a_task_declared_with_scheduled_job_is_enqueued_at_each_fire_and_ends_on_the_worker(
    make_scheduler,
):
    scheduler = make_scheduler()
    # Stacked on @task: the decorator gets the Task object.
    declared = scheduler.scheduled_job("interval", seconds=0.2, id="tick", kwargs={"label": "t"})(
        tasks.record
    )
    assert declared is tasks.record
    scheduler.start()

    first, second = settled("tick", 2)[:2]
    scheduler.shutdown(wait=True)

    for row in (first, second):
        assert (row.task_backend, row.task_queue) == ("default", "default")
        assert db_results().filter(id=row.task_result_id).exists()
    assert DjangoJob.objects.get(pk="tick").func_ref == "tests.tasksapp.tasks:record"
    # Nothing ran in the scheduler: the task's side effect waits for a worker.
    assert TaskRun.objects.count() == 0

    run_worker()

    rows = DjangoJobExecution.objects.filter(job_id="tick").order_by("run_time")
    assert {row.status for row in rows} == {ExecutionStatus.SUCCEEDED}
    assert TaskRun.objects.count() == rows.count() == db_results().count()
    for row in rows:
        assert row.task_worker
        assert row.started_at <= row.finished_at
        assert row.duration == row.finished_at - row.started_at


def test_add_job_takes_a_task_object_or_its_reference_and_passes_the_fire_on_request(
    make_scheduler,
):
    scheduler = make_scheduler()
    scheduler.start()
    now = datetime.now(UTC)
    scheduler.add_job(tasks.record, "date", run_date=now, id="object", args=["object"])
    django_metronome.add_job(
        "tests.tasksapp.tasks:record",
        "date",
        run_date=now,
        id="by-name",
        kwargs={"label": "by-name"},
        task_options={"fire_kwargs": True},
    )

    (by_name,) = settled("by-name")
    (by_object,) = settled("object")

    stored = db_results().get(id=by_name.task_result_id)
    nominal = by_name.run_time.isoformat()
    assert stored.args_kwargs["kwargs"] == {
        "label": "by-name",
        "metronome_nominal_time": nominal,
        "metronome_idempotency_key": f"by-name@{nominal}",
    }
    assert db_results().get(id=by_object.task_result_id).args_kwargs == {
        "args": ["object"],
        "kwargs": {},
    }
    # One-shot jobs: gone once their fire is with the backend; the history stays.
    assert not DjangoJob.objects.filter(pk__in=["object", "by-name"]).exists()
    run_worker()
    assert set(TaskRun.objects.values_list("key", flat=True)) == {"", f"by-name@{nominal}"}


def test_the_jobs_overrides_choose_the_queue_and_a_bad_one_is_refused_at_add_time(
    make_scheduler,
):
    scheduler = make_scheduler()
    scheduler.start()
    now = datetime.now(UTC)
    scheduler.add_job(
        tasks.record, "date", run_date=now, id="to-reports", task_options={"queue_name": "reports"}
    )
    (row,) = settled("to-reports")
    assert row.task_queue == "reports"
    assert db_results().get(id=row.task_result_id).queue_name == "reports"

    with pytest.raises(InvalidJob, match=r"cannot be enqueued as configured.*settings\.TASKS"):
        scheduler.add_job(tasks.record, "date", run_date=now, task_options={"queue_name": "nope"})
    with pytest.raises(InvalidJob, match="cannot be enqueued as configured"):
        scheduler.add_job(tasks.record, "date", run_date=now, task_options={"backend": "nope"})
    with pytest.raises(InvalidJob, match=r"unknown key.*'queue'"):
        scheduler.add_job(tasks.record, "date", run_date=now, task_options={"queue": "reports"})
    with pytest.raises(InvalidJob, match=r"not one\. Remove task_options"):
        scheduler.add_job(tasks.plain, "date", run_date=now, task_options={"fire_kwargs": True})
    # A backend without priorities: refused, not dropped silently.
    with pytest.raises(InvalidJob, match="priorit"):
        scheduler.add_job(tasks.unreachable, "date", run_date=now, task_options={"priority": 5})


def test_a_failing_task_leaves_the_workers_traceback_in_the_ledger(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(tasks.explode, "date", run_date=datetime.now(UTC), id="boom")
    settled("boom")
    scheduler.shutdown(wait=True)

    run_worker()

    row = DjangoJobExecution.objects.get(job_id="boom")
    assert row.status == ExecutionStatus.FAILED
    assert row.exception == "ValueError: the task failed on purpose"
    assert "Traceback (most recent call last)" in row.traceback
    assert "def explode" in row.traceback or "explode" in row.traceback


def test_an_immediate_backend_runs_the_task_at_the_enqueue_and_the_row_is_final_at_once(
    make_scheduler,
):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(tasks.at_once, "date", run_date=datetime.now(UTC), id="now", args=["x"])
    (row,) = settled("now", statuses=("succeeded",))
    assert (row.task_backend, row.task_result_id is not None) == ("immediate", True)
    assert list(TaskRun.objects.values_list("label", flat=True)) == ["now:x"]


def test_plain_functions_still_run_in_the_scheduler(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(tasks.plain, "date", run_date=datetime.now(UTC), id="plain", args=["p"])
    (row,) = settled("plain", statuses=("succeeded",))
    assert row.task_backend is None and row.task_result_id is None
    assert list(TaskRun.objects.values_list("label", flat=True)) == ["plain:p"]


def test_a_broker_down_is_retried_then_the_fire_failed_and_the_loop_goes_on(
    make_scheduler, settings
):
    settings.METRONOME = {**settings.METRONOME, "TASK_ENQUEUE_ATTEMPTS": 2}
    BrokerDownBackend.attempts = 0
    scheduler = make_scheduler()
    scheduler.start()
    now = datetime.now(UTC)
    scheduler.add_job(tasks.unreachable, "date", run_date=now, id="down")
    scheduler.add_job(tasks.record, "date", run_date=now, id="fine")

    (row,) = settled("down", statuses=("failed",))
    assert row.exception.startswith("ConnectionRefusedError")
    assert row.reason == "The task could not be enqueued (tried 2 times)."
    assert BrokerDownBackend.attempts == 2
    settled("fine")  # the loop carried on


def test_the_allow_list_judges_a_tasks_function():
    assert taskfires.as_task(tasks.record) is tasks.record
    when = datetime.now(UTC) + timedelta(days=1)
    # Judged on the object reached: the task's function lives under another name.
    with pytest.raises(ForbiddenFunction, match="defined elsewhere"):
        django_metronome.add_job("tests.tasksapp.tasks:relayed", "date", run_date=when)
    with pytest.raises(ForbiddenFunction):
        django_metronome.add_job("tests.tasksapp.tasks:record.func", "date", run_date=when)
    assert not DjangoJob.objects.exists()


def test_reconciliation_reads_results_whose_signal_never_came(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(tasks.record, "date", run_date=datetime.now(UTC), id="quiet")
    (row,) = settled("quiet")
    scheduler.shutdown(wait=True)
    # The worker ran it, but its signals went nowhere (a worker of another deploy, say).
    receivers = taskfires.framework()
    receivers.finished.disconnect(dispatch_uid="django_metronome.task_finished")
    receivers.started.disconnect(dispatch_uid="django_metronome.task_started")
    try:
        run_worker()
    finally:
        taskfires.connect_signals()
    row.refresh_from_db()
    assert row.status == ExecutionStatus.ENQUEUED

    later = datetime.now(UTC) + timedelta(minutes=10)
    assert taskfires.reconcile(connection.alias, later, older_than=timedelta(minutes=5)) == 1
    row.refresh_from_db()
    assert row.status == ExecutionStatus.SUCCEEDED
    assert row.finished_at is not None
    # Nothing left to ask about.
    assert taskfires.reconcile(connection.alias, later, older_than=timedelta(minutes=5)) == 0


def test_a_failure_signalled_without_its_error_gets_it_from_the_reconciliation(make_scheduler):
    """
    django-tasks-rq sends ``task_finished`` before RQ records the error (and an RQ job
    abandoned by a killed worker has none yet): the row says so until the
    reconciliation reads the error from the backend (tests/test_tasks_rq.py on RQ).
    """
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(tasks.explode, "date", run_date=datetime.now(UTC), id="silent")
    (row,) = settled("silent")
    scheduler.shutdown(wait=True)
    receivers = taskfires.framework()
    receivers.finished.disconnect(dispatch_uid="django_metronome.task_finished")
    try:
        run_worker()
    finally:
        taskfires.connect_signals()
    result = tasks.explode.get_backend().get_result(row.task_result_id)
    assert result.errors  # the backend has the error; the signal below does not
    signalled = SimpleNamespace(
        id=result.id,
        backend=result.backend,
        status=result.status,
        started_at=result.started_at,
        finished_at=result.finished_at,
        worker_ids=result.worker_ids,
        errors=[],
    )
    taskfires.on_task_finished(None, signalled)
    row.refresh_from_db()
    assert (row.status, row.exception, row.reason) == (
        ExecutionStatus.FAILED,
        "",
        taskfires.ERROR_TO_READ,
    )
    # One the backend knows nothing about: read once, then left with its reason.
    lost = DjangoJobExecution.objects.create(
        job_id="lost",
        run_time=datetime.now(UTC),
        status=ExecutionStatus.FAILED,
        finished_at=datetime.now(UTC),
        reason=taskfires.ERROR_TO_READ,
        task_backend="default",
        task_result_id=str(uuid.uuid4()),
    )

    def reconcile(after: timedelta) -> int:
        now = datetime.now(UTC) + after
        return taskfires.reconcile(connection.alias, now, older_than=timedelta(minutes=5))

    assert reconcile(timedelta(seconds=1)) == 0  # the backend may still be writing it
    assert reconcile(timedelta(minutes=5)) == 2
    row.refresh_from_db()
    assert (row.status, row.reason) == (ExecutionStatus.FAILED, "")
    assert row.exception == "ValueError: the task failed on purpose"
    assert "Traceback (most recent call last)" in row.traceback
    lost.refresh_from_db()
    assert (lost.reason, lost.exception) == (taskfires.NO_ERROR, "")
    assert reconcile(timedelta(minutes=5)) == 0
    # Fires scheduled more than a day before are not looked for.
    lost.reason = taskfires.ERROR_TO_READ
    lost.save()
    assert reconcile(timedelta(days=2)) == 0


def test_a_task_started_after_the_scheduler_read_it_running_names_its_worker():
    """RQ may report a job started before it names its worker: the signal adds the name."""
    row = DjangoJobExecution.objects.create(
        job_id="unnamed",
        run_time=datetime.now(UTC),
        status=ExecutionStatus.RUNNING,
        task_backend="default",
        task_result_id="t-1",
    )
    started = SimpleNamespace(
        id="t-1", backend="default", worker_ids=["w-1"], started_at=datetime.now(UTC)
    )
    taskfires.on_task_started(None, started)
    row.refresh_from_db()
    assert (row.status, row.task_worker) == (ExecutionStatus.RUNNING, "w-1")
    # A worker already named is not renamed.
    taskfires.on_task_started(None, SimpleNamespace(**{**vars(started), "worker_ids": ["w-2"]}))
    row.refresh_from_db()
    assert row.task_worker == "w-1"


def test_the_enqueue_and_the_ledger_write_commit_together_on_the_database_backend(
    make_scheduler,
):
    """An error between the task row and the ledger write rolls both back."""
    execution = DjangoJobExecution.objects.create(
        job_id="atomic",
        run_time=datetime.now(UTC),
        status=ExecutionStatus.RUNNING,
        node="someone",
    )

    def broken() -> None:
        raise RuntimeError("died between the two writes")

    assert taskfires.shares_transaction(tasks.record.get_backend(), connection.alias)
    with pytest.raises(RuntimeError):
        taskfires.enqueue_fire(
            connection.alias,
            execution_id=execution.pk,
            job_id="atomic",
            task=tasks.record,
            args=[],
            kwargs={"metronome_idempotency_key": uuid.uuid4().hex},
            between=broken,
        )
    assert db_results().count() == 0
    execution.refresh_from_db()
    assert (execution.status, execution.task_result_id) == (ExecutionStatus.RUNNING, None)


def test_the_admin_shows_where_a_fire_went(make_scheduler, admin_client):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(tasks.record, "date", run_date=datetime.now(UTC), id="shown")
    (row,) = settled("shown")
    plain = DjangoJobExecution.objects.create(
        job_id="plain", run_time=datetime.now(UTC), status=ExecutionStatus.SUCCEEDED
    )

    page = admin_client.get(f"/admin/django_metronome/djangojobexecution/{row.pk}/change/")
    text = page.content.decode()
    assert page.status_code == 200
    assert row.task_result_id in text
    assert "task backend" in text.lower() and "task queue" in text.lower()
    assert "metronome-enqueued" in text
    other = admin_client.get(f"/admin/django_metronome/djangojobexecution/{plain.pk}/change/")
    assert "task backend" not in other.content.decode().lower()


def test_the_check_reports_stored_overrides_that_settings_tasks_lost(settings):
    from django_metronome.checks import check_database

    django_metronome.add_job(
        "tests.tasksapp.tasks:record",
        "date",
        run_date=datetime.now(UTC) + timedelta(days=1),
        id="to-reports",
        task_options={"queue_name": "reports"},
    )
    django_metronome.add_job(
        "tests.tasksapp.tasks:at_once",
        "date",
        run_date=datetime.now(UTC) + timedelta(days=1),
        id="on-immediate",
        task_options={"backend": "immediate"},
    )
    assert [e.id for e in check_database(databases=[connection.alias])] == []

    tasks_settings = dict(settings.TASKS)
    tasks_settings["default"] = {**tasks_settings["default"], "QUEUES": ["default"]}
    del tasks_settings["immediate"]
    settings.TASKS = tasks_settings

    errors = check_database(databases=[connection.alias])
    assert sorted(e.id for e in errors) == ["django_metronome.E020", "django_metronome.E021"]
    by_id = {e.id: e.msg for e in errors}
    assert "'on-immediate'" in by_id["django_metronome.E020"]
    assert "'immediate'" in by_id["django_metronome.E020"]
    assert "'reports'" in by_id["django_metronome.E021"]


def test_run_now_from_the_command_line_enqueues_and_says_where(make_scheduler):
    from django.core.management.base import CommandError

    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(tasks.record, "interval", hours=1, id="hourly-task")

    with pytest.raises(CommandError) as caught:
        call_command("metronome", "run", "hourly-task", "--wait", "--timeout", "1", stdout=None)
    (run,) = DjangoJobExecution.objects.filter(job_id="hourly-task", manual=True)
    assert run.status == ExecutionStatus.ENQUEUED
    assert f"as task {run.task_result_id}, and is enqueued in its task queue" in str(caught.value)

    run_worker()
    run.refresh_from_db()
    assert run.status == ExecutionStatus.SUCCEEDED


def test_a_queue_the_settings_lost_fails_the_fire_at_once_without_retries(make_scheduler, settings):
    scheduler = make_scheduler()
    scheduler.start()
    later = datetime.now(UTC) + timedelta(seconds=0.5)
    scheduler.add_job(
        tasks.record,
        "date",
        run_date=later,
        id="lost-queue",
        task_options={"queue_name": "reports"},
    )
    tasks_settings = dict(settings.TASKS)
    tasks_settings["default"] = {**tasks_settings["default"], "QUEUES": ["default"]}
    settings.TASKS = tasks_settings

    (row,) = settled("lost-queue", statuses=("failed",))
    assert row.reason == "The task could not be enqueued."
    assert "settings.TASKS" in row.exception
    assert db_results().count() == 0
