"""
Fires run in the scheduler processes themselves: how fast one and three
``runscheduler`` processes get through N one-shot no-op fires due at once, on
PostgreSQL and on SQLite (issue 13: "Three processes must not be slower than
one").

For each count of due fires (default 2,000 and 20,000), each database (default
SQLite, then PostgreSQL) and each count of processes (default 1, then 3), one run,
one after the other, on a fresh database:

1. N one-shot ``DateTrigger`` jobs whose target is the no-op
   ``benchmarks.jobs:noop`` are added paused, then made due, in one ``UPDATE``, at
   one instant ``due`` a few seconds ahead (``LEAD``);
2. K scheduler processes start: the ``runscheduler`` command, with the package's
   defaults (10 ``WORKERS`` threads, ``BATCH_SIZE`` 500); the run notes whether
   all K had registered their node before ``due``;
3. once every fire has a final ledger row (or the ``--timeout``), the processes
   are stopped and the figures read from the ledger itself: from ``due`` to the
   last fire's ``started_at`` (every fire started) and to the last
   ``finished_at``, the fires per process (the rows' ``node``), and the checks:
   one ledger row per job, all succeeded.

On SQLite all processes share one file on local disk, and one write lock: they
take turns at it (the package warns about it, W001), so more processes cannot
write faster there.

    python benchmarks/processes.py --output docs/benchmarks-processes.md
    python benchmarks/processes.py --fires 200 --db sqlite --processes 3

PostgreSQL comes from ``PGHOST``/``PGPORT``/``PGUSER``, as for ``psql``; the
database ``--database`` (default ``metronome_bench_procs``) is dropped and
created again for every run and dropped at the end.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]
sys.path.insert(0, str(REPO))

from benchmarks import databases  # noqa: E402

DATABASE = os.environ.get("METRONOME_BENCH_DATABASE", "metronome_bench_procs")
#: Seconds from making the (paused) jobs due to their due time: the processes start
#: meanwhile.
LEAD = 6.0
FINAL = ("succeeded", "failed", "missed", "skipped", "interrupted")
LEDGER = "django_metronome_djangojobexecution"
NODES = "django_metronome_schedulernode"


# -- the children: migrate, add, scheduler, read ----------------------------------------------


def configure(db: str, sqlite_path: str) -> None:
    """Django's defaults and the package's defaults; only the database differs."""
    databases.configure_django(
        databases.database_settings(db, DATABASE, sqlite_path),
        METRONOME={"ALLOWED_MODULES": ["benchmarks"]},
    )


def child(role: str, db: str, sqlite_path: str, *argv: str) -> None:
    """One process of a run: ``migrate``, ``add N``, ``scheduler`` or ``read N DUE``."""
    configure(db, sqlite_path)
    from django.core.management import call_command

    if role == "migrate":
        call_command("migrate", verbosity=0)
    elif role == "add":
        print(add_jobs(int(argv[0])).isoformat(), flush=True)
    elif role == "scheduler":

        def stop(signum: int, frame: Any) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, stop)
        call_command("runscheduler", shutdown_timeout=10.0, verbosity=0)
    elif role == "read":
        print(json.dumps(read_ledger(int(argv[0]), datetime.fromisoformat(argv[1]))), flush=True)


def add_jobs(count: int) -> datetime:
    """What ``django_metronome.add_job`` does, paused; then all due at once: the due time."""
    from django_metronome.jobstores import DjangoJobStore
    from django_metronome.loop.declare import JobSpec
    from django_metronome.schedulers import BackgroundScheduler
    from django_metronome.store.models import DjangoJob

    builder = BackgroundScheduler(timezone=UTC)
    store = DjangoJobStore()
    builder.add_jobstore(store, "default")
    store.start(builder, "default")
    far = datetime(2099, 1, 1, tzinfo=UTC)
    for number in range(count):
        key = f"burst-{number:06d}"
        spec = JobSpec.of(
            "benchmarks.jobs:noop",
            "date",
            run_date=far,
            id=key,
            args=[key],
            misfire_grace_time=3600,
            next_run_time=None,  # paused: all made due at once below
        )
        builder.store_job(builder.build_job(spec, declared=False), "default")
    due = datetime.now(UTC) + timedelta(seconds=LEAD)
    DjangoJob.objects.update(next_run_time=due)
    return due


def read_ledger(fires: int, due: datetime) -> dict[str, Any]:
    """The run's figures, from the ledger rows alone."""
    from django.db.models import Count, Max, Min

    from django_metronome.store.models import DjangoJob, DjangoJobExecution

    rows = DjangoJobExecution.objects.all()
    stats = rows.aggregate(
        count=Count("id"),
        first_started=Min("started_at"),
        last_started=Max("started_at"),
        last_finished=Max("finished_at"),
    )
    statuses = dict(Counter(rows.values_list("status", flat=True)))
    per_job = Counter(rows.values_list("job_id", flat=True))
    job_ids = set(DjangoJob.objects.values_list("id", flat=True)) | set(per_job)
    nodes = Counter(rows.values_list("node", flat=True))

    def after(moment: datetime | None) -> float | None:
        return None if moment is None else (moment - due).total_seconds()

    return {
        "rows": stats["count"],
        "jobs": len(job_ids),
        "jobs_without_row": sum(1 for job in job_ids if per_job[job] == 0),
        "jobs_with_more_rows": sum(1 for n in per_job.values() if n > 1),
        "statuses": statuses,
        "first_started_after": after(stats["first_started"]),
        "all_started_after": after(stats["last_started"]),
        "all_finished_after": after(stats["last_finished"]),
        # Fires per process, most first (a process's node is host:pid:random).
        "per_process": sorted(nodes.values(), reverse=True),
    }


