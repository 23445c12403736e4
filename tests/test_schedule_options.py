"""
Jitter and business days through the store: add_job's options, the stored JSON, the ledger.

Fires are claimed by hand (``claims.claim_due_fires``) with the clock as an
argument, on every database of the test run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

import django_metronome
from django_metronome.loop.declare import JobSpec
from django_metronome.models import DjangoJob, DjangoJobExecution, ExecutionStatus
from django_metronome.schedulers import BackgroundScheduler
from django_metronome.store import claims
from django_metronome.time.calendars import BusinessDays
from django_metronome.time.jitter import JitteredTrigger
from django_metronome.time.preview import next_fire_times
from django_metronome.time.wrappers import with_exclusions
from tests.claiming import plan_once, started_store
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SEOUL = ZoneInfo("Asia/Seoul")


def plan(job, at):
    """The scheduler loop's plan: the default one, with the business-day exclusions."""
    return with_exclusions(plan_once(job, at), job.trigger, job.next_run_time)


def claim(at: datetime):
    return claims.claim_due_fires(
        using="default",
        node="node-a",
        now=at,
        limit=100,
        declared=[],
        load=started_store().load_rows,
        plan=plan,
    )


def rows(job_id: str):
    return list(
        DjangoJobExecution.objects.filter(job_id=job_id)
        .order_by("run_time")
        .values_list("run_time", "nominal_time", "status", "reason")
    )


def test_jitter_is_stored_deterministic_and_the_ledger_keeps_both_times():
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    job = django_metronome.add_job(
        "tests.testapp.jobs:noop",
        "interval",
        minutes=10,
        start_date=start,
        jitter=240,
        id="jittered",
    )
    assert isinstance(job.trigger, JitteredTrigger)
    row = DjangoJob.objects.get(id="jittered")
    assert row.state["trigger"]["type"] == "jittered"
    assert row.state["trigger"]["key"] == "jittered"
    # Every process and every preview computes the same times.
    again = BackgroundScheduler().build_job(
        JobSpec.of(
            "tests.testapp.jobs:noop",
            "interval",
            minutes=10,
            start_date=start,
            jitter=240,
            id="jittered",
        ),
        declared=False,
    )
    now = datetime.now(UTC)
    assert row.next_fire_times(5, now=now) == next_fire_times(again.trigger, 5, now)
    fire = row.next_run_time
    assert fire == job.next_run_time
    nominal = job.trigger.nominal_of(fire)
    assert timedelta(0) <= fire - nominal < timedelta(seconds=240)

    claim(fire + timedelta(seconds=1))
    ((run_time, nominal_time, status, _),) = rows("jittered")
    assert status == ExecutionStatus.CLAIMED
    assert run_time == fire
    assert nominal_time == (nominal if nominal != fire else None)
    assert (nominal - start) % timedelta(minutes=10) == timedelta(0)


def test_holiday_fires_are_skipped_in_the_ledger_with_the_holidays_name():
    # A schedule on Korean business days, claimed at its fire before a holiday.
    korea = holidays.country_holidays("KR")
    today = datetime.now(SEOUL).date()
    # A business day whose next day is a holiday (not a weekend), within two years.
    day = today - timedelta(days=400)
    while not (day.weekday() < 4 and day not in korea and (day + timedelta(days=1)) in korea):
        day += timedelta(days=1)
    eight = datetime(day.year, day.month, day.day, 8, tzinfo=SEOUL)
    job = django_metronome.add_job(
        "tests.testapp.jobs:noop",
        "cron",
        hour=8,
        timezone=SEOUL,
        exclude=korea,
        id="workdays",
        next_run_time=eight,
    )
    assert isinstance(job.trigger, BusinessDays)
    assert DjangoJob.objects.get(id="workdays").time_zone == "Asia/Seoul"  # the wrapped zone
    assert (
        DjangoJob.objects.get(id="workdays").describe_schedule().endswith("on Korean business days")
    )
    claim(eight + timedelta(seconds=1))
    found = rows("workdays")
    assert found[0][:3] == (eight, None, ExecutionStatus.CLAIMED)
    holiday = day + timedelta(days=1)
    skipped = [r for r in found if r[2] == ExecutionStatus.SKIPPED]
    assert skipped, found
    assert skipped[0][0] == datetime(holiday.year, holiday.month, holiday.day, 8, tzinfo=SEOUL)
    english = holidays.country_holidays("KR", language="en_US")  # the ledger's language
    assert skipped[0][3] == f"Skipped: not a business day ({english.get(holiday)})."
    following = DjangoJob.objects.get(id="workdays").next_run_time.astimezone(SEOUL)
    assert following.date() > holiday and following.date() not in korea


