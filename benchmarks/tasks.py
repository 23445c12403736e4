"""
Fires into django.tasks: how fast scheduler processes enqueue a burst of due
fires into django-tasks-db on PostgreSQL, and how long until the task workers
finished them all.

For each count of scheduler processes, on a fresh database:

1. N one-shot jobs whose target is a no-op ``@task`` are added paused, then
   made due, in one statement, at one instant ``due`` a few seconds ahead;
2. the scheduler processes start (a ``BlockingScheduler`` each, with the default
   ``WORKERS``, 10 threads); once every fire is enqueued, the task workers
   (django-tasks-db's ``db_worker``) start, so that the enqueue is measured alone;
3. when every task has finished, the figures are read from the rows
   themselves: the enqueue rate is N over the time from ``due`` to the last
   task row's ``enqueued_at``; the end-to-end time runs from ``due`` to the last
   task's ``finished_at``;
4. it checks that every fire has one ledger row, one task, and ended succeeded.

    python benchmarks/tasks.py                      # 2,000 fires; 1 and 3 schedulers; 2 workers
    python benchmarks/tasks.py --fires 200 --schedulers 1
    python benchmarks/tasks.py --output docs/benchmarks-tasks.md

PostgreSQL comes from ``PGHOST``/``PGPORT``/``PGUSER``, as for ``psql``. The
comparison with django-celery-beat is not measured yet (see docs/tasks.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]
sys.path.insert(0, str(REPO))

from benchmarks import databases  # noqa: E402

DATABASE = "metronome_bench_tasks"
#: Seconds from making the (paused) jobs due to their due time: the processes start
#: meanwhile.
LEAD = 6.0


def noop_task(number: int) -> int:
    """The task every fire enqueues (made a Task by :func:`setup`)."""
    return number


def setup(role: str) -> None:
    """Django for this database, with django-tasks-db; ``noop_task`` made a Task."""
    from importlib.util import find_spec

    apps = ["django_metronome", "django_tasks_db"]
    if not find_spec("django.tasks"):
        apps.insert(0, "django_tasks")
    databases.configure_django(
        databases.database_settings("postgres", DATABASE),
        INSTALLED_APPS=apps,
        TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}},
        METRONOME={"ALLOWED_MODULES": ["benchmarks"]},
    )
    from django_metronome.store.taskfires import framework

    tasks = framework()
    assert tasks is not None, "install django-tasks-db (and, on Django 5.2, django-tasks)"
    module = sys.modules["benchmarks.tasks"]
    if not isinstance(module.noop_task, tasks.Task):
        module.noop_task = __import__(tasks.name, fromlist=["task"]).task()(module.noop_task)


def child(role: str, *argv: str) -> None:
    """One process of a run: ``migrate``, ``add N due``, ``scheduler`` or ``worker``."""
    setup(role)
    from django.core.management import call_command

    if role == "migrate":
        call_command("migrate", verbosity=0)
    elif role == "add":
        add_jobs(int(argv[0]), datetime.fromisoformat(argv[1]))
    elif role == "scheduler":
        from django_metronome.schedulers import BlockingScheduler

        scheduler = BlockingScheduler(timezone=UTC)
        signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
        scheduler.start()
    elif role == "worker":
        call_command("db_worker", "--interval=0.05", "--no-startup-delay", verbosity=0)


def add_jobs(count: int, due: datetime) -> None:
    """What ``django_metronome.add_job`` does, with one builder for all the jobs."""
    from django_metronome.jobstores import DjangoJobStore
    from django_metronome.loop.declare import JobSpec
    from django_metronome.schedulers import BackgroundScheduler

    builder = BackgroundScheduler(timezone=UTC)
    store = DjangoJobStore()
    builder.add_jobstore(store, "default")
    store.start(builder, "default")
    for number in range(count):
        spec = JobSpec.of(
            "benchmarks.tasks:noop_task",
            "date",
            run_date=due,
            id=f"burst-{number:06d}",
            args=[number],
            misfire_grace_time=3600,
            next_run_time=None,  # paused: all made due at once by measure()
        )
        builder.store_job(builder.build_job(spec, declared=False), "default")


def run_child(role: str, *argv: str, wait: bool = True) -> subprocess.Popen[bytes]:
    code = f"import benchmarks.tasks as b; b.child({role!r}, *{list(argv)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    if wait and proc.wait() != 0:
        raise SystemExit(f"{role} failed with exit code {proc.returncode}")
    return proc


def measure(fires: int, schedulers: int, workers: int, timeout: float) -> dict[str, Any]:
    databases.fresh_database("postgres", DATABASE)
    run_child("migrate")
    started = time.monotonic()
    run_child("add", str(fires), datetime.now(UTC).isoformat())
    added = time.monotonic() - started
    due = datetime.now(UTC) + timedelta(seconds=LEAD)
    connection = databases.pg_connect(DATABASE)
    with connection, connection.cursor() as cursor:
        cursor.execute("UPDATE django_metronome_djangojob SET next_run_time = %s", [due])
    connection.close()
    procs = [run_child("scheduler", wait=False) for _ in range(schedulers)]
    try:
        # The enqueue alone first; then the workers drain what was enqueued.
        wait_for_count(fires, "count(*)", due, timeout)
        procs += [run_child("worker", wait=False) for _ in range(workers)]
        figures = wait_and_read(fires, due, timeout)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    figures.update(fires=fires, schedulers=schedulers, workers=workers, add_seconds=added)
    return figures


def wait_for_count(fires: int, count: str, due: datetime, timeout: float) -> None:
    """Poll until ``count`` (an aggregate of the task table) reaches ``fires``."""
    connection = databases.pg_connect(DATABASE)
    connection.autocommit = True
    deadline = time.monotonic() + (due - datetime.now(UTC)).total_seconds() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(f"SELECT {count} FROM django_tasks_database_dbtaskresult")
            if cursor.fetchone()[0] >= fires:
                break
            time.sleep(0.1)
    connection.close()


def wait_and_read(fires: int, due: datetime, timeout: float) -> dict[str, Any]:
    """Poll the database (psycopg, no Django here) until every task finished."""
    connection = databases.pg_connect(DATABASE)
    connection.autocommit = True
    deadline = time.monotonic() + (due - datetime.now(UTC)).total_seconds() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT count(*), count(finished_at), max(enqueued_at), max(finished_at) "
                "FROM django_tasks_database_dbtaskresult"
            )
            total, finished, last_enqueued, last_finished = cursor.fetchone()
            if finished >= fires or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        cursor.execute(
            "SELECT status, count(*) FROM django_metronome_djangojobexecution GROUP BY status"
        )
        statuses = dict(cursor.fetchall())
        cursor.execute(
            "SELECT count(*) FROM (SELECT job_id FROM django_metronome_djangojobexecution "
            "GROUP BY job_id, run_time HAVING count(*) > 1) AS twice"
        )
        (twice,) = cursor.fetchone()
    connection.close()
    enqueue_seconds = (last_enqueued - due).total_seconds() if last_enqueued else None
    return {
        "tasks": total,
        "finished": finished,
        "statuses": statuses,
        "fires_twice": twice,
        "enqueue_seconds": enqueue_seconds,
        "enqueue_rate": fires / enqueue_seconds if enqueue_seconds else None,
        "end_to_end_seconds": (last_finished - due).total_seconds() if last_finished else None,
        "ok": total == fires == finished == statuses.get("succeeded", 0) and twice == 0,
    }


def report(results: list[dict[str, Any]]) -> str:
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("Django", "django-tasks-db", "psycopg")
        if _installed(name)
    )
    lines = [
        "# Benchmarks: fires into django.tasks",
        "",
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {versions}, PostgreSQL; "
        f"source {databases.source_state()}; load average before the run "
        f"{os.getloadavg()[0]:.1f}. `python benchmarks/tasks.py`.",
        "",
        "| fires | schedulers | workers | enqueued in | enqueue rate | all finished after | "
        "checks |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        rate = "-" if r["enqueue_rate"] is None else f"{r['enqueue_rate']:,.0f}/s"
        lines.append(
            f"| {r['fires']:,} | {r['schedulers']} | {r['workers']} | "
            f"{_seconds(r['enqueue_seconds'])} | "
            f"{rate} | "
            f"{_seconds(r['end_to_end_seconds'])} | "
            f"{'each fire once, all succeeded' if r['ok'] else r['statuses']} |"
        )
    lines += [
        "",
        "Enqueued in: from the fires' due time to the last task row's `enqueued_at`",
        "(no task worker runs meanwhile); all finished after: to the last task's",
        "`finished_at` (the workers, started once all were enqueued, run a no-op task).",
        "Every fire has one ledger row and one task row, checked after each run.",
        "django-celery-beat's DatabaseScheduler is not measured here yet.",
    ]
    return "\n".join(lines) + "\n"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fires", type=int, default=2_000)
    parser.add_argument("--schedulers", type=int, action="append")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    results = []
    try:
        for schedulers in args.schedulers or [1, 3]:
            result = measure(args.fires, schedulers, args.workers, args.timeout)
            print(result, flush=True)
            results.append(result)
    finally:
        databases.drop_database("postgres", DATABASE)
    text = report(results)
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
