"""
Input refused when the job is added, with a message naming what is wrong.

Each refusal is tried through every way of adding a job: a running
scheduler's ``add_job`` and ``@scheduled_job`` (which write to the database),
a scheduler not started yet (which only declares), and
``django_metronome.add_job`` (which writes at once, without a scheduler). The
message is the same on SQLite, PostgreSQL and MariaDB, and nothing is stored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler as APSBackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from django_metronome import add_job, checks
from django_metronome.exceptions import InvalidJob, InvalidTrigger
from django_metronome.jobstores import DjangoJobStore
from django_metronome.models import DjangoJob
from django_metronome.schedulers import BackgroundScheduler
from tests.testapp import jobs

pytestmark = pytest.mark.django_db(transaction=True)

SOON = datetime.now(UTC) + timedelta(days=1)
LONG = "x" * 256


@pytest.fixture(autouse=True)
def fast_settings(settings):
    settings.METRONOME = {"POLL_INTERVAL": 0.05, "HEARTBEAT_INTERVAL": 0.2, "DEAD_AFTER": 2}


@pytest.fixture
def running():
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start()
    yield scheduler
    scheduler.shutdown(wait=True, timeout=5)


def add_with(path, running_scheduler, trigger, **options):
    """Add a job through one of the ways, with a function each way can store."""
    if path == "api":
        return add_job("tests.testapp.jobs:noop", trigger, **options)
    if path == "pending":
        return BackgroundScheduler(timezone=UTC).add_job(jobs.noop, trigger, **options)
    scheduler = running_scheduler()
    if path == "add_job":
        return scheduler.add_job(jobs.noop, trigger, **options)
    # @scheduled_job: a nested function, as in the reference usage.
    options.setdefault("name", "nested")

    @scheduler.scheduled_job(trigger, **options)
    def nested():
        pass

    return nested


PATHS = ["add_job", "scheduled_job", "pending", "api"]

REFUSALS = {
    "interval below the floor": (
        ("interval",),
        {"seconds": 0.001},
        InvalidTrigger,
        re.escape("the interval is 0.001 s, shorter than METRONOME['MIN_INTERVAL'] (1 s)"),
    ),
    "negative interval": (
        ("interval",),
        {"seconds": -5},
        InvalidTrigger,
        "the interval is -5 s; it must be positive",
    ),
    "negative interval instance": (
        (IntervalTrigger(minutes=-1, timezone=UTC),),
        {},
        InvalidTrigger,
        "the interval is -60 s; it must be positive",
    ),
    "start after end": (
        ("interval",),
        {"minutes": 5, "start_date": SOON + timedelta(days=2), "end_date": SOON},
        InvalidTrigger,
        "Bad interval trigger: start_date .* is after end_date .*, so it would never fire",
    ),
    "cron start after end": (
        ("cron",),
        {"hour": 8, "start_date": SOON + timedelta(days=2), "end_date": SOON},
        InvalidTrigger,
        "Bad cron trigger: start_date .* is after end_date",
    ),
    "id too long": (
        ("date",),
        {"run_date": SOON, "id": LONG},
        InvalidJob,
        "The job id is 256 characters long, more than the 255 a job id may have",
    ),
    "name too long": (
        ("date",),
        {"run_date": SOON, "id": "named", "name": "n" * 300},
        InvalidJob,
        "The job name is 300 characters long, more than the 255 a job name may have",
    ),
    "empty id": (
        ("date",),
        {"run_date": SOON, "id": ""},
        InvalidJob,
        "The job id '' is empty or blank",
    ),
    "blank id": (
        ("date",),
        {"run_date": SOON, "id": "  "},
        InvalidJob,
        "The job id '  ' is empty or blank",
    ),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_at_once_and_nothing_stored(path, case, running):
    (trigger,), options, error, message = REFUSALS[case]
    with pytest.raises(error, match=message):
        add_with(path, lambda: running, trigger, **options)
    assert not DjangoJob.objects.exists()
    assert running.running
    assert running.get_jobs() == []


def test_the_floor_is_a_setting(settings, running):
    settings.METRONOME = {**settings.METRONOME, "MIN_INTERVAL": 0.5}
    running.add_job(jobs.noop, "interval", seconds=0.5, id="half")
    with pytest.raises(InvalidTrigger, match=re.escape("METRONOME['MIN_INTERVAL'] (0.5 s)")):
        running.add_job(jobs.noop, "interval", seconds=0.4, id="faster")
    assert list(DjangoJob.objects.values_list("id", flat=True)) == ["half"]


def test_an_interval_inside_a_combination_is_checked_too():
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.cron import CronTrigger

    trigger = OrTrigger([CronTrigger(hour=8), IntervalTrigger(seconds=0.01)])
    with pytest.raises(InvalidTrigger, match="shorter than METRONOME"):
        add_job("tests.testapp.jobs:noop", trigger, id="combined")


def test_ids_and_names_at_the_limit_are_stored(running):
    longest = "é" * 255  # characters, not bytes: MariaDB's utf8mb4 column holds them
    add_job("tests.testapp.jobs:noop", "date", run_date=SOON, id=longest, name=longest)
    running.add_job(jobs.noop, "date", run_date=SOON, id="i" * 255, name="n" * 255)
    assert DjangoJob.objects.count() == 2


def test_a_name_made_too_long_later_is_refused(running):
    running.add_job(jobs.noop, "date", run_date=SOON, id="renamed")
    with pytest.raises(InvalidJob, match="The job name is 256 characters long"):
        running.modify_job("renamed", name="n" * 256)
    with pytest.raises(InvalidTrigger, match="it must be positive"):
        running.reschedule_job("renamed", trigger="interval", seconds=-1)
    row = DjangoJob.objects.get(pk="renamed")
    assert row.name == "noop"
    assert row.state["trigger"]["type"] == "date"


def test_the_store_refuses_a_long_id_from_any_scheduler():
    """APScheduler's own scheduler, with our store: the same message, before any query."""
    store = DjangoJobStore()
    store.start(APSBackgroundScheduler(timezone=UTC), "default")
    job = Job(
        APSBackgroundScheduler(timezone=UTC),
        id=LONG,
        func="tests.testapp.jobs:noop",
        trigger=IntervalTrigger(minutes=5, timezone=UTC),
        executor="default",
        args=(),
        kwargs={},
        name="ok",
        misfire_grace_time=1,
        coalesce=True,
        max_instances=1,
        next_run_time=SOON,
    )
    with pytest.raises(InvalidJob, match="more than the 255 a job id may have"):
        store.add_job(job)
    assert not DjangoJob.objects.exists()


