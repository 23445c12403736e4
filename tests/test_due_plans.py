"""
The due query walks the due index in order and stops at its limit, on every
database, whatever the planner's statistics say.

Found by measuring a 20,000-fire burst: without statistics, SQLite (which has
none unless a project runs ANALYZE) and PostgreSQL (in the minute between a
bulk add and autovacuum's analysis) took the (source, func_ref) index, which
every run-time job matches, and sorted the whole job table at each claim
(7 ms a claim at 20,000 jobs).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction

from django_metronome.store import claims
from django_metronome.store.db import to_db, utcnow
from django_metronome.store.models import DjangoJob

pytestmark = pytest.mark.django_db(transaction=True)

JOBS = 30


@pytest.fixture
def due_jobs():
    now = utcnow()
    for number in range(JOBS):
        DjangoJob.all_rows.create(
            id=f"job-{number:02d}",
            name=f"job-{number:02d}",
            func_ref="tests.testapp.jobs:noop",
            state={},
            next_run_time=to_db(now - timedelta(seconds=number)),
        )
    return now


def due_query(declared=()):
    return (
        DjangoJob.all_rows.due(to_db(utcnow()))
        .runnable_by(list(declared))
        .values_list(*claims.LOAD_COLUMNS)[:5]
    )


def plan_of(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return " | ".join(" ".join(map(str, row)) for row in cursor.fetchall())


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's planner")
@pytest.mark.parametrize("declared", [(), ("declared-a", "declared-b")])
def test_sqlite_walks_the_due_index(due_jobs, declared):
    sql, params = claims.due_index_sql(
        connection, *due_query(declared).query.get_compiler("default").as_sql()
    )
    plan = plan_of("QUERY PLAN " + sql, params)
    assert claims.DUE_INDEX in plan
    assert "TEMP B-TREE" not in plan  # no sort of the whole table


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
@pytest.mark.parametrize("declared", [(), ("declared-a", "declared-b")])
def test_postgresql_walks_the_due_index_without_statistics(due_jobs, declared):
    # The statistics a bulk add leaves until autovacuum analyses the table: none.
    # (The test role is a superuser, as scripts/test creates it.)
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM pg_statistic WHERE starelid = %s::regclass",
            [DjangoJob._meta.db_table],
        )
    with transaction.atomic(), claims.in_due_order("default"):
        query = due_query(declared).select_for_update(skip_locked=True)
        plan = plan_of(*query.query.get_compiler("default").as_sql())
    assert claims.DUE_INDEX in plan, plan
    assert "Sort" not in plan, plan
    with transaction.atomic():
        # Outside the claim's query the setting is the transaction's own again.
        with claims.in_due_order("default"):
            pass
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_sort")
            assert cursor.fetchone()[0] == "on"


def test_the_due_rows_come_in_order_up_to_the_limit(due_jobs):
    with transaction.atomic(), claims.in_due_order("default"):
        rows = claims.read_job_rows("default", due_query())
    assert [row[0] for row in rows] == [f"job-{n:02d}" for n in (29, 28, 27, 26, 25)]
    assert claims.next_due_time(using="default", declared=[]) == due_jobs - timedelta(seconds=29)
    DjangoJob.all_rows.update(next_run_time=None)
    assert claims.next_due_time(using="default", declared=[]) is None
