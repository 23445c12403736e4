"""
Flat at a million: what keeps the admin, the dashboard, ``metronome list`` and
pruning bounded however many jobs and runs there are.

The tables here are small; what is checked is the behaviour that makes their
cost independent of the size (estimated and capped counts, pages read by key,
searches an index answers, chunked reads and deletes) and, on PostgreSQL, the
plans of the dashboard's queries. ``benchmarks/scale.py`` measures the times.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_metronome.admin import dashboard, paging
from django_metronome.admin.jobs import DjangoJobAdmin
from django_metronome.cli import list_jobs
from django_metronome.models import DjangoJob, DjangoJobExecution, ExecutionStatus
from django_metronome.store import retention

pytestmark = pytest.mark.django_db

JOBS_URL = reverse("admin:django_metronome_djangojob_changelist")
RUNS_URL = reverse("admin:django_metronome_djangojobexecution_changelist")
JOBS_TABLE = DjangoJob._meta.db_table
RUNS_TABLE = DjangoJobExecution._meta.db_table


@pytest.fixture
def add(store, make_job):
    """Store a job (an interval, so never ending); ``next_run_time=None`` pauses it."""
    soon = datetime.now(UTC) + timedelta(hours=1)

    def add_one(job_id: str, *, name: str | None = None, minutes: int | None = 0, **options):
        when = None if minutes is None else soon + timedelta(minutes=minutes)
        store.add_job(
            make_job(
                "tests.testapp.jobs:noop",
                id=job_id,
                name=name or job_id,
                trigger=IntervalTrigger(hours=1, timezone=UTC),
                next_run_time=when,
                **options,
            )
        )

    return add_one


def many_jobs(add, count: int, paused_every: int = 4) -> list[str]:
    """``count`` jobs, every ``paused_every``-th paused; return their ids in run order."""
    for n in range(count):
        add(f"job-{n:03d}", name=f"Job {n}", minutes=None if n % paused_every == 0 else 50 - n)
    return list(DjangoJob.objects.in_run_order().values_list("id", flat=True))


def record(job_id: str, run_time: datetime, status: str = ExecutionStatus.SUCCEEDED):
    return DjangoJobExecution.objects.create(
        job_id=job_id, job_name=job_id, run_time=run_time, status=status
    )


def changelist(response) -> Any:
    assert response.status_code == 200
    return response.context["cl"]


# --- counts ------------------------------------------------------------------------------


def test_a_short_list_is_counted_exactly(admin_client, add):
    many_jobs(add, 7)
    cl = changelist(admin_client.get(JOBS_URL))
    assert cl.result_count == 7
    assert not cl.paginator.estimated and not cl.paginator.capped


def test_an_unfiltered_list_past_the_cap_shows_the_databases_estimate(
    admin_client, add, monkeypatch
):
    monkeypatch.setattr(paging, "COUNT_CAP", 5)
    monkeypatch.setattr(paging, "estimated_rows", lambda model, using: 1_234_567)
    many_jobs(add, 8)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(JOBS_URL)
    cl = changelist(response)
    assert cl.paginator.estimated
    assert cl.result_count == 1_234_567
    assert "about 1234567 jobs" in response.content.decode()
    # No exact count: the only COUNT reads at most the cap and one more row.
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1 and "LIMIT 6" in counts[0]


def test_without_an_estimate_a_long_list_is_counted(admin_client, add, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_CAP", 5)
    monkeypatch.setattr(paging, "estimated_rows", lambda model, using: None)
    many_jobs(add, 8)
    cl = changelist(admin_client.get(JOBS_URL))
    assert cl.result_count == 8 and not cl.paginator.estimated


def test_a_filtered_list_is_counted_up_to_the_cap(admin_client, add, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_CAP", 5)
    monkeypatch.setattr(DjangoJobAdmin, "list_per_page", 2)
    many_jobs(add, 8)
    response = admin_client.get(JOBS_URL, {"q": "job-"})
    cl = changelist(response)
    assert cl.paginator.capped and cl.result_count == 5
    assert "more than 5 jobs" in response.content.decode()
    assert "more than 5 results" in response.content.decode()
    assert cl.paginator.num_pages == 3  # pages stop at the cap


def test_the_ledger_is_estimated_too(admin_client, add, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_CAP", 3)
    monkeypatch.setattr(paging, "estimated_rows", lambda model, using: 2_000_000)
    add("a")
    now = datetime.now(UTC)
    for minutes in range(6):
        record("a", now - timedelta(minutes=minutes))
    response = admin_client.get(RUNS_URL)
    assert changelist(response).paginator.estimated
    assert "about 2000000 job executions" in response.content.decode()
    # Filtered by job: capped, not estimated.
    cl = changelist(admin_client.get(RUNS_URL, {"job": "a"}))
    assert cl.paginator.capped and not cl.paginator.estimated


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite keeps no row estimate")
@pytest.mark.django_db(transaction=True)
def test_the_estimate_comes_from_the_databases_statistics(add):
    many_jobs(add, 30)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {JOBS_TABLE}")
        else:
            cursor.execute(f"ANALYZE TABLE {JOBS_TABLE}")
            cursor.fetchall()
    estimate = paging.estimated_rows(DjangoJob, "default")
    assert estimate is not None and 15 <= estimate <= 60  # InnoDB's is approximate


def test_sqlite_has_no_estimate():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    assert paging.estimated_rows(DjangoJob, "default") is None


# --- pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [{}, {"q": "job-"}, {"source": "runtime"}])
def test_every_page_of_the_job_list_is_in_run_order(admin_client, add, monkeypatch, query):
    """Pages read by key (the scheduled jobs, then the paused ones) add up to run order."""
    monkeypatch.setattr(DjangoJobAdmin, "list_per_page", 3)
    expected = many_jobs(add, 11)
    assert expected[-1] == "job-008"  # paused jobs last, by id
    shown: list[str] = []
    for page in range(1, 5):
        cl = changelist(admin_client.get(JOBS_URL, {**query, "p": page}))
        shown += [job.pk for job in cl.result_list]
    assert shown == expected


def test_a_deep_page_reads_its_keys_then_its_rows(admin_client, add, monkeypatch):
    monkeypatch.setattr(DjangoJobAdmin, "list_per_page", 3)
    expected = many_jobs(add, 11)
    with CaptureQueriesContext(connection) as queries:
        cl = changelist(admin_client.get(JOBS_URL, {"p": 3}))
    assert [job.pk for job in cl.result_list] == expected[6:9]
    # The page's rows (with their latest outcome) are read by key: the skipped
    # rows never reach the query that computes each row's latest run.
    latest = [q["sql"] for q in queries.captured_queries if RUNS_TABLE in q["sql"]]
    assert len(latest) == 1 and "OFFSET" not in latest[0].upper()


def test_a_deep_page_costs_the_same_queries_for_21_jobs_and_for_42(admin_client, add, monkeypatch):
    monkeypatch.setattr(DjangoJobAdmin, "list_per_page", 3)

    def page_two() -> int:
        with CaptureQueriesContext(connection) as queries:
            changelist(admin_client.get(JOBS_URL, {"p": 2}))
        return len(queries)

    many_jobs(add, 21)
    few = page_two()
    DjangoJob.objects.all().delete()
    for n in range(42):
        add(f"more-{n:03d}", minutes=None if n % 4 == 0 else n)
    assert page_two() == few
    # Session, user, live processes, the capped count, the page's keys, its rows.
    assert few <= 6


def test_a_deep_page_of_the_ledger(admin_client, add, monkeypatch):
    from django_metronome.admin.ledger import DjangoJobExecutionAdmin

    monkeypatch.setattr(DjangoJobExecutionAdmin, "list_per_page", 4)
    add("a")
    now = datetime.now(UTC)
    runs = [record("a", now - timedelta(minutes=m)).pk for m in range(10)]
    cl = changelist(admin_client.get(RUNS_URL, {"p": 2}))
    assert [run.pk for run in cl.result_list] == runs[4:8]


def test_a_page_past_an_estimated_end_is_empty(admin_client, add, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_CAP", 2)
    monkeypatch.setattr(paging, "estimated_rows", lambda model, using: 1000)
    monkeypatch.setattr(DjangoJobAdmin, "list_per_page", 2)
    many_jobs(add, 5)
    cl = changelist(admin_client.get(JOBS_URL, {"p": 100}))
    assert list(cl.result_list) == []


# --- search ------------------------------------------------------------------------------


def test_search_finds_the_beginning_of_an_id_or_a_name_and_a_whole_function(admin_client, add):
    add("billing-nightly", name="Nightly invoices")
    add("reports-weekly", name="weekly report")
    add("cleanup", name="old files")

    def found(term: str) -> set[str]:
        return {job.pk for job in changelist(admin_client.get(JOBS_URL, {"q": term})).result_list}

    assert found("billing") == {"billing-nightly"}
    assert found("Nightly") == {"billing-nightly"}
    assert found("weekly") == {"reports-weekly"}
    assert found("tests.testapp.jobs:noop") == {"billing-nightly", "reports-weekly", "cleanup"}
    # Not at the beginning: no index could answer that.
    assert found("invoices") == set()
    assert found("files") == set()
    assert found("   ") == {"billing-nightly", "reports-weekly", "cleanup"}


# --- the dashboard -------------------------------------------------------------------------


def test_the_dashboards_counts_stop_at_the_cap(add, monkeypatch):
    monkeypatch.setattr(dashboard, "COUNT_CAP", 3)
    add("a")
    now = datetime.now(UTC)
    for minutes in range(5):
        record("a", now - timedelta(minutes=minutes + 1), ExecutionStatus.FAILED)
    record("a", now - timedelta(minutes=30))
    context = dashboard.dashboard_context()
    assert context["failed_count"] == 3 and context["failed_more"]
    shown = {str(badge): count for badge, count in context["outcome_counts"]}
    assert sorted(shown.values()) == ["1", "more than 3"]


def test_the_dashboards_last_runs_are_each_jobs_latest(add):
    now = datetime.now(UTC)
    for job_id in ("a", "b"):
        add(job_id)
        for minutes in range(40):
            record(job_id, now - timedelta(minutes=minutes))
    ledger = DjangoJobExecution.objects.all()
    runs = dashboard.last_runs(ledger, ["a", "b", "gone"], 30)
    assert runs["gone"] == []
    for job_id in ("a", "b"):
        expected = list(
            ledger.filter(job_id=job_id).order_by("-run_time").values_list("id", flat=True)[:30]
        )
        assert sorted(run.pk for run in runs[job_id]) == sorted(expected)


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, depth first."""
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += plan_nodes(child)
    return nodes


