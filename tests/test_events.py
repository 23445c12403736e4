"""
register_events(): the runs of a stock APScheduler scheduler land in the ledger.

These tests run a real BackgroundScheduler with real threads against the real
database, and poll for the outcome with a deadline.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.events import (
    EVENT_JOB_EXECUTED,
    EVENT_JOB_SUBMITTED,
    JobExecutionEvent,
    JobSubmissionEvent,
)

from django_metronome.jobstores import DjangoJobStore, register_events
from django_metronome.models import DjangoJob, DjangoJobExecution, ExecutionStatus
from django_metronome.store.db import node_identity
from django_metronome.store.recorder import EventRecorder
from django_metronome.util import close_old_connections
from tests.conftest import TidyBackgroundScheduler, wait_for
from tests.testapp import jobs

pytestmark = pytest.mark.django_db(transaction=True)

RELEASE = threading.Event()


@close_old_connections
def started_then_sleep(job_id: str, seconds: float) -> None:
    """Wait until the ledger shows this run started, then take ``seconds``."""
    wait_for(
        lambda: DjangoJobExecution.objects.filter(
            job_id=job_id, status=ExecutionStatus.RUNNING
        ).exists()
    )
    RELEASE.wait(seconds)


def blocked() -> None:
    RELEASE.wait(30)


@pytest.fixture
def running():
    """Start a scheduler on DjangoJobStore with register_events; stop it afterwards."""
    RELEASE.clear()
    schedulers = []

    def start(**options):
        scheduler = TidyBackgroundScheduler(timezone=UTC, **options)
        scheduler.add_jobstore(DjangoJobStore(), "default")
        register_events(scheduler)
        scheduler.start()
        schedulers.append(scheduler)
        return scheduler

    yield start
    RELEASE.set()
    for scheduler in schedulers:
        scheduler.shutdown(wait=True)


def finished_rows(job_id):
    return list(
        DjangoJobExecution.objects.filter(job_id=job_id)
        .exclude(status=ExecutionStatus.RUNNING)
        .order_by("run_time")
    )


def test_a_successful_run_is_recorded_with_its_times(running):
    scheduler = running()
    start = datetime.now(UTC)
    scheduler.add_job(
        started_then_sleep, "interval", seconds=0.3, args=["tick", 0], id="tick", name="Tick"
    )

    row = wait_for(lambda: finished_rows("tick"))[0]

    assert row.status == ExecutionStatus.SUCCEEDED
    assert row.job_name == "Tick"
    assert row.node == node_identity()
    assert row.run_time > start
    assert row.started_at >= row.run_time
    assert row.finished_at >= row.started_at
    assert row.duration == row.finished_at - row.started_at
    assert row.lateness == row.started_at - row.run_time
    assert (row.exception, row.traceback) == ("", "")


def test_duration_is_the_run_and_lateness_is_the_delay(running):
    scheduler = running()
    past = datetime.now(UTC) - timedelta(seconds=0.5)
    scheduler.add_job(
        started_then_sleep,
        "date",
        run_date=past,
        args=["late-and-slow", 0.25],
        id="late-and-slow",
        misfire_grace_time=None,
    )

    row = wait_for(lambda: finished_rows("late-and-slow"))[0]

    assert row.status == ExecutionStatus.SUCCEEDED
    assert row.lateness >= timedelta(seconds=0.5)
    assert row.duration >= timedelta(seconds=0.25)


def test_a_failure_is_recorded_with_exception_and_traceback(running):
    scheduler = running()
    message = "x" * 5000  # longer than any column django-apscheduler had for it
    scheduler.add_job(jobs.fail, "date", run_date=datetime.now(UTC), args=[message], id="bad")

    row = wait_for(lambda: finished_rows("bad"))[0]

    assert row.status == ExecutionStatus.FAILED
    assert row.exception == f"RuntimeError: {message}"
    assert "raise RuntimeError(message)" in row.traceback
    assert row.finished_at is not None


def test_history_outlives_a_one_shot_job(running):
    scheduler = running()
    scheduler.add_job(jobs.noop, "date", run_date=datetime.now(UTC), id="once")

    wait_for(lambda: finished_rows("once"))
    wait_for(lambda: not DjangoJob.objects.filter(pk="once").exists())

    assert [r.status for r in DjangoJobExecution.objects.filter(job_id="once")] == [
        ExecutionStatus.SUCCEEDED
    ]


def test_a_missed_run_is_recorded_with_its_lateness(running):
    scheduler = running()
    past = datetime.now(UTC) - timedelta(seconds=30)
    scheduler.add_job(jobs.noop, "date", run_date=past, id="missed", misfire_grace_time=1)

    row = wait_for(lambda: finished_rows("missed"))[0]

    assert row.status == ExecutionStatus.MISSED
    assert row.run_time == past
    assert row.lateness >= timedelta(seconds=30)
    assert "misfire grace time" in row.reason


def test_max_instances_refusal_is_recorded_as_skipped(running):
    scheduler = running()
    scheduler.add_job(blocked, "interval", seconds=0.2, id="busy", max_instances=1)

    skipped = wait_for(
        lambda: (
            DjangoJobExecution.objects.filter(job_id="busy", status=ExecutionStatus.SKIPPED)
            .order_by("run_time")
            .first()
        )
    )

    assert "maximum number of instances" in skipped.reason
    first = DjangoJobExecution.objects.filter(job_id="busy").order_by("run_time").first()
    assert first.status == ExecutionStatus.RUNNING
    assert first.run_time < skipped.run_time


def test_events_are_recorded_in_whatever_order_they_arrive(db):
    """A fast job's outcome can be dispatched before its submission."""
    recorder = EventRecorder(node="node-1")
    run_time = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    recorder.record(JobExecutionEvent(EVENT_JOB_EXECUTED, "job", "default", run_time))
    recorder.record(JobSubmissionEvent(EVENT_JOB_SUBMITTED, "job", "default", [run_time]))

    (row,) = DjangoJobExecution.objects.filter(job_id="job")
    assert row.status == ExecutionStatus.SUCCEEDED
    assert row.node == "node-1"
    assert row.finished_at is not None
    # The start was seen after the end: it is unknown, not made up.
    assert (row.started_at, row.duration) == (None, None)


