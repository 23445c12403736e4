"""
django-metronome's schedulers in one process: APScheduler's API over our loop.

Real threads, the real database, short intervals, polling with deadlines.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
)
from apscheduler.executors.pool import ThreadPoolExecutor as APSThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.base import STATE_STOPPED

from django_metronome.context import current_fire
from django_metronome.exceptions import UnserializableArgument
from django_metronome.jobstores import DjangoJobStore, register_events
from django_metronome.models import (
    DjangoJob,
    DjangoJobExecution,
    ExecutionStatus,
    JobSource,
    SchedulerNode,
)
from django_metronome.schedulers import (
    AsyncIOScheduler,
    BackgroundScheduler,
    BlockingScheduler,
)
from django_metronome.triggers import CrontabTrigger
from tests.conftest import wait_for
from tests.testapp import jobs

pytestmark = pytest.mark.django_db(transaction=True)

RELEASE = threading.Event()
SEEN: list = []


@pytest.fixture(autouse=True)
def fast_settings(settings):
    settings.METRONOME = {
        "POLL_INTERVAL": 0.05,
        "HEARTBEAT_INTERVAL": 0.2,
        "DEAD_AFTER": 2,
        "SHUTDOWN_TIMEOUT": 2,
        "MIN_INTERVAL": 0.05,
    }
    RELEASE.clear()
    SEEN.clear()
    yield
    RELEASE.set()


@pytest.fixture
def make_scheduler():
    made = []

    def make(cls=BackgroundScheduler, **options):
        scheduler = cls(timezone=UTC, **options)
        made.append(scheduler)
        return scheduler

    yield make
    RELEASE.set()
    for scheduler in made:
        if scheduler.state != STATE_STOPPED:
            scheduler.shutdown(wait=True, timeout=5)


def rows(job_id=None, **filters):
    queryset = DjangoJobExecution.objects.filter(**filters).order_by("run_time")
    if job_id is not None:
        queryset = queryset.filter(job_id=job_id)
    return list(queryset)


def finished(job_id, count=1):
    """Poll until ``count`` fires of the job have a final status; return their rows."""
    return wait_for(
        lambda: (
            found
            if len(found := rows(job_id, status__in=["succeeded", "failed", "missed", "skipped"]))
            >= count
            else None
        )
    )


def blocked():
    RELEASE.wait(30)


def remember_fire():
    SEEN.append(current_fire())


def test_runtime_job_runs_and_is_recorded_exactly(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(jobs.noop, "interval", seconds=0.2, id="tick", name="Tick")

    first, second = finished("tick", 2)[:2]

    assert (first.status, first.job_name, first.node) == ("succeeded", "Tick", scheduler.identity)
    assert second.run_time - first.run_time == timedelta(seconds=0.2)
    for row in (first, second):
        assert row.claimed_at <= row.started_at <= row.finished_at
        assert row.duration == row.finished_at - row.started_at
        assert row.lateness == row.started_at - row.run_time
    assert DjangoJob.objects.get(pk="tick").source == JobSource.RUNTIME
    assert DjangoJob.objects.get(pk="tick").next_run_time > second.run_time


def test_one_shot_job_is_removed_and_its_history_kept(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    job = scheduler.add_job(jobs.noop, "date", run_date=datetime.now(UTC))

    (row,) = finished(job.id)

    assert row.status == ExecutionStatus.SUCCEEDED
    assert not DjangoJob.objects.filter(pk=job.id).exists()
    assert scheduler.get_job(job.id) is None


def test_failure_is_recorded_and_the_loop_goes_on(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(jobs.fail, "date", run_date=datetime.now(UTC), args=["nope"], id="bad")
    scheduler.add_job(jobs.noop, "interval", seconds=0.1, id="good")

    (bad,) = finished("bad")
    finished("good", 3)

    assert bad.status == ExecutionStatus.FAILED
    assert bad.exception == "RuntimeError: nope"
    assert "raise RuntimeError(message)" in bad.traceback


def test_jobs_know_their_fire(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    when = datetime.now(UTC) + timedelta(seconds=0.1)
    scheduler.add_job(remember_fire, "date", run_date=when, id="ctx")

    (row,) = finished("ctx")

    (fire,) = SEEN
    assert (fire.job_id, fire.run_time, fire.execution_id) == ("ctx", when, row.pk)
    assert current_fire() is None


def test_declared_nested_function_gets_a_stable_id_and_runs(make_scheduler):
    scheduler = make_scheduler()

    @scheduler.scheduled_job("interval", seconds=0.2, name="nested")
    def nested_job():
        SEEN.append("ran")

    scheduler.start()
    job_id = (
        "tests.test_scheduler:test_declared_nested_function_gets_a_stable_id_and_runs"
        ".<locals>.nested_job"
    )
    finished(job_id)

    row = DjangoJob.objects.get(pk=job_id)
    assert row.source == JobSource.CODE
    assert row.func_ref == job_id
    assert "ran" in SEEN


def test_redeclaring_an_unchanged_job_keeps_its_next_run_time_and_pause(make_scheduler):
    def declare():
        scheduler = make_scheduler()
        scheduler.add_job(jobs.noop, "interval", hours=1, id="hourly", replace_existing=True)
        return scheduler

    first = declare()
    first.start()
    stored = DjangoJob.objects.get(pk="hourly").next_run_time
    first.pause_job("hourly")
    first.shutdown()

    second = declare()
    second.start()

    row = DjangoJob.objects.get(pk="hourly")
    assert row.next_run_time is None  # still paused, as the admin left it
    second.resume_job("hourly")
    # Resumed where the schedule stands: the redeclaration kept the interval's first
    # anchor (not "one hour from the second start"), so its next fire is the stored one.
    assert stored is not None
    assert DjangoJob.objects.get(pk="hourly").next_run_time == stored


def test_redeclaring_unchanged_keeps_the_stored_next_run_time(make_scheduler):
    first = make_scheduler()
    first.add_job(jobs.noop, "interval", hours=1, id="hourly")
    first.start()
    stored = DjangoJob.objects.get(pk="hourly").next_run_time
    first.shutdown()

    second = make_scheduler()
    second.add_job(jobs.noop, "interval", hours=1, id="hourly")
    second.start()

    assert DjangoJob.objects.get(pk="hourly").next_run_time == stored


def test_changed_trigger_recomputes_the_next_run_time(make_scheduler):
    first = make_scheduler()
    first.add_job(jobs.noop, "interval", hours=1, id="job")
    first.start()
    first.shutdown()

    second = make_scheduler()
    second.add_job(jobs.noop, "interval", minutes=1, id="job", replace_existing=True)
    second.start()

    row = DjangoJob.objects.get(pk="job")
    assert row.state["trigger"]["interval"] == {"days": 0, "seconds": 60, "microseconds": 0}
    assert row.next_run_time - datetime.now(UTC) < timedelta(minutes=1, seconds=1)


def test_changed_declaration_with_an_explicit_id_needs_replace_existing(make_scheduler):
    first = make_scheduler()
    first.add_job(jobs.noop, "interval", hours=1, id="job")
    first.start()
    first.shutdown()

    second = make_scheduler()
    second.add_job(jobs.noop, "interval", hours=2, id="job")
    with pytest.raises(Exception, match="conflicts with an existing job"):
        second.start()
    assert not second.running


def test_pause_from_another_process_takes_effect(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(jobs.noop, "interval", seconds=0.1, id="tick")
    finished("tick", 1)

    # Another process (the admin, say) pauses it: only the row changes.
    DjangoJob.objects.filter(pk="tick").update(next_run_time=None)
    scheduler.wait_for_outcomes(5)
    count = len(rows("tick"))
    threading.Event().wait(0.5)
    assert len(rows("tick")) == count


def test_max_instances_counts_running_fires_in_the_ledger(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(blocked, "interval", seconds=0.1, id="busy", max_instances=1)

    skipped = wait_for(lambda: rows("busy", status=ExecutionStatus.SKIPPED))

    assert "instance(s) running (max_instances)" in skipped[0].reason
    assert [r.status for r in rows("busy", status=ExecutionStatus.RUNNING)] == ["running"]


def test_misfire_policy_once_runs_one_late_fire_and_records_the_rest(make_scheduler):
    scheduler = make_scheduler()
    past = datetime.now(UTC) - timedelta(seconds=10)
    scheduler.add_job(
        jobs.noop, "interval", seconds=1, id="late", next_run_time=past, misfire_grace_time=1
    )
    scheduler.start()

    ran = wait_for(lambda: rows("late", status=ExecutionStatus.SUCCEEDED))
    missed = rows("late", status=ExecutionStatus.MISSED)

    assert ran[0].run_time > missed[-1].run_time
    assert len(missed) >= 9
    assert all(m.lateness > timedelta(seconds=1) for m in missed)
    assert "misfire grace time (1 s)" in missed[0].reason


def test_misfire_policy_skip_runs_none_of_the_late_fires(make_scheduler):
    scheduler = make_scheduler()
    past = datetime.now(UTC) - timedelta(seconds=5)
    scheduler.add_job(
        jobs.noop,
        "interval",
        seconds=10,
        id="late",
        next_run_time=past,
        misfire_grace_time=1,
        misfire_policy="skip",
    )
    scheduler.start()

    (missed,) = wait_for(lambda: rows("late", status=ExecutionStatus.MISSED))
    scheduler.wait_for_outcomes(5)

    assert missed.run_time == past
    assert rows("late", status=ExecutionStatus.SUCCEEDED) == []


def test_misfire_policy_all_runs_each_late_fire(make_scheduler):
    scheduler = make_scheduler()
    past = datetime.now(UTC) - timedelta(seconds=3.5)
    scheduler.add_job(
        jobs.noop,
        "interval",
        seconds=1,
        id="late",
        next_run_time=past,
        misfire_grace_time=1,
        misfire_policy="all",
        coalesce=False,
    )
    scheduler.start()

    succeeded = finished("late", 4)

    assert [r.run_time for r in succeeded[:4]] == [past + timedelta(seconds=i) for i in range(4)]
    assert rows("late", status=ExecutionStatus.MISSED) == []


def test_arguments_are_refused_when_added_not_when_run(make_scheduler):
    scheduler = make_scheduler()
    with pytest.raises(UnserializableArgument, match=r"args\[0\] is a datetime.datetime"):
        scheduler.add_job(jobs.record, "interval", seconds=1, args=[datetime.now(UTC)])
    assert scheduler.get_jobs() == []


def test_unknown_misfire_policy_is_refused(make_scheduler):
    scheduler = make_scheduler()
    with pytest.raises(ValueError, match="misfire_policy must be one of 'once', 'all', 'skip'"):
        scheduler.add_job(jobs.noop, "interval", seconds=1, misfire_policy="sometimes")


def test_a_crontab_string_is_a_trigger_in_the_scheduler_time_zone(make_scheduler):
    scheduler = make_scheduler()
    scheduler.configure(timezone="Asia/Seoul")
    job = scheduler.add_job(jobs.noop, "0 8 * * *", id="morning")
    assert isinstance(job.trigger, CrontabTrigger)
    assert str(job.trigger) == "crontab[0 8 * * *, Asia/Seoul]"


def test_other_job_stores_are_refused(make_scheduler):
    scheduler = make_scheduler()
    with pytest.raises(TypeError, match="MemoryJobStore cannot be used"):
        scheduler.add_jobstore(MemoryJobStore(), "memory")


def test_the_reference_usage_with_a_second_store_alias(make_scheduler):
    scheduler = make_scheduler()
    scheduler.add_jobstore(DjangoJobStore(), "djangojobstore")
    assert register_events(scheduler) is None  # the scheduler records its own runs

    @scheduler.scheduled_job("interval", seconds=0.2, name="check_campaign_status")
    def check_campaign_status_job():
        SEEN.append("checked")

    scheduler.start()
    wait_for(lambda: "checked" in SEEN)
    assert [job.name for job in scheduler.get_jobs()] == ["check_campaign_status"]


def test_listeners_see_apscheduler_events(make_scheduler):
    scheduler = make_scheduler()
    events = []
    scheduler.add_listener(
        lambda e: events.append(e.code), EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_MISSED
    )
    scheduler.start()
    scheduler.add_job(jobs.noop, "date", run_date=datetime.now(UTC), id="once")
    scheduler.add_job(
        jobs.noop,
        "date",
        run_date=datetime.now(UTC) - timedelta(minutes=1),
        misfire_policy="skip",
        id="late",
    )

    wait_for(lambda: EVENT_JOB_EXECUTED in events and EVENT_JOB_MISSED in events)
    assert EVENT_JOB_SUBMITTED in events


class CustomPoolExecutor(APSThreadPoolExecutor):
    """A subclass may change how jobs run: it gets APScheduler's own submit path."""


