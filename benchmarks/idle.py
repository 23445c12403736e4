"""
What an idle scheduler costs the database, and how fast it sees a change.

One real scheduler process (``BackgroundScheduler``, the package's default
settings) runs on a fresh database holding ``--jobs`` jobs due in 2099. This
script, as a second process, then

1. counts the scheduler's queries over ``--seconds`` of idleness, after a
   warm-up: every statement its threads send through Django's cursors (and, on
   PostgreSQL, the database's own count of committed transactions,
   ``pg_stat_database.xact_commit``, read from another database);
2. adds ``--samples`` one-shot jobs due now with ``django_metronome.add_job``,
   one at a time at random moments, and measures the time from the add's
   commit to the job's start in the scheduler process (the pickup latency).

    python benchmarks/idle.py --db postgres          # sqlite, postgres or mariadb
    python benchmarks/idle.py --db sqlite --seconds 60 --samples 20

The database is ``metronome_idle`` (PostgreSQL and MariaDB, dropped and
created again; PostgreSQL as ``psql`` reaches it, MariaDB as root over the
local socket) or a fresh SQLite file in a temporary folder. Prints one JSON
object. The figures are in ``docs/benchmarks-idle.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# The probe job is importable as ``idle`` (this folder on sys.path, as a script has it);
# the shared helpers as ``benchmarks.databases``.
sys.path.insert(1, str(HERE.parent))

from benchmarks import databases  # noqa: E402

DB_NAME = "metronome_idle"
#: The environment variable naming the file the probe job appends its start times to.
PROBE_FILE = "METRONOME_IDLE_PROBE_FILE"


def started(key: str) -> None:
    """The probe job: note when this fire started (wall clock), for the other process."""
    at = time.time()
    with open(os.environ[PROBE_FILE], "a", encoding="utf-8") as out:
        out.write(f"{key} {at!r}\n")


# -- Django, in either process -----------------------------------------------------------


def configure(db: str, sqlite_path: str) -> None:
    """Settings for this run: Django's defaults, the package's defaults."""
    databases.configure_django(
        databases.database_settings(db, DB_NAME, sqlite_path),
        METRONOME={"ALLOWED_MODULES": ["idle"]},
    )


class QueryCounter:
    """Counts every statement sent through Django's cursors, in every thread."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def install(self) -> None:
        from django.db.backends import utils

        counter = self

        def counting(method: Any) -> Any:
            def wrapper(cursor: Any, *args: Any, **kwargs: Any) -> Any:
                with counter._lock:
                    counter.count += 1
                return method(cursor, *args, **kwargs)

            return wrapper

        utils.CursorWrapper.execute = counting(utils.CursorWrapper.execute)  # type: ignore[method-assign]
        utils.CursorWrapper.executemany = counting(utils.CursorWrapper.executemany)  # type: ignore[method-assign]


class DriverCounter(QueryCounter):
    """On PostgreSQL: every statement psycopg sends, Django's own internals included."""

    def install(self) -> None:
        import psycopg

        counter = self
        original = psycopg.Cursor.execute

        def execute(cursor: Any, *args: Any, **kwargs: Any) -> Any:
            with counter._lock:
                counter.count += 1
            return original(cursor, *args, **kwargs)

        psycopg.Cursor.execute = execute  # type: ignore[method-assign]


def child(args: argparse.Namespace) -> None:
    """The scheduler process: start, then answer "count" on stdin with its query count."""
    configure(args.db, args.sqlite)
    counter = QueryCounter()
    counter.install()
    driver = DriverCounter()
    if args.db == "postgres":
        driver.install()
    from django_metronome.schedulers import BackgroundScheduler

    scheduler = BackgroundScheduler()
    scheduler.start()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            print(counter.count, driver.count, flush=True)
        elif line.strip() == "stop":
            break
    scheduler.shutdown()


# -- the measuring process ---------------------------------------------------------------


def fresh_database(db: str, sqlite_path: str) -> None:
    databases.fresh_database(db, DB_NAME, sqlite_path)