def test_bad_options_are_refused_when_the_job_is_added():
    with pytest.raises(ValueError, match="needs exclude="):
        django_metronome.add_job("tests.testapp.jobs:noop", "cron", hour=8, on_excluded="next")
    with pytest.raises(ValueError, match="Unknown business-day rule"):
        django_metronome.add_job(
            "tests.testapp.jobs:noop", "cron", hour=8, exclude=[date(2026, 1, 1)], on_excluded="x"
        )
    assert not DjangoJob.objects.exists()


# --- through the scheduler loop: real threads, the real database, short intervals ----------


@pytest.fixture
def fast(settings):
    settings.METRONOME = {
        "POLL_INTERVAL": 0.05,
        "HEARTBEAT_INTERVAL": 0.2,
        "DEAD_AFTER": 2,
        "SHUTDOWN_TIMEOUT": 2,
        "MIN_INTERVAL": 0.05,
    }
    scheduler = BackgroundScheduler(timezone=UTC)
    yield scheduler
    scheduler.shutdown(wait=True)


def test_the_loop_runs_jittered_fires_and_ends_a_job_after_max_runs(fast):
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    fast.add_job(
        "tests.testapp.jobs:noop",
        "interval",
        seconds=0.3,
        start_date=start,
        jitter=0.2,
        id="spread",
    )
    fast.add_job(
        "tests.testapp.jobs:noop", "interval", seconds=0.1, start_date=start, max_runs=2, id="two"
    )
    fast.start()
    spread = wait_for(
        lambda: r if len(r := [x for x in rows("spread") if x[2] == "succeeded"]) >= 3 else None
    )
    for run_time, nominal, _, _ in spread:
        nominal = nominal or run_time
        assert timedelta(0) <= run_time - nominal < timedelta(seconds=0.2)
        assert (nominal - start) % timedelta(seconds=0.3) == timedelta(0)
    wait_for(lambda: DjangoJob.objects.get(id="two").next_run_time is None)
    fast.wait_for_outcomes(5)
    assert [status for _, _, status, _ in rows("two")].count("succeeded") == 2
    assert DjangoJob.objects.filter(id="two").exists()  # finished, kept


def test_the_job_page_lists_the_jittered_next_fires(admin_client):
    from django_metronome.admin.base import format_in_zone

    django_metronome.add_job(
        "tests.testapp.jobs:noop", "cron", hour=8, timezone=SEOUL, jitter=600, id="morning"
    )
    row = DjangoJob.objects.get(id="morning")
    fires = row.next_fire_times(3)
    assert all(fire.hour == 8 and fire.minute < 10 for fire in fires)
    assert any(fire.second or fire.minute for fire in fires)  # not the nominal 08:00
    body = admin_client.get("/admin/django_metronome/djangojob/morning/change/").content.decode()
    for fire in fires:
        assert format_in_zone(fire, "Asia/Seoul") in body
    assert row.describe_schedule().endswith(", up to 10 min later")


def test_redeclaring_a_wrapped_interval_keeps_its_stored_anchor(settings):
    settings.METRONOME = {"POLL_INTERVAL": 0.05, "SHUTDOWN_TIMEOUT": 2, "MIN_INTERVAL": 0.05}
    options = {"hours": 1, "jitter": 60, "exclude": [date(2000, 1, 1)], "max_runs": 5}

    def declare():
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job("tests.testapp.jobs:noop", "interval", id="hourly", **options)
        return scheduler

    first = declare()
    first.start()
    stored = DjangoJob.objects.get(pk="hourly")
    first.shutdown()
    second = declare()  # a little later: "one hour from now" has moved
    second.start()
    second.shutdown()
    again = DjangoJob.objects.get(pk="hourly")
    assert again.state["trigger"] == stored.state["trigger"]
    assert again.next_run_time == stored.next_run_time
    description = again.describe_schedule()
    assert description.startswith("Every hour (UTC) on business days, except 1 date")
    assert description.endswith(", at most 5 successful runs, up to 1 min later")


def test_a_cron_window_is_honoured_and_shown():
    start = datetime(2026, 5, 1, tzinfo=SEOUL)
    end = datetime(2026, 5, 3, 23, tzinfo=SEOUL)
    job = BackgroundScheduler(timezone=UTC).build_job(
        JobSpec.of(
            "tests.testapp.jobs:noop",
            "cron",
            hour=8,
            timezone=SEOUL,
            start_date=start,
            end_date=end,
            id="window",
        ),
        declared=False,
    )
    fires = next_fire_times(job.trigger, 10, datetime(2026, 4, 1, tzinfo=SEOUL))
    assert [f.day for f in fires] == [1, 2, 3]
    assert str(job.trigger).endswith(
        "from 2026-05-01 00:00:00+09:00 until 2026-05-03 23:00:00+09:00"
    )