# -- the measuring process ---------------------------------------------------------------


def run_child(
    role: str, db: str, sqlite_path: str, *argv: str, log: Path | None = None
) -> subprocess.Popen[bytes]:
    call = f"b.child({role!r}, {db!r}, {sqlite_path!r}, *{list(argv)!r})"
    code = f"import benchmarks.processes as b; {call}"
    env = {**os.environ, "METRONOME_BENCH_DATABASE": DATABASE}
    if log is None:
        return subprocess.Popen(
            [sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE
        )
    with log.open("ab") as stream:
        return subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=REPO,
            env=env,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )


def output_of(role: str, db: str, sqlite_path: str, *argv: str) -> str:
    proc = run_child(role, db, sqlite_path, *argv)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{role} failed with exit code {proc.returncode}")
    return out.decode()


class Poller:
    """Counts in the benchmark's database, with the server's own client (no Django here)."""

    def __init__(self, db: str, sqlite_path: str) -> None:
        self.db = db
        if db == "postgres":
            self.connection: Any = databases.pg_connect(DATABASE)
        else:
            self.connection = sqlite3.connect(sqlite_path, timeout=30, isolation_level=None)

    def one(self, sql: str) -> int:
        cursor = self.connection.cursor()
        cursor.execute(sql)
        (value,) = cursor.fetchone()
        return int(value or 0)

    def finished(self) -> int:
        marks = ", ".join(f"'{status}'" for status in FINAL)
        return self.one(f"SELECT count(*) FROM {LEDGER} WHERE status IN ({marks})")

    def live_nodes(self) -> int:
        return self.one(f"SELECT count(*) FROM {NODES} WHERE stopped_at IS NULL")

    def close(self) -> None:
        self.connection.close()


