"""
The claim and the ledger's transitions cost a fixed number of queries per batch.

Each budget is pinned for 5 fires and for 50: a change that adds a query per
fire (or per job) fails here, on every database of the run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

import django_metronome
from django_metronome.models import DjangoJobExecution, ExecutionStatus
from django_metronome.store import claims, ledger, nodes
from django_metronome.store.jobstore import DjangoJobStore
from django_metronome.store.ledger import Outcome
from tests.claiming import plan_once, started_store

pytestmark = pytest.mark.django_db(transaction=True)

SIZES = [5, 50]


def budget(**per_vendor: int) -> int:
    return per_vendor[connection.vendor]


@pytest.fixture
def store() -> DjangoJobStore:
    return started_store()


def due(count: int, kind: str) -> datetime:
    now = datetime.now(UTC).replace(microsecond=0)
    for number in range(count):
        if kind == "once":
            django_metronome.add_job(
                "tests.testapp.jobs:noop",
                "date",
                run_date=now - timedelta(seconds=1),
                id=f"job-{number}",
            )
        else:
            django_metronome.add_job(
                "tests.testapp.jobs:noop",
                "interval",
                seconds=60,
                id=f"job-{number}",
                next_run_time=now - timedelta(seconds=1),
            )
    return now


def claim(store, now, count):
    return claims.claim_due_fires(
        using="default",
        node="n",
        now=now,
        limit=count,
        declared=[],
        load=store.load_rows,
        plan=plan_once,
    )


@pytest.mark.parametrize("count", SIZES)
@pytest.mark.parametrize("kind", ["once", "interval"])
def test_a_claim_costs_the_same_queries_for_5_fires_and_for_50(
    store, django_assert_num_queries, count, kind
):
    now = due(count, kind)
    # BEGIN; lock and read the due rows; the ledger's state; the insert, in a
    # savepoint (a conflict falls back to row by row); advance; COMMIT. MySQL
    # has no INSERT ... RETURNING: it reads the ids back instead of the savepoint's
    # second statement. SQLite reads and plans before it takes the database's lock,
    # then checks in the transaction that nobody moved the rows: one more query.
    # PostgreSQL sets enable_sort off for the due query and resets it (claims.in_due_order,
    # so that a table without statistics is still walked by its due index): two more.
    expected = budget(postgresql=10, mysql=8, sqlite=9)
    with django_assert_num_queries(expected):
        batch = claim(store, now, count)
    assert batch.fire_count == count


@pytest.mark.parametrize("count", SIZES)
def test_starting_and_finishing_a_batch_costs_a_statement_each(
    store, django_assert_num_queries, count
):
    now = due(count, "once")
    batch = claim(store, now, count)
    fires = [(c.job.id, fire) for c in batch.claimed for fire in c.fires]
    ids = [fire.execution_id for _, fire in fires]

    with django_assert_num_queries(1):
        assert len(ledger.start_fires("default", "n", ids, now)) == count

    outcomes = [
        Outcome(
            fire.execution_id,
            fire.run_time,
            ExecutionStatus.SUCCEEDED,
            now + timedelta(seconds=1),
            now,
            job_id=job_id,
            ended=fire.ended,
        )
        for job_id, fire in fires
    ]
    # The outcomes: one statement in a transaction (BEGIN, UPDATE, COMMIT); then the
    # rows of the one-shot jobs whose last fire this was (SELECT, DELETE, in one
    # more transaction).
    with django_assert_num_queries(budget(postgresql=6, mysql=6, sqlite=6)):
        assert ledger.record_outcomes("default", outcomes) == count
    assert DjangoJobExecution.objects.filter(status="succeeded").count() == count


@pytest.mark.parametrize("count", SIZES)
def test_releasing_a_dead_process_costs_the_same_for_5_fires_and_for_50(
    store, django_assert_num_queries, count
):
    now = due(count, "once")
    batch = claim(store, now, count)
    ids = [fire.execution_id for c in batch.claimed for fire in c.fires]
    ledger.start_fires("default", "n", ids[: count // 2], now)
    nodes.register("default", "n", now - timedelta(minutes=5))

    # In one transaction: find the dead, read the jobs of its started fires, interrupt
    # them, hand back its claimed ones (run-now requests apart), stop the node; then
    # delete the ended jobs whose last fire was interrupted.
    with django_assert_num_queries(budget(postgresql=11, mysql=11, sqlite=11)):
        assert nodes.reap("default", now + timedelta(minutes=1), timedelta(seconds=30)) == ["n"]
    assert DjangoJobExecution.objects.filter(status="pending").count() == count - count // 2
