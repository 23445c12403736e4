"""
How the admin and the command line cope with big tables: 10^4 to 10^6 jobs and runs.

For each database (PostgreSQL, MariaDB) the script makes a throwaway database
(``metronome_scale``; ``test_metronome_bench_scale`` on MariaDB), migrates it, and
grows both tables to each size in turn: N jobs and N ledger rows, inserted by
the database itself (``generate_series`` on PostgreSQL, the ``seq_1_to_N``
tables of MariaDB's Sequence engine), then analysed. At each size it times,
through Django's test client and a logged-in superuser, every admin page a
user opens (median of three after a warm-up), and ``manage.py metronome
list`` with ``--limit 100`` and in full to /dev/null. At the largest size it
then prunes the whole ledger with the retention code and reports the longest
single statement (each of its deletes is a transaction of its own: that is
the longest a lock is held).

    python benchmarks/scale.py                         # both databases, 10^4, 10^5, 10^6
    python benchmarks/scale.py --db postgres --size 10000 --size 100000
    python benchmarks/scale.py --results out.json --no-doc   # figures only, no docs page
    python benchmarks/scale.py --size 1000000 --prune-only --no-doc   # seed and prune only
    python benchmarks/scale.py --report-from after.json --before before.json   # re-report

The figures go to ``docs/benchmarks-scale.md`` (``--doc`` to change,
``--no-doc`` for none) and, with ``--results``, as JSON. Where the servers are:
``PGHOST``/``PGPORT``/``PGUSER`` as for ``psql``; ``MYSQL_HOST``,
``MYSQL_PORT``, ``MYSQL_USER``, ``MYSQL_PASSWORD`` as for the tests.

The data: job ``job-0000042`` is named ``Job 42``; one job in fifty is paused
and one in a thousand overdue, the others fire within the next N seconds. Run
``k`` (newest first) belongs to job ``k % 1000`` and was scheduled ``k``
times 2.592 s ago (10^6 runs span 30 days); 90% succeeded, 5% failed, 3%
missed, 2% skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import databases  # noqa: E402

#: The throwaway database (on MariaDB, a name the test user may create).
DATABASES = {"postgres": "metronome_scale", "mariadb": "test_metronome_bench_scale"}
DEFAULT_SIZES = [10_000, 100_000, 1_000_000]
#: Rows inserted per statement while seeding.
SEED_CHUNK = 100_000
#: Jobs that own the ledger's rows.
JOBS_WITH_RUNS = 1000
#: Seconds between two runs of the seeded ledger (10^6 runs span 30 days).
RUN_STEP = 2.592

# The URLs of the admin, for Django's test client (this module is ROOT_URLCONF).
urlpatterns: list[Any] = []


# --- the driver: one child process per database -----------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", action="append", choices=["postgres", "mariadb"])
    parser.add_argument("--size", action="append", type=int)
    parser.add_argument("--results", type=Path, help="Also write the figures as JSON here.")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks-scale.md")
    parser.add_argument("--no-doc", action="store_true", help="Write no Markdown page.")
    parser.add_argument("--no-prune", action="store_true", help="Skip the prune at the end.")
    parser.add_argument(
        "--prune-only", action="store_true", help="Seed the largest size and prune: no pages."
    )
    parser.add_argument("--label", default="", help="A word for the run, kept in the JSON.")
    parser.add_argument(
        "--report-from", type=Path, help="Measure nothing: report the figures of this JSON file."
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="The JSON figures of an earlier run, reported after this one's for comparison.",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    sizes = sorted(set(options.size or DEFAULT_SIZES))
    if options.child:
        return child(options.child, sizes, not options.no_prune, options.prune_only)
    if options.report_from:
        results = json.loads(options.report_from.read_text())
        return report(results, options)
    started = datetime.now(UTC)
    results = {
        "label": options.label,
        "started": started.isoformat(timespec="seconds"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
        "commit": databases.source_state(),
        "databases": {},
    }
    for db in options.db or ["postgres", "mariadb"]:
        print(f"== {db}", file=sys.stderr, flush=True)
        command = [sys.executable, str(Path(__file__).resolve()), "--child", db]
        command += [f"--size={size}" for size in sizes]
        if options.no_prune:
            command.append("--no-prune")
        if options.prune_only:
            command.append("--prune-only")
        run = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        if run.returncode != 0:
            print(f"{db}: the benchmark process failed ({run.returncode})", file=sys.stderr)
            continue
        results["databases"][db] = json.loads(run.stdout.strip().splitlines()[-1])
    if options.results:
        options.results.write_text(json.dumps(results, indent=2) + "\n")
    return report(results, options)


def report(results: dict[str, Any], options: argparse.Namespace) -> int:
    text = markdown(results)
    if options.before:
        earlier = json.loads(options.before.read_text())
        text += "\n" + markdown(earlier, title=f"## Before: commit {earlier['commit']}", level=3)
    print(text)
    if not options.no_doc:
        options.doc.write_text(text)
        print(f"Written to {options.doc}", file=sys.stderr)
    return 0


# --- the child: Django on one database -------------------------------------------------


def database_settings(db: str) -> dict[str, Any]:
    return databases.database_settings(db, DATABASES[db])


def fresh_database(db: str) -> None:
    """Drop and create the throwaway database, with the server's own client library."""
    databases.fresh_database(db, DATABASES[db])