def test_a_second_submission_of_the_same_fire_does_not_add_a_row(db):
    recorder = EventRecorder(node="node-1")
    run_time = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    event = JobSubmissionEvent(EVENT_JOB_SUBMITTED, "job", "default", [run_time])
    recorder.record(event)
    EventRecorder(node="node-2").record(event)

    (row,) = DjangoJobExecution.objects.filter(job_id="job")
    assert (row.status, row.node) == (ExecutionStatus.RUNNING, "node-1")


def test_a_final_status_is_never_overwritten(db):
    run_time = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    DjangoJobExecution.objects.record_outcome(
        job_id="job", run_time=run_time, status=ExecutionStatus.FAILED, exception="E: first"
    )
    DjangoJobExecution.objects.record_outcome(
        job_id="job", run_time=run_time, status=ExecutionStatus.SUCCEEDED
    )
    (row,) = DjangoJobExecution.objects.filter(job_id="job")
    assert (row.status, row.exception) == (ExecutionStatus.FAILED, "E: first")


def test_removing_a_job_keeps_its_history(db):
    DjangoJob.objects.create(id="gone", name="Gone", func_ref="tests.testapp.jobs:noop")
    run_time = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    DjangoJobExecution.objects.record_start(job_id="gone", run_time=run_time, node="n")
    DjangoJob.objects.filter(pk="gone").delete()

    (row,) = DjangoJobExecution.objects.filter(job_id="gone")
    assert row.job_name == "Gone"
    with pytest.raises(DjangoJob.DoesNotExist):
        row.job  # noqa: B018


def test_a_fast_job_still_gets_its_start_and_duration(running):
    """Even when the outcome is dispatched before the submission, the times are exact."""
    scheduler = running()
    for i in range(5):
        scheduler.add_job(jobs.noop, "date", run_date=datetime.now(UTC), id=f"fast-{i}")

    rows = wait_for(
        lambda: (
            r
            if len(r := DjangoJobExecution.objects.filter(status=ExecutionStatus.SUCCEEDED)) == 5
            else None
        )
    )
    for row in rows:
        assert row.run_time <= row.started_at <= row.finished_at
        assert row.duration == row.finished_at - row.started_at
        assert row.lateness == row.started_at - row.run_time