def unbounded_sorts(plan: dict[str, Any], rows: int) -> list[dict[str, Any]]:
    """Sort nodes fed more than ``rows`` rows by the planner's estimate, with no Limit below."""
    found = []
    for node in plan_nodes(plan):
        if node["Node Type"] != "Sort":
            continue
        below = plan_nodes(node)[1:]
        limited = any(child["Node Type"] == "Limit" for child in below)
        if not limited and node["Plan Rows"] > rows:
            found.append(node)
    return found


@pytest.mark.skipif(connection.vendor != "postgresql", reason="reads PostgreSQL's plans")
def test_the_dashboards_queries_use_indexes_on_postgresql(add):
    """
    With enough rows and statistics (and sequential scans priced out, so that
    only a missing index can make one appear), no dashboard query scans the
    jobs or the ledger, nor sorts more than a bounded set of rows.
    """
    add("template")
    now = datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {JOBS_TABLE} (id, name, source, func_ref, state, next_run_time, "
            "quarantine_reason, created_at, updated_at) "
            "SELECT 'job-' || i, 'Job ' || i, source, func_ref, state, "
            "CASE WHEN mod(i, 10) = 0 THEN NULL ELSE %s + i * interval '1 minute' END, "
            "'', created_at, updated_at "
            f"FROM generate_series(1, 5000) AS i, {JOBS_TABLE} WHERE id = 'template'",
            [now - timedelta(minutes=100)],
        )
        cursor.execute(
            f"INSERT INTO {RUNS_TABLE} (job_id, job_name, run_time, status, node, reason, "
            "manual, exception, traceback) "
            "SELECT 'job-' || mod(k, 200), 'Job ' || mod(k, 200), %s - k * interval '10 second', "
            "CASE WHEN mod(k, 20) = 0 THEN 'failed' WHEN mod(k, 97) = 0 THEN 'pending' "
            "ELSE 'succeeded' END, 'n', '', false, '', '' FROM generate_series(1, 60000) AS k",
            [now],
        )
        cursor.execute(f"ANALYZE {JOBS_TABLE}")
        cursor.execute(f"ANALYZE {RUNS_TABLE}")
        cursor.execute("SET LOCAL enable_seqscan = off")
    with CaptureQueriesContext(connection) as queries:
        context = dashboard.dashboard_context()
    assert context["activity"] and context["overdue_count"] and context["failed_count"]
    reading = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith("SELECT")
        and (JOBS_TABLE in q["sql"] or RUNS_TABLE in q["sql"])
    ]
    assert len(reading) >= 6
    problems = []
    with connection.cursor() as cursor:
        for sql in reading:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            raw = cursor.fetchone()[0]
            plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
            scans = [
                node
                for node in plan_nodes(plan)
                if node["Node Type"] == "Seq Scan"
                and node.get("Relation Name") in (JOBS_TABLE, RUNS_TABLE)
            ]
            if scans or unbounded_sorts(plan, rows=1000):
                problems.append((sql, json.dumps(plan, indent=1)))
    assert not problems, "\n\n".join(f"{sql}\n{plan}" for sql, plan in problems)


