"""
Fires into django.tasks: how fast scheduler processes enqueue a burst of due
fires into django-tasks-db on PostgreSQL (and into django-tasks-rq on Redis),
how long until the task workers finished them all, and, beside it on the same
PostgreSQL and Redis, django-celery-beat's ``DatabaseScheduler`` sending the same
number of due one-off entries to Celery (``benchmarks/celery_beat.py``).

For each count of due fires (default 2,000 and 20,000) and each count of
processes (django-metronome: 1 and 3 schedulers; django-celery-beat: 1 and 2
beats, paired in that order), each system runs once, one after the other, on a
fresh database:

1. N one-shot jobs whose target is a no-op ``@task`` are added paused, then
   made due, in one statement, at one instant ``due`` a few seconds ahead;
2. the scheduler processes start (a ``BlockingScheduler`` each, with the default
   ``WORKERS``, 10 threads); once every fire is enqueued, the task workers
   (django-tasks-db's ``db_worker``, or ``rqworker``) start, so that the enqueue
   is measured alone;
3. the enqueue time runs from ``due`` to the last task's ``enqueued_at`` (the
   task row; RQ's job hash); the end-to-end time from ``due`` to the last fire's
   ``finished_at`` in the ledger;
4. it checks that every fire has one ledger row and one task, and how it ended.

django-celery-beat's runs are described in ``benchmarks/celery_beat.py``; the
report (``--output``) says how every figure is measured.

Runs with more than ``--drain-up-to`` fires (default 2,000) measure the sends
only, except the one-process run of django-tasks-db and of django-celery-beat
(``--drain-once``), so that a full run stays near 20 minutes on 2 cores; the send
phase of a run that does not drain stops after ``--short-timeout`` (120 s), which
only two beats with 20,000 entries reach.

    python benchmarks/tasks.py --redis redis://127.0.0.1:6391/0 --output docs/benchmarks-tasks.md
    python benchmarks/tasks.py --fires 200 --system tasks-db --schedulers 1

PostgreSQL comes from ``PGHOST``/``PGPORT``/``PGUSER``, as for ``psql``; the
database ``--database`` (default ``metronome_bench_tasks``) and the Redis database
``--redis`` are emptied before every run.
"""

from __future__ import annotations

import argparse
import ast
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

DATABASE = os.environ.get("METRONOME_BENCH_DATABASE", "metronome_bench_tasks")
REDIS_URL = os.environ.get("METRONOME_BENCH_REDIS", "redis://127.0.0.1:6379/0")
#: Seconds from making the (paused) jobs due to their due time: the processes start
#: meanwhile.
LEAD = 6.0
#: The systems, in the order each configuration runs them.
SYSTEMS = ("tasks-db", "tasks-rq", "celery-beat")
#: django-tasks-rq's queue (an RQ queue: the Redis list ``rq:queue:<name>``).
RQ_QUEUE = "default"


def noop_task(number: int) -> int:
    """The task every fire enqueues (made a Task by :func:`setup`)."""
    return number


def setup(role: str) -> None:
    """Django for this database and backend (``METRONOME_BENCH_BACKEND``: db or rq)."""
    from importlib.util import find_spec

    apps = ["django_metronome", "django_tasks_db"]
    if not find_spec("django.tasks"):
        apps.insert(0, "django_tasks")
    tasks_setting: dict[str, Any] = {"BACKEND": "django_tasks_db.DatabaseBackend"}
    extra: dict[str, Any] = {}
    if os.environ.get("METRONOME_BENCH_BACKEND") == "rq":
        apps.append("django_rq")
        tasks_setting = {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": [RQ_QUEUE]}
        extra["RQ_QUEUES"] = {RQ_QUEUE: {"URL": REDIS_URL}}
    databases.configure_django(
        databases.database_settings("postgres", DATABASE),
        INSTALLED_APPS=apps,
        TASKS={"default": tasks_setting},
        METRONOME={"ALLOWED_MODULES": ["benchmarks"]},
        **extra,
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
    elif role == "worker" and os.environ.get("METRONOME_BENCH_BACKEND") == "rq":
        # As tests/test_tasks_rq.py and docs/tasks.md run it; SimpleWorker: no fork per job.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        call_command(
            "rqworker",
            RQ_QUEUE,
            "--worker-class=rq.worker.SimpleWorker",
            "--job-class=django_tasks_rq.backend.Job",
            verbosity=0,
        )
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


def run_child(
    role: str, *argv: str, backend: str = "db", wait: bool = True
) -> subprocess.Popen[bytes]:
    code = f"import benchmarks.tasks as b; b.child({role!r}, *{list(argv)!r})"
    env = {
        **os.environ,
        "METRONOME_BENCH_BACKEND": backend,
        "METRONOME_BENCH_DATABASE": DATABASE,
        "METRONOME_BENCH_REDIS": REDIS_URL,
    }
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env)
    if wait and proc.wait() != 0:
        raise SystemExit(f"{role} failed with exit code {proc.returncode}")
    return proc