def log_notes(log: Path) -> dict[str, int]:
    """What the scheduler processes logged: warnings, errors, tracebacks (lines)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return {
        "warnings": sum("WARNING" in line or "Warning" in line for line in text.splitlines()),
        "errors": sum("ERROR" in line or "Error:" in line for line in text.splitlines()),
        "tracebacks": text.count("Traceback (most recent call last)"),
    }


def measure(db: str, fires: int, processes: int, timeout: float, workdir: Path) -> dict[str, Any]:
    """One run: a fresh database, N due at once, K scheduler processes, the ledger's figures."""
    sqlite_path = str(workdir / f"{db}-{fires}-{processes}.sqlite3") if db == "sqlite" else ""
    log = workdir / f"{db}-{fires}-{processes}.log"
    databases.fresh_database(db, DATABASE, sqlite_path)
    output_of("migrate", db, sqlite_path)
    started = time.monotonic()
    due = datetime.fromisoformat(output_of("add", db, sqlite_path, str(fires)).strip())
    added = time.monotonic() - started
    procs = [run_child("scheduler", db, sqlite_path, log=log) for _ in range(processes)]
    poller = Poller(db, sqlite_path)
    up_before_due = 0
    finished = 0
    try:
        while datetime.now(UTC) < due:
            up_before_due = poller.live_nodes()
            time.sleep(0.2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            finished = poller.finished()
            if finished >= fires or any(proc.poll() is not None for proc in procs):
                break
            time.sleep(0.5)
        exited = [proc.returncode for proc in procs if proc.poll() is not None]
    finally:
        poller.close()
        databases.stop_processes(procs)
    figures = json.loads(
        output_of("read", db, sqlite_path, str(fires), due.isoformat()).splitlines()[-1]
    )
    if sqlite_path:
        databases.drop_database(db, DATABASE, sqlite_path)
    complete = figures["statuses"].get("succeeded", 0) == fires
    ok = (
        complete
        and figures["jobs"] == fires
        and figures["jobs_without_row"] == 0
        and figures["jobs_with_more_rows"] == 0
        and figures["rows"] == fires
    )
    if ok:
        checks = "one ledger row per job, all succeeded"
    else:
        checks = (
            f"{figures['rows']:,} rows for {figures['jobs']:,} jobs; "
            f"{figures['jobs_without_row']:,} without a row, "
            f"{figures['jobs_with_more_rows']:,} with more; {figures['statuses']}"
        )
    started_after = figures["all_started_after"] if complete else None
    finished_after = figures["all_finished_after"] if complete else None
    figures.update(
        db=db,
        fires=fires,
        processes=processes,
        add_seconds=round(added, 2),
        up_before_due=up_before_due,
        timed_out=not complete and not exited,
        exited_early=exited,
        finished_by_deadline=finished,
        ok=ok,
        checks=checks,
        rate_started=fires / started_after if started_after else None,
        rate_finished=fires / finished_after if finished_after else None,
        log=str(log),
        **log_notes(log),
    )
    return figures


# -- the report ------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _rate(value: float | None) -> str:
    return "-" if not value else f"{value:,.0f}/s"


DB_LABELS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def report(
    results: list[dict[str, Any]], command: str, load: tuple[float, ...], source: str
) -> str:
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("Django", "APScheduler", "psycopg")
    )
    lines = [
        "# Benchmarks: fires run in one and in three scheduler processes",
        "",
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {versions}, PostgreSQL {_server_version()}, "
        f"SQLite {sqlite3.sqlite_version}; source {source} (at the start); load average "
        f"before the run {load[0]:.1f} (1 min), {load[1]:.1f} (5 min), after it "
        f"{os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min). `{command}`.",
        "",
        "N one-shot no-op jobs due at one instant, run by 1 or 3 `runscheduler` processes "
        "(each with the default 10 worker threads). Times are from the due instant; "
        "fires/s is N over the time until the last fire finished.",
        "",
    ]
    head = [
        "database",
        "due at once",
        "processes",
        "all started after",
        "all finished after",
        "fires/s",
        "fires per process",
        "checks",
    ]
    rows = []
    for r in results:
        if r["all_finished_after"] is not None and r["rate_finished"]:
            started, finished = r["all_started_after"], r["all_finished_after"]
            done, rate = _seconds(finished), _rate(r["rate_finished"])
            start = _seconds(started)
        else:
            done = (
                f"{r['statuses'].get('succeeded', 0):,} of {r['fires']:,} "
                f"{'by the timeout' if r['timed_out'] else 'when a process exited'}"
            )
            start, rate = "-", "-"
        spread = " / ".join(f"{n:,}" for n in r["per_process"]) or "-"
        notes = [r["checks"]]
        if r["up_before_due"] < r["processes"]:
            notes.append(f"{r['up_before_due']} of {r['processes']} processes up before due")
        if r["errors"] or r["tracebacks"]:
            notes.append(f"logs: {r['errors']} error lines, {r['tracebacks']} tracebacks")
        rows.append(
            [
                DB_LABELS[r["db"]],
                f"{r['fires']:,}",
                str(r["processes"]),
                start,
                done,
                rate,
                spread,
                "; ".join(notes),
            ]
        )
    lines += [databases.markdown_table(head, rows), ""]
    lines += ratios(results)
    lines += METHOD.strip("\n").splitlines()
    return "\n".join(lines) + "\n"


def ratios(results: list[dict[str, Any]]) -> list[str]:
    """Each run with more than one process over the one-process run of the same DB and N."""
    rows = []
    for many in results:
        if many["processes"] == 1:
            continue
        for one in results:
            if (one["db"], one["fires"], one["processes"]) != (many["db"], many["fires"], 1):
                continue
            if one["rate_finished"] and many["rate_finished"]:
                ratio = f"{many['rate_finished'] / one['rate_finished']:.2f}x"
            elif one["rate_finished"]:
                ratio = "not finished"
            else:
                ratio = "-"
            rows.append(
                [
                    DB_LABELS[many["db"]],
                    f"{many['fires']:,}",
                    _rate(one["rate_finished"]),
                    f"{_rate(many['rate_finished'])} ({many['processes']} processes)",
                    ratio,
                ]
            )
    if not rows:
        return []
    head = ["database", "due at once", "1 process", "more processes", "fires/s, more / 1"]
    return ["Ratios:", "", databases.markdown_table(head, rows), ""]