# --- metronome list ----------------------------------------------------------------------


def metronome(*args: str) -> str:
    out = StringIO()
    call_command("metronome", *args, stdout=out)
    return out.getvalue()


def listed_ids(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines()[1:] if line.startswith("job-")]


def test_list_streams_the_jobs_in_chunks_in_run_order(add, monkeypatch):
    monkeypatch.setattr(list_jobs, "CHUNK", 3)
    expected = many_jobs(add, 11)
    with CaptureQueriesContext(connection) as queries:
        text = metronome("list")
    assert listed_ids(text) == expected
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith("SELECT")
        and f"FROM {quoted(JOBS_TABLE)}" in q["sql"]
    ]
    # Each chunk its own query, none reading more than a chunk: 8 scheduled jobs
    # (3 chunks) and 3 paused ones (one full chunk, then an empty one).
    assert len(reads) == math.ceil(8 / 3) + 2
    assert all("LIMIT 3" in sql for sql in reads)
    assert text.splitlines()[0].split()[:2] == ["ID", "NAME"]


def quoted(table: str) -> str:
    return connection.ops.quote_name(table)


def test_list_json_is_streamed_as_one_document(add, monkeypatch):
    monkeypatch.setattr(list_jobs, "CHUNK", 2)
    expected = many_jobs(add, 5)
    text = metronome("list", "--json")
    data = json.loads(text)
    assert [job["id"] for job in data["jobs"]] == expected
    assert text == json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def test_list_limit(add):
    expected = many_jobs(add, 9)
    text = metronome("list", "--limit", "4")
    assert listed_ids(text) == expected[:4]
    assert "there are more: raise --limit" in text
    data = json.loads(metronome("list", "--json", "--limit", "4"))
    assert [job["id"] for job in data["jobs"]] == expected[:4]
    assert "raise --limit" not in metronome("list", "--limit", "9")
    assert listed_ids(metronome("list", "--paused", "--limit", "2")) == expected[-3:-1]