def remember_fire_id():
    SEEN.append(current_fire().job_id)


@pytest.mark.parametrize(
    "executor",
    [None, APSThreadPoolExecutor(2), CustomPoolExecutor(2)],
    ids=["ours", "apscheduler-pool", "pool-subclass"],
)
def test_every_executor_path_records_runs_and_tells_listeners(make_scheduler, executor):
    """
    Our pool and APScheduler's run fires directly on their threads; other
    executors go through APScheduler's submit_job. Either way: the same
    ledger rows, current_fire(), and the events listeners expect.
    """
    options = {} if executor is None else {"executors": {"default": executor}}
    scheduler = make_scheduler(**options)
    events = []
    mask = EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR
    scheduler.add_listener(events.append, mask)
    scheduler.start()
    now = datetime.now(UTC)
    scheduler.add_job(remember_fire_id, "date", run_date=now, id="good")
    scheduler.add_job(jobs.fail, "date", run_date=now, args=["nope"], id="bad")

    (good,) = finished("good")
    (bad,) = finished("bad")
    assert scheduler.wait_for_outcomes(5)

    assert SEEN == ["good"]
    assert good.status == ExecutionStatus.SUCCEEDED
    assert good.started_at is not None and good.duration == good.finished_at - good.started_at
    assert bad.status == ExecutionStatus.FAILED
    assert bad.exception == "RuntimeError: nope"
    assert bad.traceback.startswith("Traceback (most recent call last):")
    assert bad.traceback.rstrip().endswith("RuntimeError: nope")
    assert "raise RuntimeError(message)" in bad.traceback
    wait_for(lambda: len([e for e in events if e.code != EVENT_JOB_SUBMITTED]) == 2)
    by_code = {(e.code, e.job_id) for e in events}
    assert {
        (EVENT_JOB_SUBMITTED, "good"),
        (EVENT_JOB_SUBMITTED, "bad"),
        (EVENT_JOB_EXECUTED, "good"),
        (EVENT_JOB_ERROR, "bad"),
    } == by_code
    (error,) = [e for e in events if e.code == EVENT_JOB_ERROR]
    assert isinstance(error.exception, RuntimeError)
    assert "raise RuntimeError(message)" in error.traceback
    assert error.scheduled_run_time == bad.run_time
    assert scheduler.running_fires == 0


