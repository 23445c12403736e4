"""django_metronome.add_job: a run-time job stored at once, from a process with no scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.jobstores.base import ConflictingIdError

from django_metronome import add_job
from django_metronome.exceptions import ForbiddenFunction, UnreferenceableFunction
from django_metronome.models import DjangoJob, DjangoJobExecution, JobSource
from django_metronome.schedulers import BackgroundScheduler
from tests.conftest import wait_for

WHEN = datetime(2030, 1, 1, 18, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_the_job_is_in_the_database_at_once():
    job = add_job(
        "tests.testapp.jobs:record", "date", run_date=WHEN, args=[7], id="order-7-reminder"
    )

    row = DjangoJob.objects.get(pk="order-7-reminder")
    assert job.id == row.pk
    assert row.source == JobSource.RUNTIME
    assert row.next_run_time == WHEN
    assert row.state["args"] == [7]


@pytest.mark.django_db
def test_without_an_id_each_job_gets_its_own():
    first = add_job("tests.testapp.jobs:record", "date", run_date=WHEN, args=[1])
    second = add_job("tests.testapp.jobs:record", "date", run_date=WHEN, args=[2])
    assert first.id != second.id
    assert DjangoJob.objects.count() == 2


@pytest.mark.django_db
def test_replace_existing_moves_the_job():
    add_job("tests.testapp.jobs:record", "date", run_date=WHEN, args=[1], id="reminder")
    # The very same job again is a retry, not a conflict (a lost commit
    # acknowledgement must not turn into an error); a different one conflicts.
    add_job("tests.testapp.jobs:record", "date", run_date=WHEN, args=[1], id="reminder")
    with pytest.raises(ConflictingIdError):
        add_job("tests.testapp.jobs:record", "date", run_date=WHEN, args=[2], id="reminder")
    later = WHEN + timedelta(days=1)
    add_job(
        "tests.testapp.jobs:record", "date", run_date=later, id="reminder", replace_existing=True
    )
    row = DjangoJob.objects.get(pk="reminder")
    assert row.next_run_time == later
    assert row.state["args"] == []


@pytest.mark.django_db
def test_a_crontab_string_in_the_projects_zone(settings):
    settings.TIME_ZONE = "Asia/Seoul"
    add_job("tests.testapp.jobs:record", "0 8 * * *", id="morning")
    row = DjangoJob.objects.get(pk="morning")
    assert row.describe_schedule() == "At 08:00 every day (Asia/Seoul)"


@pytest.mark.django_db
def test_what_cannot_run_elsewhere_is_refused():
    def nested():
        pass

    with pytest.raises(UnreferenceableFunction):
        add_job(nested, "date", run_date=WHEN)
    with pytest.raises(ForbiddenFunction):
        add_job("os:system", "date", run_date=WHEN, args=["true"])
    assert not DjangoJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_running_scheduler_elsewhere_runs_it(settings):
    settings.METRONOME = {"POLL_INTERVAL": 0.05, "HEARTBEAT_INTERVAL": 0.2, "DEAD_AFTER": 2}
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start()
    try:
        add_job("tests.testapp.jobs:noop", "date", run_date=datetime.now(UTC), id="now")
        row = wait_for(
            lambda: DjangoJobExecution.objects.filter(job_id="now", status="succeeded").first()
        )
    finally:
        scheduler.shutdown()
    assert row.node == scheduler.identity
