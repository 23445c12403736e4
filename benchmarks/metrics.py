"""
What one scrape of the metrics costs at 10,000 jobs and 1,000,000 ledger rows.

For each database it makes a throwaway database (``metronome_metrics_bench``),
migrates it, and fills it in the database itself: N jobs (one in fifty paused,
one in a thousand quarantined) and R ledger rows spread evenly over the jobs,
one a second back from now (90% succeeded, 5% failed, 3% missed, 2% skipped,
in runs of the job's consecutive fires, so that each job has all four; each
with a lateness and a duration), a few scheduler processes, then analyses the tables. It then times
the collector (``collect()``: the queries and the building of the samples) and
the whole text a scrape returns (``exposition()``), median of five after a
warm-up, and counts the queries of a scrape and the samples and bytes it
returns. The slowest query's plan is printed (PostgreSQL: ``EXPLAIN ANALYZE``).

    python benchmarks/metrics.py                          # PostgreSQL, 10^4 jobs, 10^6 rows
    python benchmarks/metrics.py --db sqlite --db mariadb --jobs 10000 --rows 1000000

Where the servers are: as for every benchmark (``benchmarks/databases.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path[:0] = [
    str(Path(__file__).resolve().parent),
    str(Path(__file__).resolve().parent.parent / "src"),
]

import databases  # noqa: E402

NAME = "metronome_metrics_bench"
REPEAT = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", action="append", choices=databases.VENDORS)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(child(options.child, options.jobs, options.rows)))
        return 0
    results = {}
    for db in options.db or ["postgres"]:
        print(f"== {db}", file=sys.stderr, flush=True)
        run = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                db,
                f"--jobs={options.jobs}",
                f"--rows={options.rows}",
            ],
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            print(f"{db}: the benchmark process failed ({run.returncode})", file=sys.stderr)
            continue
        results[db] = json.loads(run.stdout.strip().splitlines()[-1])
    head = [
        "database",
        "jobs",
        "ledger rows",
        "queries",
        "collect (median)",
        "whole scrape",
        "samples",
        "bytes",
        "slowest query",
    ]
    rows = [
        [
            db,
            f"{r['jobs']:,}",
            f"{r['rows']:,}",
            str(r["queries"]),
            f"{r['collect_ms']:.0f} ms",
            f"{r['scrape_ms']:.0f} ms",
            f"{r['samples']:,}",
            f"{r['bytes']:,}",
            f"{r['slowest_ms']:.0f} ms",
        ]
        for db, r in results.items()
    ]
    print(f"Commit {databases.source_state()}, {datetime.now(UTC):%Y-%m-%d}\n")
    print(databases.markdown_table(head, rows))
    return 0


def child(db: str, jobs: int, rows: int) -> dict[str, Any]:
    folder = tempfile.mkdtemp(prefix="metronome-metrics-")
    sqlite_path = Path(folder) / "bench.sqlite3"
    databases.fresh_database(db, NAME, sqlite_path)
    try:
        databases.configure_django(databases.database_settings(db, NAME, sqlite_path))
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        now = datetime.now(UTC)
        started = time.perf_counter()
        seed(db, jobs, rows, now)
        print(f"seeded in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        return measure(db, jobs, rows)
    finally:
        from django.db import connections

        connections.close_all()
        databases.drop_database(db, NAME, sqlite_path)


def seed(db: str, jobs: int, rows: int, now: datetime) -> None:
    from django.db import connection

    from django_metronome.store.models import SchedulerNode

    naive = now.replace(tzinfo=None)
    job_columns = (
        "id, name, source, func_ref, state, next_run_time, quarantined_at, quarantine_reason, "
        "created_at, updated_at"
    )
    run_columns = (
        "job_id, job_name, run_time, status, node, claimed_at, started_at, finished_at, "
        "duration, lateness, reason, manual, exception, traceback"
    )
    with connection.cursor() as cursor:
        if db == "postgres":
            cursor.execute(
                f"INSERT INTO django_metronome_djangojob ({job_columns}) "
                "SELECT 'job-' || lpad(i::text, 7, '0'), 'Job ' || i, 'runtime', "
                "'tests.testapp.jobs:noop', '{}'::jsonb, "
                "CASE WHEN mod(i, 50) = 0 THEN NULL ELSE %s::timestamptz + i * interval '1 s' END, "
                "CASE WHEN mod(i, 1000) = 7 THEN %s::timestamptz END, '', %s, %s "
                "FROM generate_series(0, %s) AS i",
                [now, now, now, now, jobs - 1],
            )
            cursor.execute(
                f"INSERT INTO django_metronome_djangojobexecution ({run_columns}) "
                "SELECT 'job-' || lpad(mod(k, %s)::text, 7, '0'), '', t, "
                "CASE WHEN mod(k / %s, 100) < 90 THEN 'succeeded' "
                "WHEN mod(k / %s, 100) < 95 THEN 'failed' "
                "WHEN mod(k / %s, 100) < 98 THEN 'missed' ELSE 'skipped' END, 'bench:1:a', "
                "t, t, t + interval '50 ms', interval '50 ms', interval '2 ms', '', false, '', '' "
                "FROM generate_series(1, %s) AS k, "
                "LATERAL (SELECT %s::timestamptz - k * interval '1 s' AS t) AS x",
                [jobs, jobs, jobs, jobs, rows, now],
            )
            cursor.execute("ANALYZE")
        elif db == "sqlite":
            cursor.execute(
                f"INSERT INTO django_metronome_djangojob ({job_columns}) "
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %s) "
                "SELECT printf('job-%%07d', i), 'Job ' || i, 'runtime', 'tests.testapp.jobs:noop', "
                "'{}', CASE WHEN i %% 50 = 0 THEN NULL "
                "ELSE datetime(%s, '+' || i || ' seconds') END, "
                "CASE WHEN i %% 1000 = 7 THEN %s END, '', %s, %s FROM n",
                [jobs - 1, str(naive), str(naive), str(naive), str(naive)],
            )
            cursor.execute(
                f"INSERT INTO django_metronome_djangojobexecution ({run_columns}) "
                "WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < %s) "
                "SELECT printf('job-%%07d', k %% %s), '', datetime(%s, '-' || k || ' seconds'), "
                "CASE WHEN (k / %s) %% 100 < 90 THEN 'succeeded' "
                "WHEN (k / %s) %% 100 < 95 THEN 'failed' "
                "WHEN (k / %s) %% 100 < 98 THEN 'missed' ELSE 'skipped' END, 'bench:1:a', "
                "datetime(%s, '-' || k || ' seconds'), datetime(%s, '-' || k || ' seconds'), "
                "datetime(%s, '-' || k || ' seconds'), 50000, 2000, '', 0, '', '' FROM n",
                [rows, jobs, str(naive), jobs, jobs, jobs, str(naive), str(naive), str(naive)],
            )
            cursor.execute("ANALYZE")
        else:
            cursor.execute(
                f"INSERT INTO django_metronome_djangojob ({job_columns}) "
                "SELECT CONCAT('job-', LPAD(seq, 7, '0')), CONCAT('Job ', seq), 'runtime', "
                "'tests.testapp.jobs:noop', '{}', "
                "CASE WHEN mod(seq, 50) = 0 THEN NULL ELSE TIMESTAMPADD(SECOND, seq, %s) END, "
                "CASE WHEN mod(seq, 1000) = 7 THEN %s END, '', %s, %s "
                f"FROM seq_0_to_{jobs - 1}",
                [naive, naive, naive, naive],
            )
            cursor.execute(
                f"INSERT INTO django_metronome_djangojobexecution ({run_columns}) "
                "SELECT CONCAT('job-', LPAD(mod(seq, %s), 7, '0')), '', "
                "TIMESTAMPADD(SECOND, -seq, %s), "
                "CASE WHEN mod(seq DIV %s, 100) < 90 THEN 'succeeded' "
                "WHEN mod(seq DIV %s, 100) < 95 THEN 'failed' "
                "WHEN mod(seq DIV %s, 100) < 98 THEN 'missed' ELSE 'skipped' END, 'bench:1:a', "
                "TIMESTAMPADD(SECOND, -seq, %s), TIMESTAMPADD(SECOND, -seq, %s), "
                "TIMESTAMPADD(SECOND, -seq, %s), 50000, 2000, '', 0, '', '' "
                f"FROM seq_1_to_{rows}",
                [jobs, naive, jobs, jobs, jobs, naive, naive, naive],
            )
            cursor.execute(
                "ANALYZE TABLE django_metronome_djangojob, django_metronome_djangojobexecution"
            )
    for index in range(5):
        SchedulerNode.objects.create(
            id=f"bench:{index}:a",
            hostname="bench",
            pid=index,
            started_at=now,
            last_heartbeat=now,
        )


def measure(db: str, jobs: int, rows: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from django_metronome.observe import metrics
    from django_metronome.store.db import utcnow

    metrics.collect(connection.alias, utcnow())  # warm-up
    collect_times, scrape_times = [], []
    for _ in range(REPEAT):
        started = time.perf_counter()
        families = metrics.collect(connection.alias, utcnow())
        collect_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        body, _content_type = metrics.exposition()
        scrape_times.append(time.perf_counter() - started)
    with CaptureQueriesContext(connection) as captured:
        metrics.collect(connection.alias, utcnow())
    slowest = max(captured.captured_queries, key=lambda query: float(query["time"]))
    plan = ""
    if db == "postgres":
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN ANALYZE " + slowest["sql"])
            plan = "\n".join(row[0] for row in cursor.fetchall())
    print(f"slowest query: {slowest['sql']}\n{plan}", file=sys.stderr, flush=True)
    return {
        "jobs": jobs,
        "rows": rows,
        "queries": len(captured),
        "collect_ms": statistics.median(collect_times) * 1000,
        "scrape_ms": statistics.median(scrape_times) * 1000,
        "samples": sum(len(family.samples) for family in families),
        "bytes": len(body),
        "slowest_ms": float(slowest["time"]) * 1000,
    }


if __name__ == "__main__":
    sys.exit(main())