def measure(
    backend: str, fires: int, schedulers: int, workers: int, drain: bool, timeout: float
) -> dict[str, Any]:
    """One run of django-metronome into django-tasks-db (``db``) or django-tasks-rq (``rq``)."""
    databases.fresh_database("postgres", DATABASE)
    if backend == "rq":
        redis_client().flushdb()
    run_child("migrate", backend=backend)
    started = time.monotonic()
    run_child("add", str(fires), datetime.now(UTC).isoformat(), backend=backend)
    added = time.monotonic() - started
    due = datetime.now(UTC) + timedelta(seconds=LEAD)
    connection = databases.pg_connect(DATABASE)
    with connection, connection.cursor() as cursor:
        cursor.execute("UPDATE django_metronome_djangojob SET next_run_time = %s", [due])
    connection.close()
    procs = [run_child("scheduler", backend=backend, wait=False) for _ in range(schedulers)]
    try:
        # The enqueue alone first; then the workers drain what was enqueued.
        if backend == "rq":
            figures = wait_for_rq_enqueue(fires, due, timeout)
        else:
            figures = wait_for_db_enqueue(fires, due, timeout)
        if drain and figures["tasks"] == fires:
            procs += [run_child("worker", backend=backend, wait=False) for _ in range(workers)]
        else:
            drain = False
        figures.update(wait_and_read(fires, due, timeout if drain else 0.0))
    finally:
        databases.stop_processes(procs)
    statuses = figures["statuses"]
    want = "succeeded" if drain else "enqueued"
    figures["ok"] = (
        figures["tasks"] == fires == statuses.get(want, 0) and figures["fires_twice"] == 0
    )
    figures["checks"] = (
        f"each fire once, all {want}"
        if figures["ok"]
        else f"{figures['tasks']:,} of {fires:,} enqueued; ledger {statuses}"
    )
    figures.update(
        system=f"tasks-{backend}",
        fires=fires,
        processes=schedulers,
        workers=workers if drain else 0,
        add_seconds=added,
        sent_twice=figures["fires_twice"],
    )
    return figures


def _rate(fires: int, sent: int, seconds: float | None, waited: float) -> dict[str, Any]:
    """The figures of a send phase: complete (``seconds``) or cut by the timeout."""
    if sent >= fires and seconds:
        return {"sent_seconds": seconds, "rate": fires / seconds, "sent_by_timeout": None}
    return {
        "sent_seconds": None,
        "rate": sent / waited if waited else None,
        "sent_by_timeout": sent,
    }


def wait_for_db_enqueue(fires: int, due: datetime, timeout: float) -> dict[str, Any]:
    """Poll django-tasks-db's table until ``fires`` tasks are in it; the last ``enqueued_at``."""
    connection = databases.pg_connect(DATABASE)
    deadline = time.monotonic() + (due - datetime.now(UTC)).total_seconds() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT count(*), max(enqueued_at) FROM django_tasks_database_dbtaskresult"
            )
            count, last = cursor.fetchone()
            if count >= fires or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    connection.close()
    seconds = (last - due).total_seconds() if last else None
    return {
        "tasks": count,
        **_rate(fires, count, seconds, (datetime.now(UTC) - due).total_seconds()),
    }


def redis_client() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL)


