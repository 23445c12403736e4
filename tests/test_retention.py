"""History retention: by age and by count per job, never touching unfinished runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from django_metronome.models import DjangoJobExecution, ExecutionStatus
from django_metronome.store import retention

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def runs(job_id, count, status=ExecutionStatus.SUCCEEDED, start=NOW):
    DjangoJobExecution.objects.bulk_create(
        DjangoJobExecution(
            job_id=job_id, run_time=start - timedelta(hours=i), status=status, node="n"
        )
        for i in range(count)
    )


def test_prune_by_age_keeps_recent_and_unfinished_runs(monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 7)  # several batches
    runs("a", 48)
    runs("b", 3, status=ExecutionStatus.RUNNING, start=NOW - timedelta(days=10))
    deleted = retention.prune(
        "default", NOW, max_age=timedelta(hours=24), max_per_job=None, max_batches=100
    )
    assert deleted == 23  # scheduled more than 24 h before NOW: hours 25 to 47
    left = DjangoJobExecution.objects.filter(job_id="a")
    assert left.count() == 25
    assert min(left.values_list("run_time", flat=True)) == NOW - timedelta(hours=24)
    assert DjangoJobExecution.objects.filter(job_id="b").count() == 3


def test_prune_per_job_keeps_the_most_recent(monkeypatch):
    runs("a", 30)
    runs("b", 5)
    deleted = retention.prune("default", NOW, max_age=None, max_per_job=10)
    assert deleted == 20
    assert DjangoJobExecution.objects.filter(job_id="a").count() == 10
    assert DjangoJobExecution.objects.filter(job_id="b").count() == 5
    newest = DjangoJobExecution.objects.filter(job_id="a").order_by("run_time").first()
    assert newest.run_time == NOW - timedelta(hours=9)


def test_batches_bound_the_work_of_one_round(monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 5)
    runs("a", 40)
    deleted = retention.prune("default", NOW, max_age=timedelta(0), max_per_job=None, max_batches=2)
    assert deleted == 10  # the rest goes in the next rounds