def server_counts() -> tuple[int, int]:
    """PostgreSQL's counts of committed transactions and of sessions opened, in our database."""
    sql = f"SELECT xact_commit, sessions FROM pg_stat_database WHERE datname = '{DB_NAME}'"
    out = subprocess.run(
        ["psql", "-qXtA", "-d", "postgres", "-c", sql], capture_output=True, text=True, check=True
    ).stdout.strip()
    commits, sessions = out.split("|")
    return int(commits), int(sessions)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    workdir = tempfile.mkdtemp(prefix="metronome-idle-")
    args.sqlite = os.path.join(workdir, "idle.sqlite3")
    probe = os.path.join(workdir, "probe.txt")
    Path(probe).touch()
    fresh_database(args.db, args.sqlite)
    configure(args.db, args.sqlite)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django_metronome import add_job

    far = datetime(2099, 1, 1, tzinfo=UTC)
    for index in range(args.jobs):
        add_job("idle:started", "date", run_date=far, args=[f"far-{index}"], id=f"far-{index}")

    if args.db == "postgres":
        # Autovacuum would analyze the new rows during the window: its transactions
        # count in xact_commit. Done now, before the scheduler starts.
        subprocess.run(["psql", "-qX", "-d", DB_NAME, "-c", "VACUUM ANALYZE"], check=True)

    env = {**os.environ, PROBE_FILE: probe, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    command = [sys.executable, str(HERE / "idle.py"), "--child", "--db", args.db]
    command += ["--sqlite", args.sqlite]
    scheduler = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert scheduler.stdin is not None and scheduler.stdout is not None

    def ask() -> tuple[int, int]:
        assert scheduler.stdin is not None and scheduler.stdout is not None
        scheduler.stdin.write("count\n")
        scheduler.stdin.flush()
        django_count, driver_count = scheduler.stdout.readline().split()
        return int(django_count), int(driver_count)

    try:
        assert scheduler.stdout.readline().strip() == "ready"
        time.sleep(args.warmup)
        pg = args.db == "postgres"
        server_before = server_counts() if pg else None
        before, started_at = ask(), time.monotonic()
        time.sleep(args.seconds)
        after, elapsed = ask(), time.monotonic() - started_at
        server_after = server_counts() if pg else None
        result: dict[str, Any] = {
            "db": args.db,
            "jobs": args.jobs,
            "seconds": round(elapsed, 1),
            "queries": after[0] - before[0],
            "queries_per_s": round((after[0] - before[0]) / elapsed, 3),
        }
        if pg:
            result["driver_statements"] = after[1] - before[1]
        if server_before is not None and server_after is not None:
            commits = server_after[0] - server_before[0]
            result["pg_xact_commit_per_s"] = round(commits / elapsed, 3)
            result["pg_sessions_opened"] = server_after[1] - server_before[1]

        latencies = []
        for sample in range(args.samples):
            time.sleep(random.uniform(0.3, 2.5))
            key = f"now-{sample}"
            add_job("idle:started", "date", run_date=datetime.now(UTC), args=[key], id=key)
            added = time.time()
            deadline = time.monotonic() + 30
            seen = None
            while seen is None and time.monotonic() < deadline:
                for line in Path(probe).read_text().splitlines():
                    name, at = line.split()
                    if name == key:
                        seen = float(at)
                time.sleep(0.002)
            latencies.append(None if seen is None else round((seen - added) * 1000, 1))
        done = [value for value in latencies if value is not None]
        result["pickup_ms"] = latencies
        if done:
            result["pickup_ms_median"] = round(statistics.median(done), 1)
            result["pickup_ms_max"] = max(done)
        return result
    finally:
        if scheduler.poll() is None:
            scheduler.stdin.write("stop\n")
            scheduler.stdin.flush()
            try:
                scheduler.wait(60)
            except subprocess.TimeoutExpired:
                scheduler.kill()
        from django.db import connections

        connections.close_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "mariadb"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs due in 2099 (default 1000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="idle window (default 60)")
    parser.add_argument("--warmup", type=float, default=15.0, help="not counted (default 15)")
    parser.add_argument("--samples", type=int, default=10, help="pickup samples (default 10)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sqlite", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(json.dumps(measure(args)), flush=True)


if __name__ == "__main__":
    main()
