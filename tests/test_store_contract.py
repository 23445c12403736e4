"""
APScheduler's job store contract, method by method, against DjangoJobStore.

Runs on whichever database the settings select (the test command runs it on
SQLite, PostgreSQL and MariaDB).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError

from django_metronome.models import DjangoJob
from tests.conftest import BERLIN
from tests.testapp import jobs

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=BERLIN)


def ids(jobs_: list) -> list[str]:
    return [job.id for job in jobs_]


# --- add and lookup -----------------------------------------------------------


@pytest.mark.parametrize(
    ("func", "expected_ref"),
    [
        (jobs.noop, "tests.testapp.jobs:noop"),
        ("tests.testapp.jobs:noop", "tests.testapp.jobs:noop"),
        (jobs.Tasks.class_method, "tests.testapp.jobs:Tasks.class_method"),
        (jobs.Tasks.static_method, "tests.testapp.jobs:Tasks.static_method"),
    ],
)
def test_add_and_lookup_round_trip(store, make_job, func, expected_ref):
    job = make_job(func, args=(1, "two"), kwargs={"three": [3.0, None, True]})
    store.add_job(job)

    found = store.lookup_job(job.id)

    assert found is not job
    assert found.id == "téstïd"
    assert found.func_ref == expected_ref
    assert found.func == func if callable(func) else found.func is jobs.noop
    assert found.args == (1, "two")
    assert found.kwargs == {"three": [3.0, None, True]}
    assert found.name == "a job"
    assert (found.executor, found.misfire_grace_time, found.coalesce, found.max_instances) == (
        "default",
        1,
        True,
        1,
    )
    assert found.next_run_time == T0
    assert found.next_run_time.tzinfo == BERLIN
    assert found._jobstore_alias == "default"
    assert found._scheduler is store._scheduler


def test_lookup_missing_job_returns_none(store):
    assert store.lookup_job("nope") is None


def test_add_conflicting_id_raises(store, make_job):
    store.add_job(make_job())
    with pytest.raises(ConflictingIdError) as info:
        store.add_job(make_job(next_run_time=T0 + timedelta(hours=1)))
    assert str(info.value) == repr("Job identifier (téstïd) conflicts with an existing job")
    # The first job is untouched.
    assert store.lookup_job("téstïd").next_run_time == T0


def test_long_unicode_id(store, make_job):
    job_id = "ジョブ-" + "é" * 250
    store.add_job(make_job(id=job_id))
    assert store.lookup_job(job_id).id == job_id


def test_paused_job_round_trips_without_next_run_time(store, make_job):
    store.add_job(make_job(next_run_time=None))
    assert store.lookup_job("téstïd").next_run_time is None


# --- ordering and due jobs -----------------------------------------------------------


@pytest.fixture
def three_jobs_and_a_paused_one(store, make_job):
    # Inserted out of order; one microsecond apart where it matters.
    store.add_job(make_job(id="c", next_run_time=T0 + timedelta(microseconds=1)))
    store.add_job(make_job(id="paused", next_run_time=None))
    store.add_job(make_job(id="b", next_run_time=T0))
    store.add_job(make_job(id="a", next_run_time=T0 + timedelta(seconds=30)))
    store.add_job(make_job(id="0-paused", next_run_time=None))


@pytest.mark.usefixtures("three_jobs_and_a_paused_one")
def test_get_all_jobs_orders_by_next_run_time_paused_last(store):
    assert ids(store.get_all_jobs()) == ["b", "c", "a", "0-paused", "paused"]


def test_get_all_jobs_breaks_ties_by_id(store, make_job):
    for job_id in ["z", "m", "a"]:
        store.add_job(make_job(id=job_id, next_run_time=T0))
    assert ids(store.get_all_jobs()) == ["a", "m", "z"]
    assert ids(store.get_due_jobs(T0)) == ["a", "m", "z"]


@pytest.mark.usefixtures("three_jobs_and_a_paused_one")
def test_get_due_jobs_is_inclusive_of_now_to_the_microsecond(store):
    assert ids(store.get_due_jobs(T0 - timedelta(microseconds=1))) == []
    assert ids(store.get_due_jobs(T0)) == ["b"]
    assert ids(store.get_due_jobs(T0 + timedelta(microseconds=1))) == ["b", "c"]
    assert ids(store.get_due_jobs(T0 + timedelta(days=1))) == ["b", "c", "a"]


@pytest.mark.usefixtures("three_jobs_and_a_paused_one")
def test_get_due_jobs_accepts_any_time_zone(store):
    assert ids(store.get_due_jobs(T0.astimezone(UTC))) == ["b"]


@pytest.mark.usefixtures("three_jobs_and_a_paused_one")
def test_get_next_run_time_ignores_paused_jobs(store):
    assert store.get_next_run_time() == T0


def test_get_next_run_time_with_no_jobs_or_only_paused_ones(store, make_job):
    assert store.get_next_run_time() is None
    store.add_job(make_job(next_run_time=None))
    assert store.get_next_run_time() is None


def test_next_run_time_keeps_microseconds(store, make_job):
    when = T0 + timedelta(microseconds=123457)
    store.add_job(make_job(next_run_time=when))
    assert store.get_next_run_time() == when
    assert store.lookup_job("téstïd").next_run_time.microsecond == 123457


# --- update ----------------------------------------------------------------------


def test_update_job_replaces_everything(store, make_job):
    store.add_job(make_job())
    changed = make_job(
        jobs.record,
        args=("x",),
        kwargs={"y": 1},
        name="renamed",
        executor="other",
        misfire_grace_time=None,
        coalesce=False,
        max_instances=3,
        next_run_time=T0 + timedelta(days=1, microseconds=5),
    )
    store.update_job(changed)

    found = store.lookup_job("téstïd")
    assert found.func is jobs.record
    assert (found.args, found.kwargs, found.name, found.executor) == (
        ("x",),
        {"y": 1},
        "renamed",
        "other",
    )
    assert (found.misfire_grace_time, found.coalesce, found.max_instances) == (None, False, 3)
    assert found.next_run_time == T0 + timedelta(days=1, microseconds=5)


def test_update_missing_job_raises(store, make_job):
    with pytest.raises(JobLookupError) as info:
        store.update_job(make_job(id="ghost"))
    assert "No job by the id of ghost was found" in str(info.value)


@pytest.mark.parametrize(
    ("first", "second", "expected_order", "expected_next"),
    [
        # (next run of job "a" after the update, of job "b"), order, next run time
        (None, None, ["a", "b"], None),
        (None, 2, ["b", "a"], 2),
        (2, None, ["a", "b"], 2),
        (1, 2, ["a", "b"], 1),
        (2, 1, ["b", "a"], 1),
        (1, 1, ["a", "b"], 1),
    ],
)
def test_update_job_changes_order_and_next_run_time(
    store, make_job, first, second, expected_order, expected_next
):
    def at(hours):
        return None if hours is None else T0 + timedelta(hours=hours)

    store.add_job(make_job(id="a", next_run_time=T0))
    store.add_job(make_job(id="b", next_run_time=T0 + timedelta(minutes=1)))
    store.update_job(make_job(id="a", next_run_time=at(first)))
    store.update_job(make_job(id="b", next_run_time=at(second)))

    assert ids(store.get_all_jobs()) == expected_order
    assert store.get_next_run_time() == at(expected_next)


# --- remove ----------------------------------------------------------------------


def test_remove_job(store, make_job):
    store.add_job(make_job(id="a"))
    store.add_job(make_job(id="b"))
    store.remove_job("a")
    assert ids(store.get_all_jobs()) == ["b"]
    assert store.lookup_job("a") is None


def test_remove_missing_job_raises(store):
    with pytest.raises(JobLookupError) as info:
        store.remove_job("ghost")
    assert "No job by the id of ghost was found" in str(info.value)


def test_remove_all_jobs(store, make_job):
    store.add_job(make_job(id="a"))
    store.add_job(make_job(id="b", next_run_time=None))
    store.remove_all_jobs()
    assert store.get_all_jobs() == []
    assert store.get_next_run_time() is None


def test_repr(store):
    assert repr(store) == "<DjangoJobStore (database='default')>"


# --- a row that cannot be loaded -------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"func_ref": "tests.testapp.jobs:vanished"}, "error looking up object"),
        ({"func_ref": "tests.no_such_module:func"}, "could not import module"),
        ({"func_ref": "os:system"}, "calls os:system, which is not in an installed app"),
        ({"state": {"version": 99}}, "version 99, newer than this release"),
        ({"state": {"version": 1, "trigger": {"type": "lunar"}}}, "Unknown trigger type 'lunar'"),
        ({"state": ["not", "a", "dict"]}, "not a versioned django-metronome job state"),
    ],
)
def test_job_that_fails_to_load_is_quarantined_not_deleted(store, make_job, caplog, change, reason):
    store.add_job(make_job(id="good", next_run_time=T0 + timedelta(hours=1)))
    store.add_job(make_job(id="bad", next_run_time=T0))
    DjangoJob.objects.filter(pk="bad").update(**change)

    with caplog.at_level(logging.ERROR, logger="django_metronome"):
        assert ids(store.get_all_jobs()) == ["good"]
        assert ids(store.get_due_jobs(T0 + timedelta(days=1))) == ["good"]
        assert store.lookup_job("bad") is None
    assert store.get_next_run_time() == T0 + timedelta(hours=1)

    row = DjangoJob.objects.get(pk="bad")
    assert row.is_quarantined
    assert reason in row.quarantine_reason
    # Logged once, although three calls met the row.
    messages = [r.getMessage() for r in caplog.records if "'bad'" in r.getMessage()]
    assert len(messages) == 1
    assert "quarantined" in messages[0]
    assert reason in messages[0]


def test_quarantined_job_keeps_its_id_and_is_released_by_update(store, make_job):
    store.add_job(make_job(id="bad"))
    DjangoJob.objects.filter(pk="bad").update(func_ref="tests.testapp.jobs:vanished")
    assert store.get_all_jobs() == []

    with pytest.raises(ConflictingIdError):
        store.add_job(make_job(id="bad"))

    store.update_job(make_job(id="bad"))
    assert ids(store.get_all_jobs()) == ["bad"]
    assert not DjangoJob.objects.get(pk="bad").is_quarantined


def test_quarantined_job_can_be_removed(store, make_job):
    store.add_job(make_job(id="bad"))
    DjangoJob.objects.filter(pk="bad").update(func_ref="tests.testapp.jobs:vanished")
    store.get_all_jobs()
    store.remove_job("bad")
    assert not DjangoJob.objects.filter(pk="bad").exists()
