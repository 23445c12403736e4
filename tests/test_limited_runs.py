"""
Limited runs and windows: ``max_runs`` ends a job after N successful fires, kept with its
history; ``start_date``/``end_date`` for every trigger type.

The window is pure (time core); ``max_runs`` is counted in the ledger, claimed by hand
with the clock as an argument, on every database of the test run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from hypothesis import given, settings
from hypothesis import strategies as st

import django_metronome
from django_metronome import present
from django_metronome.models import DjangoJob, DjangoJobExecution, ExecutionStatus
from django_metronome.store import claims, ledger
from django_metronome.store.ledger import Outcome
from django_metronome.time.codecs import decode_trigger, encode_trigger
from django_metronome.time.limits import Limits, find_limits
from django_metronome.time.preview import describe_trigger, next_fire_times
from django_metronome.time.triggers import CrontabTrigger
from django_metronome.time.wrappers import with_exclusions
from tests.claiming import plan_once, started_store

SEOUL = ZoneInfo("Asia/Seoul")
EIGHT = CrontabTrigger("0 8 * * *", "Asia/Seoul")


# --- the window: pure ------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    start_days=st.integers(min_value=0, max_value=30),
    length_days=st.integers(min_value=0, max_value=30),
    now_days=st.integers(min_value=-10, max_value=70),
)
def test_a_window_keeps_exactly_the_fires_inside_it(start_days, length_days, now_days):
    base = datetime(2026, 1, 1, tzinfo=SEOUL)
    start = base + timedelta(days=start_days, hours=3)
    end = start + timedelta(days=length_days)
    now = base + timedelta(days=now_days)
    trigger = Limits(EIGHT, start_date=start, end_date=end)
    fires = next_fire_times(trigger, 100, now)
    expected = [f for f in next_fire_times(EIGHT, 100, now) if start <= f <= end]
    assert fires == expected


def test_every_trigger_type_takes_a_window_through_add_job_arguments():
    start = datetime(2026, 5, 1, tzinfo=SEOUL)
    end = datetime(2026, 5, 3, 23, tzinfo=SEOUL)
    scheduler = django_metronome.schedulers.BackgroundScheduler(timezone=SEOUL)
    for trigger in ("0 8 * * *", OrTrigger([CronTrigger(hour=8, timezone=SEOUL)])):
        job = scheduler.build_job(
            django_metronome.loop.declare.JobSpec.of(
                "tests.testapp.jobs:noop", trigger, start_date=start, end_date=end, id="w"
            ),
            declared=False,
        )
        fires = next_fire_times(job.trigger, 10, datetime(2026, 4, 1, tzinfo=SEOUL))
        assert [f.day for f in fires] == [1, 2, 3]
        assert describe_trigger(job.trigger).endswith(
            "from 2026-05-01 00:00:00+09:00 until 2026-05-03 23:00:00+09:00"
        )


def test_limits_are_stored_and_refused_when_wrong():
    trigger = Limits(EIGHT, end_date=datetime(2026, 6, 1, tzinfo=UTC), max_runs=3)
    data = encode_trigger(trigger)
    assert data["type"] == "limits" and data["max_runs"] == 3
    assert encode_trigger(decode_trigger(data)) == data
    assert find_limits(decode_trigger(data)).max_runs == 3
    assert describe_trigger(trigger).endswith("at most 3 successful runs")
    with pytest.raises(ValueError, match="max_runs must be a whole number"):
        Limits(EIGHT, max_runs=0)
    with pytest.raises(ValueError, match="Swap them"):
        Limits(
            EIGHT,
            start_date=datetime(2026, 2, 1, tzinfo=UTC),
            end_date=datetime(2026, 1, 1, tzinfo=UTC),
        )
    with pytest.raises(ValueError, match="aware datetime"):
        Limits(EIGHT, start_date=datetime(2026, 2, 1))


# --- max_runs: counted in the ledger ---------------------------------------------------------


def plan(job, at):
    return with_exclusions(plan_once(job, at), job.trigger, job.next_run_time)


def claim(at: datetime) -> claims.ClaimBatch:
    return claims.claim_due_fires(
        using="default",
        node="node-a",
        now=at,
        limit=100,
        declared=[],
        load=started_store().load_rows,
        plan=plan,
    )


def succeed(batch: claims.ClaimBatch, at: datetime, status=ExecutionStatus.SUCCEEDED) -> None:
    fires = [(claimed.job.id, fire) for claimed in batch.claimed for fire in claimed.fires]
    ledger.start_fires("default", "node-a", [fire.execution_id for _, fire in fires], at)
    ledger.record_outcomes(
        "default",
        [
            Outcome(fire.execution_id, fire.run_time, status, at, at, job_id=job_id)
            for job_id, fire in fires
        ],
    )


@pytest.mark.django_db(transaction=True)
def test_max_runs_ends_the_job_after_that_many_successes_and_keeps_it():
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    django_metronome.add_job(
        "tests.testapp.jobs:noop",
        "interval",
        minutes=1,
        start_date=start,
        next_run_time=start,
        max_runs=2,
        id="twice",
    )
    at = start
    succeed(claim(at), at)  # 1st success
    at += timedelta(minutes=1)
    succeed(claim(at), at, ExecutionStatus.FAILED)  # a failure does not count
    at += timedelta(minutes=1)
    batch = claim(at)
    assert batch.fire_count == 1
    # While it runs, no further fire starts: it may be the last one needed.
    at += timedelta(minutes=1)
    assert claim(at).fire_count == 0
    skipped = DjangoJobExecution.objects.get(job_id="twice", status=ExecutionStatus.SKIPPED)
    assert "max_runs" in skipped.reason and "1 succeeded and 1 are not finished" in skipped.reason
    succeed(batch, at)  # 2nd success
    at += timedelta(minutes=1)
    assert claim(at).fire_count == 0
    job = DjangoJob.objects.get(id="twice")  # kept, with its history
    assert job.next_run_time is None
    assert present.job_state(job) == "finished"  # shown as finished, not as paused
    statuses = list(
        DjangoJobExecution.objects.filter(job_id="twice")
        .order_by("run_time")
        .values_list("status", flat=True)
    )
    assert statuses == ["succeeded", "failed", "succeeded", "skipped"]
    assert claim(at + timedelta(minutes=5)).fire_count == 0


@pytest.mark.django_db(transaction=True)
def test_the_job_page_shows_the_catch_up_window_and_the_run_limit(admin_client):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    django_metronome.add_job(
        "tests.testapp.jobs:noop",
        "interval",
        minutes=1,
        start_date=start,
        next_run_time=start,
        max_runs=1,
        misfire_grace_time=5,
        misfire_policy="skip",
        id="once-only",
    )
    # Claimed with the tests' plan (60 s grace): the three oldest fires are missed.
    at = start + timedelta(minutes=3, seconds=30)
    assert claim(at).fire_count == 1
    body = admin_client.get("/admin/django_metronome/djangojob/once-only/change/").content.decode()
    assert "5 s · 3 fires dropped as missed" in body
    assert "catch-up window (misfire_grace_time)" in body.lower()
    assert "0 of 1 successful run" in body
