"""What the job model says about itself: its zone, its schedule in words, its next fires."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from django_metronome.models import DjangoJob
from django_metronome.triggers import CrontabTrigger
from tests.testapp import jobs

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(store, make_job):
    def store_job(trigger):
        store.add_job(make_job(jobs.noop, trigger=trigger, next_run_time=None))
        return DjangoJob.objects.get()

    return store_job


def test_next_fire_times_cross_dst_in_the_jobs_zone(stored):
    job = stored(CrontabTrigger("30 2 * * *", "America/New_York"))
    fires = job.next_fire_times(3, now=datetime(2026, 3, 7, 12, tzinfo=UTC))
    assert [f.isoformat() for f in fires] == [
        "2026-03-08T03:00:00-04:00",  # 02:30 does not exist that night: first instant after
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
    ]


def test_apscheduler_cron_trigger_previews_with_the_same_rules(stored):
    job = stored(CronTrigger(hour=2, minute=30, timezone="America/New_York"))
    fires = job.next_fire_times(1, now=datetime(2026, 3, 7, 12, tzinfo=UTC))
    assert [f.isoformat() for f in fires] == ["2026-03-08T03:00:00-04:00"]


def test_schedule_in_words_and_zone(stored):
    job = stored(CronTrigger(hour=8, timezone="Asia/Seoul"))
    assert job.describe_schedule() == "At 08:00 every day (Asia/Seoul)"
    assert job.time_zone == "Asia/Seoul"


def test_interval_in_words(stored):
    job = stored(IntervalTrigger(minutes=5, timezone="UTC"))
    assert job.describe_schedule() == "Every 5 minutes (UTC)"


def test_unreadable_schedule_is_said_so():
    job = DjangoJob(id="x", state={"version": 1, "trigger": {"type": "lunar"}})
    assert job.describe_schedule() == "(a schedule this release cannot read)"