def configure(db: str) -> None:
    databases.configure_django(
        database_settings(db),
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django_metronome",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        STATIC_URL="/static/",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    )
    from django.contrib import admin
    from django.urls import path

    urlpatterns.append(path("admin/", admin.site.urls))


def child(db: str, sizes: list[int], prune: bool, prune_only: bool = False) -> int:
    fresh_database(db)
    configure(db)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    template = template_job()
    now = datetime.now(UTC).replace(microsecond=0)
    figures: dict[str, Any] = {"sizes": {}}
    seeded = 0
    for size in sizes[-1:] if prune_only else sizes:
        began = time.perf_counter()
        seed(db, template, seeded, size, now)
        seeded = size
        analyse(db)
        seconds = time.perf_counter() - began
        print(f"{db}: {size:,} jobs and runs seeded in {seconds:.1f} s", file=sys.stderr)
        figures["sizes"][str(size)] = {} if prune_only else measure(size)
        figures["sizes"][str(size)]["seed_s"] = round(seconds, 1)
    if prune:
        figures["prune"] = prune_all(seeded, now)
    print(json.dumps(figures))
    return 0


def template_job() -> Any:
    """One job stored the ordinary way; the seeded rows are copies of it."""
    from django_metronome import add_job
    from django_metronome.store.models import DjangoJob

    add_job("django_metronome.store.db:utcnow", "cron", minute="*/5", id="template")
    job = DjangoJob.objects.get(pk="template")
    job.delete()
    return job


def seed(db: str, template: Any, start: int, stop: int, now: datetime) -> None:
    """Add jobs ``start`` to ``stop - 1`` and runs ``start + 1`` to ``stop``."""
    from django.db import connection

    from django_metronome.store.models import DjangoJob

    varying = {"id", "name", "next_run_time"}
    fields = [f for f in DjangoJob._meta.concrete_fields if f.column not in varying]
    columns = ["id", "name", "next_run_time", *(f.column for f in fields)]
    values = [f.get_db_prep_save(getattr(template, f.attname), connection) for f in fields]
    holes = ", ".join(["%s"] * len(values))
    naive_now = now.replace(tzinfo=None)
    with connection.cursor() as cursor:
        for low in range(start, stop, SEED_CHUNK):
            high = min(low + SEED_CHUNK, stop)
            if db == "postgres":
                cursor.execute(
                    f"INSERT INTO django_metronome_djangojob ({', '.join(columns)}) "
                    "SELECT 'job-' || lpad(i::text, 7, '0'), 'Job ' || i, "
                    "CASE WHEN mod(i, 50) = 0 THEN NULL "
                    "WHEN mod(i, 1000) = 1 THEN %s::timestamptz - interval '1 hour' "
                    "ELSE %s::timestamptz + i * interval '1 second' END, "
                    f"{holes} FROM generate_series(%s, %s) AS i",
                    [now, now, *values, low, high - 1],
                )
                cursor.execute(
                    "INSERT INTO django_metronome_djangojobexecution (job_id, job_name, "
                    "run_time, status, node, claimed_at, started_at, finished_at, duration, "
                    "lateness, reason, manual, exception, traceback) "
                    "SELECT 'job-' || lpad(mod(k, %s)::text, 7, '0'), 'Job ' || mod(k, %s), t, "
                    "CASE WHEN mod(k, 100) < 90 THEN 'succeeded' "
                    "WHEN mod(k, 100) < 95 THEN 'failed' "
                    "WHEN mod(k, 100) < 98 THEN 'missed' ELSE 'skipped' END, 'bench:1:scale', "
                    "t, t, t + interval '50 ms', interval '50 ms', interval '2 ms', '', false, "
                    "CASE WHEN mod(k, 100) BETWEEN 90 AND 94 THEN 'ValueError: boom' "
                    "ELSE '' END, '' "
                    "FROM generate_series(%s, %s) AS k, "
                    "LATERAL (SELECT %s::timestamptz - k * %s * interval '1 second' AS t) AS x",
                    [JOBS_WITH_RUNS, JOBS_WITH_RUNS, low + 1, high, now, RUN_STEP],
                )
            else:
                sequence = f"seq_{low}_to_{high - 1}"
                cursor.execute(
                    f"INSERT INTO django_metronome_djangojob ({', '.join(columns)}) "
                    "SELECT CONCAT('job-', LPAD(seq, 7, '0')), CONCAT('Job ', seq), "
                    "CASE WHEN mod(seq, 50) = 0 THEN NULL "
                    "WHEN mod(seq, 1000) = 1 THEN TIMESTAMPADD(HOUR, -1, %s) "
                    "ELSE TIMESTAMPADD(SECOND, seq, %s) END, "
                    f"{holes} FROM {sequence}",
                    [naive_now, naive_now, *values],
                )
                step = int(RUN_STEP * 1_000_000)
                cursor.execute(
                    "INSERT INTO django_metronome_djangojobexecution (job_id, job_name, "
                    "run_time, status, node, claimed_at, started_at, finished_at, duration, "
                    "lateness, reason, manual, exception, traceback) "
                    "SELECT CONCAT('job-', LPAD(mod(seq, %s), 7, '0')), "
                    "CONCAT('Job ', mod(seq, %s)), "
                    "t, CASE WHEN mod(seq, 100) < 90 THEN 'succeeded' "
                    "WHEN mod(seq, 100) < 95 THEN 'failed' "
                    "WHEN mod(seq, 100) < 98 THEN 'missed' ELSE 'skipped' END, 'bench:1:scale', "
                    "t, t, TIMESTAMPADD(MICROSECOND, 50000, t), 50000, 2000, '', 0, "
                    "CASE WHEN mod(seq, 100) BETWEEN 90 AND 94 THEN 'ValueError: boom' "
                    "ELSE '' END, '' "
                    f"FROM (SELECT seq, TIMESTAMPADD(MICROSECOND, -seq * {step}, %s) AS t "
                    f"FROM seq_{low + 1}_to_{high}) AS k",
                    [JOBS_WITH_RUNS, JOBS_WITH_RUNS, naive_now],
                )


def analyse(db: str) -> None:
    """Fresh statistics (and, on PostgreSQL, the visibility map), as autovacuum would."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("django_metronome_djangojob", "django_metronome_djangojobexecution"):
            if db == "postgres":
                cursor.execute(f"VACUUM ANALYZE {table}")
            else:
                cursor.execute(f"ANALYZE TABLE {table}")
                cursor.fetchall()


def median_ms(action: Any, repeat: int = 3, warm: bool = True) -> float:
    if warm:
        action()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 1)


def measure(size: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user_model = get_user_model()
    user = user_model.objects.filter(username="bench").first()
    if user is None:
        user = user_model.objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    jobs = "/admin/django_metronome/djangojob/"
    ledger = "/admin/django_metronome/djangojobexecution/"
    deep_jobs = max(1, size // 50 // 2)
    deep_runs = max(1, size // 100 // 2)
    pages = {
        "jobs_first": jobs,
        "jobs_deep": f"{jobs}?p={deep_jobs}",
        "jobs_search": f"{jobs}?q=job-00012",
        "jobs_search_none": f"{jobs}?q=nothing-like-this",
        "ledger_first": ledger,
        "ledger_deep": f"{ledger}?p={deep_runs}",
        "ledger_job": f"{ledger}?job=job-0000007",
        "ledger_failed": f"{ledger}?status=failed",
        "job_page": f"{jobs}job-0000007/change/",
        "dashboard": f"{jobs}dashboard/",
    }
    figures: dict[str, Any] = {"deep_jobs_page": deep_jobs, "deep_runs_page": deep_runs}
    for name, url in pages.items():

        def get(url: str = url) -> None:
            response = client.get(url)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: {response.status_code}")

        try:
            figures[name] = median_ms(get)
        except Exception as error:  # a page the code under test cannot show
            print(f"{name}: {error}", file=sys.stderr)
            figures[name] = None
        print(f"  {size:,} {name}: {figures[name]} ms", file=sys.stderr, flush=True)
    figures["cli_limit"] = cli_ms(["list", "--limit", "100"], repeat=3)
    figures["cli_full"] = cli_ms(["list"], repeat=1)
    print(f"  {size:,} cli: {figures['cli_limit']} / {figures['cli_full']} ms", file=sys.stderr)
    return figures


def cli_ms(arguments: list[str], repeat: int) -> float | None:
    from django.core.management import call_command

    with open(os.devnull, "w") as sink:
        try:
            return median_ms(
                lambda: call_command("metronome", *arguments, stdout=sink),
                repeat=repeat,
                warm=repeat > 1,
            )
        except Exception as error:  # an option the code under test does not have
            print(f"metronome {' '.join(arguments)}: {error}", file=sys.stderr)
            return None


def prune_all(size: int, now: datetime) -> dict[str, Any]:
    """Prune every run with the retention code; time the longest single statement."""
    from django.db import connection

    from django_metronome.store import retention
    from django_metronome.store.models import DjangoJobExecution

    took: dict[str, list[float]] = {"delete": [], "select": []}

    def timing(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            kind = "delete" if sql.lstrip().upper().startswith("DELETE") else "select"
            took[kind].append(time.perf_counter() - began)

    before = DjangoJobExecution.objects.count()
    began = time.perf_counter()
    deleted = 0
    with connection.execute_wrapper(timing):
        while True:
            step = retention.prune_older_than("default", now + timedelta(days=1), timedelta(0))
            if not step:
                break
            deleted += step
    seconds = time.perf_counter() - began
    print(f"  pruned {deleted:,} of {before:,} in {seconds:.1f} s", file=sys.stderr)
    deletes = sorted(took["delete"]) or [0.0]
    return {
        "rows": deleted,
        "seconds": round(seconds, 1),
        "longest_delete_ms": round(deletes[-1] * 1000, 1),
        "median_delete_ms": round(statistics.median(deletes) * 1000, 1),
        "p99_delete_ms": round(deletes[int(len(deletes) * 0.99)] * 1000, 1),
        "longest_select_ms": round(max(took["select"] or [0.0]) * 1000, 1),
        "deletes": len(took["delete"]),
    }


# --- the report ---------------------------------------------------------------------------

ROWS = [
    ("jobs_first", "job list, first page"),
    ("jobs_deep", "job list, a page in the middle (`?p=`)"),
    ("jobs_search", "job list, search `job-00012`"),
    ("jobs_search_none", "job list, search matching nothing"),
    ("ledger_first", "ledger, first page"),
    ("ledger_deep", "ledger, a page in the middle (`?p=`)"),
    ("ledger_job", "ledger, one job's runs"),
    ("ledger_failed", "ledger, failed runs"),
    ("job_page", "a job's page"),
    ("dashboard", "dashboard"),
    ("cli_limit", "`metronome list --limit 100`"),
    ("cli_full", "`metronome list` (every job, to /dev/null)"),
]


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def markdown(results: dict[str, Any], title: str = "", level: int = 2) -> str:
    """The figures as Markdown: a table per database, sizes across."""
    lines = [
        title or "# Benchmarks: the admin and the command line at scale",
        "",
        *(
            []
            if title
            else [
                "Written by `benchmarks/scale.py` (see its docstring for the data and the method).",
                "The aim (issue 13): every admin page under 300 ms at a million jobs and a",
                "million runs, flat as the tables grow. A full `metronome list` streams, but",
                "its time grows with the jobs (it describes each schedule in words); `--limit`",
                "does not.",
                "",
            ]
        ),
        f"Run {results['started']} on {results['machine']}, commit {results['commit']}.",
        "Each figure is the median of three requests after a warm-up, through Django's",
        "test client with a logged-in superuser; the full `metronome list` is one run.",
        "N jobs and N ledger rows at each size; `-`: not possible with that code.",
        "",
    ]
    if results.get("note"):
        lines += [results["note"], ""]
    for db, figures in results["databases"].items():
        sizes = [size for size in figures["sizes"] if "jobs_first" in figures["sizes"][size]]
        name = "PostgreSQL" if db == "postgres" else "MariaDB"
        lines += [f"{'#' * level} {name}", ""]
        lines.append("| measure | " + " | ".join(f"{int(size):,}" for size in sizes) + " |")
        lines.append("|---|" + "---:|" * len(sizes))
        for key, label in ROWS:
            values = [cell(figures["sizes"][size].get(key)) for size in sizes]
            lines.append(f"| {label} | " + " | ".join(values) + " |")
        seed_cells = [f"{figures['sizes'][size]['seed_s']} s" for size in sizes]
        lines.append("| (seeding up to this size) | " + " | ".join(seed_cells) + " |")
        lines.append("")
        prune = figures.get("prune")
        if prune:
            lines += [
                f"Pruning the whole ledger ({prune['rows']:,} runs) with the retention code: "
                f"{prune['seconds']} s in {prune['deletes']:,} deletes, each its own "
                f"transaction; the longest delete took {prune['longest_delete_ms']} ms (the "
                "longest any lock was held)"
                + (
                    f", the median {prune['median_delete_ms']} ms, 99% under "
                    f"{prune['p99_delete_ms']} ms"
                    if "median_delete_ms" in prune
                    else ""
                )
                + f"; the longest select {prune['longest_select_ms']} ms.",
                "",
            ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