METHOD = """
## Method

- Each run has a fresh database: PostgreSQL's `metronome_bench_procs` dropped and
  created again, or a new SQLite file on local disk (Django's defaults: no
  journal mode or timeout tuning), then `migrate`.
- N one-shot `DateTrigger` jobs whose target is `benchmarks.jobs:noop` (a no-op)
  are added paused, then made due, in one `UPDATE` of `next_run_time`, at an
  instant 6 s ahead. Meanwhile K processes start, each the `runscheduler` command
  with the package's defaults (`WORKERS` 10, `BATCH_SIZE` 500, `CONN_MAX_AGE` 0),
  and are idle when the fires fall due (the table says when one was not yet up).
  They claim due fires with `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL;
  on SQLite the processes take turns at the file's single write lock (the
  package's W001 warning says so), so more processes cannot write faster there.
- The benchmark waits until every fire has a final ledger row (read every 0.5 s,
  with `psycopg` or `sqlite3`), or `--timeout`, then stops the processes
  (SIGTERM) and reads the figures from the ledger rows alone: *all started
  after*, from the due instant to the latest `started_at`; *all finished after*,
  to the latest `finished_at`; fires/s, N over the latter; *fires per process*,
  the rows per `node`, most first.
- *Checks*: every job has exactly one ledger row and all rows are `succeeded`.
  Warnings and errors of the scheduler processes go to a log per run; error
  lines and tracebacks are noted in the table.
- Runs go one after another, never two at once, on a shared machine: compare
  the ratios of one run, and look at the load average above.
"""


def _server_version() -> str:
    try:
        with databases.pg_connect() as connection:
            return connection.execute("SHOW server_version").fetchone()[0].split()[0]
    except Exception:  # the header says so
        return "(version unknown)"


def main() -> None:
    global DATABASE  # the children get it through the environment
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fires", type=int, action="append", help="default: 2,000 and 20,000")
    parser.add_argument("--processes", type=int, action="append", help="default: 1 and 3")
    parser.add_argument(
        "--db", action="append", choices=["sqlite", "postgres"], help="default: both"
    )
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds after the due time, per run"
    )
    parser.add_argument(
        "--database",
        default=DATABASE,
        help="PostgreSQL database, dropped and created again for each run "
        "(default: $METRONOME_BENCH_DATABASE or metronome_bench_procs)",
    )
    parser.add_argument("--output", type=Path)
    parser.add_argument(
        "--report-from",
        type=Path,
        help="write the report of an earlier run from its printed output, without measuring",
    )
    args = parser.parse_args()
    DATABASE = args.database
    if args.report_from:
        lines = args.report_from.read_text().splitlines()
        results = [ast.literal_eval(line) for line in lines if line.startswith("{")]
        load = ast.literal_eval(next(x for x in lines if x.startswith("load: "))[6:])
        command = next(x for x in lines if x.startswith("command: "))[9:]
        source = next(x for x in lines if x.startswith("source: "))[8:]
        text = report(results, command, load, source)
        print(text)
        if args.output:
            args.output.write_text(text)
        return
    load = os.getloadavg()
    command = " ".join(["python benchmarks/processes.py", *sys.argv[1:]])
    workdir = Path(tempfile.mkdtemp(prefix="metronome-bench-procs-"))
    source = databases.source_state()
    print(f"command: {command}\nload: {load!r}\nsource: {source}\nlogs: {workdir}", flush=True)
    os.environ["METRONOME_BENCH_DATABASE"] = DATABASE
    results = []
    dbs = args.db or ["sqlite", "postgres"]
    try:
        for fires in args.fires or [2_000, 20_000]:
            for db in dbs:
                for processes in args.processes or [1, 3]:
                    started = time.monotonic()
                    result = measure(db, fires, processes, args.timeout, workdir)
                    result["run_seconds"] = round(time.monotonic() - started, 1)
                    print(result, flush=True)
                    results.append(result)
    finally:
        if "postgres" in dbs:
            databases.drop_database("postgres", DATABASE)
    text = report(results, command, load, source)
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