def wait_for_rq_enqueue(fires: int, due: datetime, timeout: float) -> dict[str, Any]:
    """Poll RQ's queue until ``fires`` jobs are in it; the last job's ``enqueued_at``."""
    client = redis_client()
    key = f"rq:queue:{RQ_QUEUE}"
    deadline = time.monotonic() + (due - datetime.now(UTC)).total_seconds() + timeout
    while client.llen(key) < fires and time.monotonic() < deadline:
        time.sleep(0.1)
    ids = client.lrange(key, 0, -1)
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(b"rq:job:" + job_id, "enqueued_at")
    stamps = [
        datetime.strptime(value.decode(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        for value in pipe.execute()
        if value
    ]
    seconds = (max(stamps) - due).total_seconds() if stamps else None
    return {
        "tasks": len(ids),
        **_rate(fires, len(ids), seconds, (datetime.now(UTC) - due).total_seconds()),
    }


def wait_and_read(fires: int, due: datetime, timeout: float) -> dict[str, Any]:
    """Poll the ledger (psycopg, no Django here) until every fire finished; its checks."""
    connection = databases.pg_connect(DATABASE)
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT count(finished_at), max(finished_at) "
                "FROM django_metronome_djangojobexecution"
            )
            finished, last_finished = cursor.fetchone()
            if finished >= fires or time.monotonic() >= deadline:
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
    return {
        "finished": finished,
        "statuses": statuses,
        "fires_twice": twice,
        "end_to_end_seconds": (last_finished - due).total_seconds()
        if last_finished and finished >= fires
        else None,
    }


LABELS = {
    "tasks-db": "django-metronome → django-tasks-db",
    "tasks-rq": "django-metronome → django-tasks-rq",
    "celery-beat": "django-celery-beat → Celery",
    "celery-beat-age0": "django-celery-beat → Celery, `CONN_MAX_AGE=0`",
}


def report(results: list[dict[str, Any]], command: str, load: tuple[float, ...]) -> str:
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in (
            "Django",
            "django-tasks",
            "django-tasks-db",
            "django-tasks-rq",
            "rq",
            "celery",
            "kombu",
            "django-celery-beat",
            "redis",
            "psycopg",
        )
        if _installed(name)
    )
    lines = [
        "# Benchmarks: fires into django.tasks, and django-celery-beat beside it",
        "",
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {versions}, PostgreSQL {_server_version()}, "
        f"Redis {_redis_version()}; source {databases.source_state()}; load average "
        f"before the run {load[0]:.1f} (1 min), {load[1]:.1f} (5 min), after it "
        f"{os.getloadavg()[0]:.1f}. `{command}`.",
        "",
        "| system | due at once | processes | sent in | send rate | all finished after "
        "| sent more than once | checks |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if r["sent_seconds"] is not None:
            sent, rate = _seconds(r["sent_seconds"]), f"{r['rate']:,.0f}/s"
        else:
            waited = f" in {r['sent_by_timeout'] / r['rate']:.0f} s" if r["rate"] else ""
            sent = f"{r['sent_by_timeout']:,} of {r['fires']:,}{waited} (timeout)"
            rate = "-" if r["rate"] is None else f"{r['rate']:,.0f}/s so far"
        finished = (
            f"{_seconds(r['end_to_end_seconds'])} ({r['workers']} workers)"
            if r.get("end_to_end_seconds") is not None
            else "not drained"
            if not r["workers"]
            else "-"
        )
        lines.append(
            f"| {LABELS[r['system']]} | {r['fires']:,} | {r['processes']} | {sent} | {rate} | "
            f"{finished} | {r['sent_twice']:,} | {r['checks']} |"
        )
    lines += ["", *ratios(results), ""]
    lines += METHOD.strip("\n").splitlines()
    return "\n".join(lines) + "\n"


def ratios(results: list[dict[str, Any]]) -> list[str]:
    """The send rate of each of our rows over django-celery-beat's at the same count."""
    rows = []
    for ours in results:
        if not ours["system"].startswith("tasks-") or not ours["rate"]:
            continue
        for beat in results:
            if beat["system"] != "celery-beat" or beat["fires"] != ours["fires"]:
                continue
            if not beat["rate"] or (beat["processes"] == 1) != (ours["processes"] == 1):
                continue
            # A beat cut by the timeout had sent fewer: its rate so far is an upper bound.
            bound = "≥ " if beat["sent_seconds"] is None else ""
            rows.append(
                [
                    f"{ours['fires']:,}",
                    f"{LABELS[ours['system']]}, {ours['processes']}",
                    f"django-celery-beat, {beat['processes']}",
                    f"{bound}{ours['rate'] / beat['rate']:.1f}x",
                ]
            )
    if not rows:
        return []
    head = ["due at once", "ours (processes)", "vs (processes)", "send rate, ours / theirs"]
    return ["Ratios:", "", databases.markdown_table(head, rows)]


METHOD = """
How each run goes, on a fresh PostgreSQL database (and, for the Redis rows, a
flushed Redis database), N entries due at one instant a few seconds after the
processes start:

- **django-metronome**: N one-shot `DateTrigger` jobs whose target is a no-op
  `@task` are added paused, then made due in one `UPDATE`; 1 or 3
  `BlockingScheduler` processes (package defaults: 10 `WORKERS` threads) claim
  each fire in the ledger and enqueue its task. Into django-tasks-db, the task
  row and the ledger's move to `enqueued` share one transaction; into
  django-tasks-rq (RQ on the same Redis as Celery) the task is pushed to Redis,
  then the ledger is told. *Sent in*: from the due time to the last task's
  `enqueued_at` (the task row, or RQ's job hash). *Sent more than once*: ledger
  rows sharing a (job, run time): the ledger's unique key makes it 0.
- **django-celery-beat**: N `PeriodicTask` rows with `one_off=True`, each with
  its own `ClockedSchedule`, are created with `bulk_create`, then every
  `clocked_time` is set to the due instant in one `UPDATE`; 1 or 2 `celery beat
  -S django_celery_beat.schedulers:DatabaseScheduler` processes send them to
  Celery's Redis queue. *Sent in*: from the due time until every entry's message
  is in the queue (read every 0.1 s, by the message's `periodic_task_name`
  header); *sent more than once*: entries with more than one message once the
  queue stopped growing for 3 s. Celery beat keeps no shared claim: each beat
  process sends every entry, and Celery's documentation says to run one beat.
- A send phase stops after `--timeout` (450 s) when the run drains, after
  `--short-timeout` (120 s) when it does not: "X of N in T s (timeout)" and the
  rate so far (ratios against such a row are marked ≥).
- No worker runs while the entries are sent. *All finished after*: then the
  workers start, and this is the time from the due instant to the last task's
  end: for django-metronome the ledger's `finished_at` of the last fire (written
  by the worker's `task_finished` signal), with 2 `db_worker` processes or 2
  `rqworker` processes (`SimpleWorker`, no fork per job); for Celery the last
  call of the no-op task (it records each call with one Redis round trip), on
  one `celery worker` with `--concurrency 2` (prefork), which also runs the
  duplicates. "not drained": measured without workers, to keep the run short.
- Settings: django-celery-beat's defaults, which matter here:
  `beat_max_loop_interval` unset (`DatabaseScheduler` then wakes at least every
  5 s; it wakes at the due time anyway), `beat_sync_every` 0 (run counts and
  `last_run_at` written every 3 minutes and at shutdown); Django's
  `CONN_MAX_AGE=None` in the beat (a persistent connection: with Django's default
  0, `DatabaseScheduler` closes its connection on every tick and reconnects for
  the next, about 3.5x slower: the `CONN_MAX_AGE=0` row). django-metronome runs
  with Django's default 0 (it keeps a thread's connection itself from enqueue to
  enqueue).
- Why django-celery-beat slows down as N grows: on every tick, which sends one
  entry, `celery.beat.Scheduler.tick` compares the whole schedule with its copy
  (`schedules_equal`, every entry's task, args, options and schedule) and
  `DatabaseScheduler` asks the database whether the schedule changed; the time
  to send N due entries grows as N².
"""


def _server_version() -> str:
    try:
        with databases.pg_connect() as connection:
            return connection.execute("SHOW server_version").fetchone()[0].split()[0]
    except Exception:  # the header says so
        return "(version unknown)"


def _redis_version() -> str:
    try:
        return str(redis_client().info("server")["redis_version"])
    except Exception:
        return "(not reachable)"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def plan(args: argparse.Namespace) -> list[tuple[str, int, int, bool]]:
    """(system, fires, processes, drain) of every run, interleaved: each configuration
    runs every system one after the other."""
    runs = []
    for fires in args.fires or [2_000, 20_000]:
        for index, schedulers in enumerate(args.schedulers or [1, 3]):
            beats = (args.beats or [1, 2])[min(index, len(args.beats or [1, 2]) - 1)]
            for system in args.system or SYSTEMS:
                processes = beats if system == "celery-beat" else schedulers
                drain = fires <= args.drain_up_to or (processes == 1 and system in args.drain_once)
                runs.append((system, fires, processes, drain))
        if fires <= args.drain_up_to and "celery-beat" in (args.system or SYSTEMS):
            if args.default_conn_max_age:
                runs.append(("celery-beat-age0", fires, 1, True))
    return runs


def main() -> None:
    global DATABASE, REDIS_URL  # the children get them through the environment
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fires", type=int, action="append", help="default: 2,000 and 20,000")
    parser.add_argument(
        "--schedulers", type=int, action="append", help="django-metronome's; default 1 and 3"
    )
    parser.add_argument("--beats", type=int, action="append", help="Celery beats; default 1 and 2")
    parser.add_argument("--system", action="append", choices=SYSTEMS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--drain-up-to",
        type=int,
        default=2_000,
        help="runs with more fires measure the sends only, except --drain-once",
    )
    parser.add_argument(
        "--drain-once",
        action="append",
        default=None,
        help="systems whose one-process run drains at every count (default tasks-db, celery-beat)",
    )
    parser.add_argument(
        "--no-default-conn-max-age",
        dest="default_conn_max_age",
        action="store_false",
        help="skip the celery-beat run with Django's CONN_MAX_AGE=0",
    )
    parser.add_argument("--timeout", type=float, default=450.0, help="per phase, seconds")
    parser.add_argument(
        "--short-timeout",
        type=float,
        default=120.0,
        help="seconds for the send phase of a run that does not drain",
    )
    parser.add_argument(
        "--redis",
        default=REDIS_URL,
        help="Redis database for RQ and Celery, flushed before each run "
        "(default: $METRONOME_BENCH_REDIS or redis://127.0.0.1:6379/0)",
    )
    parser.add_argument(
        "--database",
        default=DATABASE,
        help="PostgreSQL database, dropped and created again for each run "
        "(default: $METRONOME_BENCH_DATABASE or metronome_bench_tasks)",
    )
    parser.add_argument("--output", type=Path)
    parser.add_argument(
        "--report-from",
        type=Path,
        help="write the report of an earlier run from its printed output, without measuring",
    )
    args = parser.parse_args()
    DATABASE, REDIS_URL = args.database, args.redis
    if args.drain_once is None:
        args.drain_once = ["tasks-db", "celery-beat"]
    if args.report_from:
        lines = args.report_from.read_text().splitlines()
        results = [ast.literal_eval(line) for line in lines if line.startswith("{")]
        load = ast.literal_eval(next(x for x in lines if x.startswith("load: "))[6:])
        command = next(x for x in lines if x.startswith("command: "))[9:]
        text = report(results, command, load)
        print(text)
        if args.output:
            args.output.write_text(text)
        return
    load = os.getloadavg()
    command = " ".join(["python benchmarks/tasks.py", *sys.argv[1:]])
    print(f"command: {command}\nload: {load!r}", flush=True)
    runs = plan(args)
    os.environ.update(METRONOME_BENCH_DATABASE=DATABASE, METRONOME_BENCH_REDIS=REDIS_URL)
    if any(system.startswith("celery-beat") for system, *_ in runs):
        import crontab

        if not hasattr(crontab, "CronSlices"):
            raise SystemExit(
                "The `crontab` package shadows python-crontab, which django-celery-beat "
                "needs: pip uninstall -y crontab (see benchmarks/requirements-tasks.txt)."
            )
    needs_redis = any(system != "tasks-db" for system, *_ in runs)
    if needs_redis:
        try:
            redis_client().ping()
        except Exception as error:
            raise SystemExit(f"Redis at {REDIS_URL} does not answer ({error})") from error
    results = []
    try:
        for system, fires, processes, drain in runs:
            timeout = args.timeout if drain else args.short_timeout
            started = time.monotonic()
            if system.startswith("tasks-"):
                result = measure(system[6:], fires, processes, args.workers, drain, timeout)
            else:
                from benchmarks import celery_beat

                max_age = "0" if system == "celery-beat-age0" else "none"
                result = celery_beat.measure(
                    fires, processes, args.workers, drain, timeout, LEAD, max_age
                )
            result["run_seconds"] = time.monotonic() - started
            print({k: v for k, v in result.items() if k != "statuses"}, flush=True)
            results.append(result)
    finally:
        databases.drop_database("postgres", DATABASE)
    text = report(results, command, load)
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
