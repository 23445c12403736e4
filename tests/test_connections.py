"""
Every idempotent store operation survives a dropped connection.

The connection is really dropped: the server terminates the backend, as it
does on a restart, an idle timeout or an operator's kill.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from django.db import OperationalError, connection, transaction

from django_metronome.models import DjangoJob
from django_metronome.store.db import close_connection
from tests.conftest import server_db_only
from tests.testapp import jobs

pytestmark = [pytest.mark.django_db(transaction=True), server_db_only()]

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def kill_current_connection() -> None:
    """Have the server drop this thread's connection, from a second connection."""
    connection.ensure_connection()
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        cursor = other.cursor()
        if connection.vendor == "postgresql":
            pid = connection.connection.info.backend_pid
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        else:
            cursor.execute(f"KILL {connection.connection.thread_id()}")
    finally:
        other.close()


def existing_job(make_job, store, **kwargs):
    job = make_job(jobs.noop, next_run_time=T0, **kwargs)
    store.add_job(job)
    return job


OPERATIONS = {
    "lookup_job": lambda store, job: store.lookup_job(job.id),
    "get_due_jobs": lambda store, job: store.get_due_jobs(T0),
    "get_next_run_time": lambda store, job: store.get_next_run_time(),
    "get_all_jobs": lambda store, job: store.get_all_jobs(),
    "update_job": lambda store, job: store.update_job(job),
    "remove_job": lambda store, job: store.remove_job(job.id),
    "remove_all_jobs": lambda store, job: store.remove_all_jobs(),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_operation_retries_once_on_a_new_connection(store, make_job, caplog, operation):
    job = existing_job(make_job, store)
    kill_current_connection()

    with caplog.at_level(logging.WARNING, logger="django_metronome"):
        result = OPERATIONS[operation](store, job)

    if operation == "lookup_job":
        assert result.id == job.id
    elif operation == "get_due_jobs":
        assert [j.id for j in result] == [job.id]
    elif operation == "get_next_run_time":
        assert result == T0
    elif operation == "get_all_jobs":
        assert [j.id for j in result] == [job.id]
    elif operation in ("remove_job", "remove_all_jobs"):
        assert not DjangoJob.objects.exists()
    (message,) = [r.getMessage() for r in caplog.records]
    assert "retrying once on a new connection" in message


def test_add_job_retries_and_adds_exactly_one_row(store, make_job):
    kill_current_connection()
    store.add_job(make_job(jobs.noop, id="fresh", next_run_time=T0))
    assert list(DjangoJob.objects.values_list("id", flat=True)) == ["fresh"]


def test_inside_a_transaction_nothing_is_retried(store, make_job):
    existing_job(make_job, store)
    with pytest.raises(OperationalError), transaction.atomic():
        kill_current_connection()
        store.get_all_jobs()


def test_a_connection_that_stays_down_raises(store, make_job, monkeypatch):
    """One retry, not a loop: the second failure reaches the caller."""
    existing_job(make_job, store)
    calls = []

    def always_fails(*args, **kwargs):
        calls.append(1)
        kill_current_connection()
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(type(store.jobs), "in_run_order", always_fails, raising=False)
    with pytest.raises(OperationalError):
        store.get_all_jobs()
    assert len(calls) == 2
    close_connection()  # leave a usable connection for the test's teardown
