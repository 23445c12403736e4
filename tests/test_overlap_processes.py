"""
Overlap policies across three real scheduler processes on PostgreSQL.

The running fires are counted in the ledger, so the policy holds whichever
process claims a fire: the runs of a job never overlap, the fires the policy
drops are skipped with the overlap as their reason, and a buffered fire starts
after the running one ends, late by the time it waited.
"""

from __future__ import annotations

import itertools

import pytest
from django.db import connection

from django_metronome.api import add_job
from django_metronome.models import DjangoJob, DjangoJobExecution, SchedulerNode
from tests.conftest import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="three scheduler processes: proven once, on PostgreSQL (the claim is the "
        "same code on every database, tested in tests/test_overlap.py)",
    ),
]


def runs_never_overlap(job_id: str) -> list[DjangoJobExecution]:
    runs = list(
        DjangoJobExecution.objects.filter(job_id=job_id, started_at__isnull=False).order_by(
            "started_at"
        )
    )
    for earlier, later in itertools.pairwise(runs):
        assert later.started_at >= earlier.finished_at, (earlier, later)
    return runs


def test_skip_and_buffer_one_hold_across_three_processes(processes):
    for _ in range(3):
        processes.runscheduler("")
    wait_for(lambda: SchedulerNode.objects.filter(stopped_at__isnull=True).count() >= 3, 60)
    # Each fire runs 1.6 s, and one is due every 1 s: under buffer_one, the third
    # fire comes while the second waits, and is skipped.
    for policy in ("skip", "buffer_one"):
        add_job(
            "tests.testapp.jobs:record_then_hang",
            "interval",
            seconds=1,
            args=[1.6],
            id=policy,
            overlap=policy,
        )
    fires = DjangoJobExecution.objects.filter(job_id="buffer_one")
    wait_for(
        lambda: (
            fires.filter(reason__startswith="Buffered", status="succeeded").exists()
            and fires.filter(status="skipped").exists()
        ),
        timeout=30,
    )
    DjangoJob.objects.filter(pk__in=["skip", "buffer_one"]).pause()
    wait_for(
        lambda: (
            not DjangoJobExecution.objects.filter(
                status__in=["pending", "claimed", "running"]
            ).exists()
        ),
        timeout=30,
    )
    processes.stop()

    skipped = DjangoJobExecution.objects.filter(job_id="skip", status="skipped")
    assert skipped.exists()
    assert all(row.reason.startswith("Skipped (overlap: skip)") for row in skipped)
    assert len(runs_never_overlap("skip")) >= 2

    runs = runs_never_overlap("buffer_one")
    buffered = [row for row in runs if row.reason.startswith("Buffered")]
    assert buffered
    for row in buffered:
        assert row.status == "succeeded"
        # It waited for the one before it: started after it ended, late by the wait.
        before = max(r.finished_at for r in runs if r.started_at < row.started_at)
        assert row.started_at >= before
        assert row.lateness >= before - row.run_time
    dropped = DjangoJobExecution.objects.filter(job_id="buffer_one", status="skipped")
    assert dropped.exists()
    assert all("(overlap: buffer_one)" in row.reason for row in dropped)
    # Nothing ran twice, nothing was lost: every fire has exactly one row.
    assert DjangoJobExecution.objects.filter(job_id="buffer_one").count() == len(
        set(DjangoJobExecution.objects.filter(job_id="buffer_one").values_list("run_time"))
    )