# --- the keyword forms explain themselves as crontab strings do ----------------------


@pytest.mark.parametrize(
    ("trigger", "options", "message"),
    [
        (
            "cron",
            {"day_of_week": "MOM"},
            re.escape(
                "Bad cron trigger: the day_of_week field has 'MOM', which is not valid "
                '(Invalid weekday name "MOM"); it takes 0-6 or mon-sun (0 is Monday, unlike '
                "crontab strings). Did you mean 'mon'?"
            ),
        ),
        (
            "cron",
            {"day_of_week": "mon-fry"},
            re.escape(
                "Bad cron trigger: the day_of_week field has 'mon-fry', which is not valid "
                '(Invalid weekday name "fry"); it takes 0-6 or mon-sun (0 is Monday, unlike '
                "crontab strings). Did you mean 'mon-fri'?"
            ),
        ),
        ("cron", {"month": "Janu"}, "the month field has 'Janu'.* Did you mean 'jan'\\?"),
        ("cron", {"hour": "25"}, "the hour field has '25'.*the maximum value \\(23\\).* 0-23"),
        (
            "cron",
            {"hour": 8, "timezone": "Asia/Seol"},
            re.escape(
                "Bad cron trigger: unknown time zone 'Asia/Seol'; did you mean 'Asia/Seoul'?"
            ),
        ),
        (
            "interval",
            {"minutes": 5, "timezone": "Europe/Berln"},
            re.escape(
                "Bad interval trigger: unknown time zone 'Europe/Berln'; did you mean "
                "'Europe/Berlin'?"
            ),
        ),
        (
            "0 8 * * *",
            {"timezone": "Asia/Seol"},
            re.escape("Unknown time zone 'Asia/Seol'; did you mean 'Asia/Seoul'?"),
        ),
        ("cron", {"hourr": 8}, "it takes no argument 'hourr'. Did you mean 'hour'\\?"),
        ("interval", {"second": 5}, "it takes no argument 'second'. Did you mean 'seconds'\\?"),
        (
            "date",
            {"run_date": "2030-13-01"},
            "Bad date trigger: run_date='2030-13-01' is not a date and time "
            "\\(month must be in 1..12\\)",
        ),
        ("cronn", {}, "Unknown trigger 'cronn'. Did you mean 'cron'\\?"),
    ],
)
def test_keyword_forms_name_the_field_and_the_value(trigger, options, message):
    for path in ("pending", "api"):
        with pytest.raises(ValueError, match=message):
            add_with(path, None, trigger, **options)


def test_the_errors_keep_apschedulers_exception_types():
    """Code that caught APScheduler's TypeError or LookupError still catches ours."""
    scheduler = BackgroundScheduler(timezone=UTC)
    with pytest.raises(TypeError):
        scheduler.add_job(jobs.noop, "cron", hourr=8)
    with pytest.raises(LookupError):
        scheduler.add_job(jobs.noop, "cronn")


def test_an_argument_that_is_not_json_is_named_with_the_right_article():
    with pytest.raises(ValueError, match=r"args\[0\] is an object, which cannot be stored"):
        add_job("tests.testapp.jobs:noop", "date", run_date=SOON, args=[object()], id="obj")
    with pytest.raises(ValueError, match=r"args\[0\] is a set, which cannot be stored"):
        add_job("tests.testapp.jobs:noop", "date", run_date=SOON, args=[{1}], id="set")


def test_the_settings_check_suggests_zones_too(settings):
    settings.METRONOME = {"TIME_ZONE": "Asia/Seol"}
    (error,) = checks.check_settings()
    assert error.id == "django_metronome.E003"
    assert "Did you mean 'Asia/Seoul'?" in error.hint