def test_unknown_executor_fails_the_fire_not_the_loop(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(jobs.noop, "date", run_date=datetime.now(UTC), id="x", executor="nope")
    scheduler.add_job(jobs.noop, "interval", seconds=0.1, id="tick")

    (row,) = finished("x")
    finished("tick", 2)
    assert row.status == ExecutionStatus.FAILED
    assert "nope" in row.exception


def test_shutdown_interrupts_what_outlives_the_timeout(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(blocked, "date", run_date=datetime.now(UTC), id="hang")
    wait_for(lambda: rows("hang", status=ExecutionStatus.RUNNING))

    scheduler.shutdown(wait=True, timeout=0.2)

    (row,) = rows("hang")
    assert row.status == ExecutionStatus.INTERRUPTED
    assert "stopped before the job finished" in row.reason
    node = SchedulerNode.objects.get(pk=scheduler.identity)
    assert node.stopped_at is not None
    assert not scheduler.running


def test_each_process_has_a_heart_beating_node(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    node = wait_for(lambda: SchedulerNode.objects.filter(pk=scheduler.identity).first())
    first_beat = node.last_heartbeat
    wait_for(lambda: SchedulerNode.objects.get(pk=scheduler.identity).last_heartbeat > first_beat)
    assert node.pid > 0 and node.hostname


def test_blocking_scheduler_runs_in_the_calling_thread(make_scheduler):
    scheduler = make_scheduler(BlockingScheduler)
    scheduler.add_job(jobs.noop, "interval", seconds=0.1, id="tick")
    thread = threading.Thread(target=scheduler.start)
    thread.start()
    try:
        finished("tick", 2)
    finally:
        scheduler.shutdown()
        thread.join(10)
    assert not thread.is_alive()


async def coroutine_job():
    await asyncio.sleep(0)
    SEEN.append(current_fire().job_id)


def test_asyncio_scheduler_runs_coroutines_on_the_loop(make_scheduler):
    async def main():
        scheduler = make_scheduler(AsyncIOScheduler)
        scheduler.add_job(coroutine_job, "interval", seconds=0.1, id="co")
        scheduler.start()
        for _ in range(200):
            if len(SEEN) >= 2:
                break
            await asyncio.sleep(0.05)
        scheduler.shutdown()
        await asyncio.sleep(0.1)

    asyncio.run(main())
    assert SEEN[:2] == ["co", "co"]
    ledger = rows("co")
    # On a loaded machine a 0.1 s fire can come round while the previous one is
    # still on the loop, or the loop can come late: max_instances or coalescing
    # then skips it, with its reason. That is fine; a fire that ran and was not
    # recorded, or one dropped without a reason, is not.
    assert sum(r.status == "succeeded" for r in ledger) >= 2
    others = [r for r in ledger if r.status != "succeeded"]
    assert all(r.status in ("skipped", "missed") and r.reason for r in others), [
        (r.status, r.reason) for r in others
    ]


def test_triggers_without_a_zone_get_the_projects_not_the_machines(make_scheduler, settings):
    from apscheduler.triggers.cron import CronTrigger

    settings.TIME_ZONE = "Asia/Seoul"
    scheduler = BackgroundScheduler()  # no timezone: the project's
    cron = scheduler.add_job(jobs.noop, CronTrigger(hour=8), id="cron")
    crontab = scheduler.add_job(jobs.noop, CrontabTrigger("0 8 * * *"), id="crontab")
    explicit = scheduler.add_job(
        jobs.noop, CrontabTrigger("0 8 * * *", "Europe/Berlin"), id="explicit"
    )
    assert str(cron.trigger.timezone) == "Asia/Seoul"
    assert str(crontab.trigger) == "crontab[0 8 * * *, Asia/Seoul]"
    assert str(explicit.trigger) == "crontab[0 8 * * *, Europe/Berlin]"


def test_run_now_goes_through_the_database_and_keeps_the_schedule(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(remember_fire, "interval", hours=1, id="hourly")
    row = DjangoJob.objects.get(pk="hourly")
    scheduled = row.next_run_time

    request = row.run_now(requested_by="admin")  # what the admin action does

    assert request.status == ExecutionStatus.PENDING
    done = wait_for(
        lambda: DjangoJobExecution.objects.filter(pk=request.pk, status="succeeded").first()
    )
    assert done.manual and "asked for by admin" in done.reason
    assert done.node == scheduler.identity
    assert SEEN[0].execution_id == request.pk
    assert DjangoJob.objects.get(pk="hourly").next_run_time == scheduled


def test_run_now_of_a_removed_job_fails_with_the_reason(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(jobs.noop, "interval", hours=1, id="soon-gone")
    scheduler.add_job(jobs.noop, "interval", hours=1, id="other")
    scheduler.pause()  # so that the request cannot be taken before the job is gone
    request = DjangoJob.objects.get(pk="soon-gone").run_now()
    DjangoJob.objects.filter(pk="soon-gone").delete()
    # Another job's request makes the scheduler look at the pending ones.
    DjangoJob.objects.get(pk="other").run_now()
    scheduler.resume()

    failed = wait_for(
        lambda: DjangoJobExecution.objects.filter(pk=request.pk, status="failed").first()
    )
    assert "removed before a scheduler process could run it" in failed.reason


def test_run_now_respects_max_instances(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(blocked, "interval", hours=1, id="busy")
    job = DjangoJob.objects.get(pk="busy")
    job.run_now()
    wait_for(lambda: rows("busy", status=ExecutionStatus.RUNNING))

    second = job.run_now()

    skipped = wait_for(
        lambda: DjangoJobExecution.objects.filter(pk=second.pk, status="skipped").first()
    )
    assert "max_instances" in skipped.reason


def test_pause_until_resumes_by_itself(make_scheduler):
    scheduler = make_scheduler()
    scheduler.start()
    scheduler.add_job(jobs.noop, "interval", seconds=0.2, id="tick")
    job = DjangoJob.objects.get(pk="tick")
    job.pause(until=datetime.now(UTC) + timedelta(seconds=0.5))
    scheduler.wait_for_outcomes(5)
    paused_at = datetime.now(UTC)

    resumed = wait_for(lambda: DjangoJob.objects.get(pk="tick").next_run_time)
    assert DjangoJob.objects.get(pk="tick").paused_until is None
    finished("tick", 1)
    assert resumed > paused_at


def test_jobs_no_process_declares_are_flagged_orphaned(make_scheduler):
    first = make_scheduler()
    first.add_job(jobs.noop, "interval", hours=1, id="old-job")
    first.start()
    first.shutdown()

    second = make_scheduler()
    second.add_job(jobs.noop, "interval", hours=1, id="new-job")
    second.start()

    orphan = wait_for(lambda: DjangoJob.objects.filter(pk="old-job", orphaned_at__isnull=False))
    assert orphan
    assert DjangoJob.objects.get(pk="new-job").orphaned_at is None
    node = SchedulerNode.objects.get(pk=second.identity)
    assert node.declared == ["new-job"]


def test_started_during_app_loading_it_waits_for_the_apps(make_scheduler, monkeypatch):
    """As from AppConfig.ready(): no query before Django has loaded every app."""
    from django.apps import apps

    monkeypatch.setattr(apps, "ready", False)
    scheduler = make_scheduler()
    scheduler.add_job(jobs.noop, "interval", seconds=0.1, id="tick")
    # Forced: under pytest (without xdist) a start() while loading is refused.
    scheduler.start(force=True)

    threading.Event().wait(0.3)
    assert not scheduler.running  # nothing started, nothing written yet
    assert scheduler._heart is None
    apps.ready = True  # what Django does once every ready() has run
    finished("tick", 1)
    assert scheduler.running