def test_list_limit_must_be_positive(add):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        metronome("list", "--limit", "0")


# --- pruning -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_pruning_deletes_in_chunks_each_its_own_transaction(add, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 4)
    add("a")
    now = datetime.now(UTC)
    for minutes in range(10):
        record("a", now - timedelta(days=2, minutes=minutes))
    record("a", now - timedelta(days=3), ExecutionStatus.RUNNING)
    record("a", now)
    seen: list[tuple[str, bool]] = []

    def watch(execute, sql, params, many, context):
        kind = sql.lstrip().split()[0].upper()
        seen.append((kind, connection.in_atomic_block))
        if kind == "DELETE":
            assert len(params) <= 4 + len(retention.FINAL_STATUSES)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        deleted = retention.prune_older_than("default", now, timedelta(days=1))
    assert deleted == 10
    deletes = [inside for kind, inside in seen if kind == "DELETE"]
    assert len(deletes) == 3 and all(deletes)  # three chunks, each in a transaction
    selects = [inside for kind, inside in seen if kind == "SELECT"]
    assert selects and not any(selects)  # and none held between them
    assert set(DjangoJobExecution.objects.values_list("status", flat=True)) == {
        ExecutionStatus.RUNNING,
        ExecutionStatus.SUCCEEDED,
    }
    assert DjangoJobExecution.objects.count() == 2
