"""
Throughput benchmark: N one-shot no-op jobs, all due at once, one process.

For every system, database and N, a fresh subprocess on a fresh database:

1. builds the system's scheduler (same executor and job defaults for all),
   starts it paused and adds the N jobs (timed, reported as "add");
2. resumes it and waits until every job has run, the scheduler thread died,
   or the timeout passed (timed, reported as "run" and fires per second);
3. shuts the scheduler down, waiting for its pending work (ledger writes
   included), and reports when that was done ("settled");
4. checks that every job ran exactly once, counted by the job itself
   (:mod:`benchmarks.jobs`), and that every run is in the system's history.

A second kind of run measures database queries per second while idle: K jobs
due far in the future, the scheduler running, queries counted for a few
seconds.

Run it through ``benchmarks/run`` (which prepares a virtualenv and PostgreSQL),
or directly with ``python benchmarks/throughput.py --help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# ``python benchmarks/throughput.py`` puts benchmarks/ first on sys.path; the job
# must be importable as ``benchmarks.jobs`` (that is the reference the stores keep).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]
sys.path.insert(0, str(REPO))

from benchmarks import databases  # noqa: E402

PG_DATABASE = "metronome_bench"
FULL_JOB_COUNTS = (2_000, 20_000)
QUICK_JOB_COUNTS = (200,)
WORKERS = 10  # APScheduler's default ThreadPoolExecutor size, for every system
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
DEFAULT_OUTPUT = REPO / "docs" / "benchmarks.md"


# =============================================================================
# Systems under test. Each runner has the same interface:
#   setup(n, due) -> add seconds; start(); wait(n, timeout); settle(timeout);
#   verify(n); teardown().
# Only the child process imports a runner's dependencies.
# =============================================================================


class QueryCounter:
    """Counts database queries issued by any thread but the benchmark's own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._harness = threading.get_ident()
        self.connections = 0  # database connections opened, likewise

    def hit(self) -> None:
        if threading.get_ident() != self._harness:
            with self._lock:
                self._count += 1

    def connected(self) -> None:
        if threading.get_ident() != self._harness:
            with self._lock:
                self.connections += 1

    def take(self) -> int:
        """Return the count so far and start again from zero."""
        with self._lock:
            count, self._count = self._count, 0
            return count


class ThreadDeaths:
    """Remembers uncaught exceptions that ended threads (the scheduler's, above all)."""

    def __init__(self) -> None:
        self.errors: list[tuple[float, int, str]] = []  # (perf_counter, fires by then, what)
        self._previous = threading.excepthook
        threading.excepthook = self._hook

    def _hook(self, args: threading.ExceptHookArgs) -> None:
        from benchmarks import jobs

        name = args.thread.name if args.thread else "?"
        what = f"thread {name!r} died: {args.exc_type.__name__}: {args.exc_value}"
        self.errors.append((time.perf_counter(), jobs.distinct_runs(), what))
        self._previous(args)


class LogTally(logging.Handler):
    """Counts warnings and errors logged in the run, grouped by what they say."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string must not break the run
            text = str(record.msg)
        text = re.sub(r"bench-\d{6}", "<job>", text.splitlines()[0] if text else "")
        text = re.sub(r"\d+(\.\d+)?", "N", text)  # "(3 in a row); retrying in 0.8 s"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f" [{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}]"
        key = f"{record.levelname} {record.name}: {text[:240]}"
        self.counts[key] = self.counts.get(key, 0) + 1

    def top(self, limit: int = 5) -> list[tuple[int, str]]:
        return sorted(((c, k) for k, c in self.counts.items()), reverse=True)[:limit]


@dataclass
class WaitResult:
    status: str  # "done", "died", "stalled" or "timeout"
    fires: int  # distinct jobs that ran when waiting ended
    seconds: float  # start to last fire ("done"), or to when waiting ended


class Runner:
    """One system under test, in this process."""

    key = ""
    label = ""
    uses_django = False
    has_history = False

    def __init__(self, db: str, sqlite_path: str | None) -> None:
        self.db = db
        self.sqlite_path = sqlite_path
        self.counter = QueryCounter()
        self.deaths = ThreadDeaths()
        self.logs = LogTally()
        self.scheduler: Any = None
        self.t_start = 0.0
        self.t_stop: float | None = None  # when the benchmark stopped it without waiting

    # -- the interface ---------------------------------------------------------

    def setup(self, n: int, due: datetime | None = None) -> float:
        """Build the scheduler, start it paused, add ``n`` jobs; return the add time."""
        from apscheduler.triggers.date import DateTrigger
        from benchmarks import jobs

        if self.uses_django:
            self._setup_django()  # configures logging from benchmarks/settings.py
        root = logging.getLogger()
        if not root.handlers:
            root.addHandler(logging.StreamHandler())
            root.setLevel(logging.WARNING)
        root.addHandler(self.logs)
        self.scheduler = self.make_scheduler()
        self.scheduler.start(paused=True)
        trigger = DateTrigger(run_date=due or datetime.now(UTC))
        self.counter.take()
        started = time.perf_counter()
        for i in range(n):
            key = f"bench-{i:06d}"
            self.scheduler.add_job(jobs.noop, trigger, args=[key], id=key, name=key)
        return time.perf_counter() - started

    def start(self) -> None:
        """Let the scheduler process its jobs: the timed part starts here."""
        self.t_start = time.perf_counter()
        self.scheduler.resume()

    def wait(self, n: int, timeout: float, stall: float) -> WaitResult:
        """Wait until all ``n`` ran, the thread died, no job ran for ``stall`` s, or timeout."""
        from benchmarks import jobs

        deadline = self.t_start + timeout
        progress, progress_at = 0, self.t_start
        while True:
            fires = jobs.distinct_runs()
            now = time.perf_counter()
            if fires >= n:
                _, last = jobs.snapshot()
                return WaitResult("done", fires, last - self.t_start)
            if not self.alive():
                time.sleep(1.0)  # let fires already handed to the pool finish
                return WaitResult("died", jobs.distinct_runs(), now - self.t_start)
            if fires > progress:
                progress, progress_at = fires, now
            elif now - progress_at > stall:
                return WaitResult("stalled", fires, now - self.t_start)
            if now > deadline:
                return WaitResult("timeout", fires, timeout)
            time.sleep(0.01)

    def settle(self, timeout: float) -> float | None:
        """
        Shut down, waiting for queued work (ledger writes included).

        Return the seconds from start until that was done, or None if it took
        longer than ``timeout`` (the shutdown then goes on in the background).
        """
        done = threading.Event()

        def shutdown() -> None:
            self.scheduler.shutdown(wait=True)
            done.set()

        threading.Thread(target=shutdown, name="bench-shutdown", daemon=True).start()
        if not done.wait(timeout):
            return None
        return time.perf_counter() - self.t_start

    def stop_now(self) -> None:
        """Stop without waiting (after a timeout or a dead thread)."""
        self.t_stop = time.perf_counter()
        threading.Thread(
            target=self.scheduler.shutdown, kwargs={"wait": False}, daemon=True
        ).start()

    def alive(self) -> bool:
        thread = getattr(self.scheduler, "_thread", None)
        return thread is None or thread.is_alive()

    def verify(self, n: int) -> dict[str, Any]:
        from benchmarks import jobs

        calls, _ = jobs.snapshot()
        expected = {f"bench-{i:06d}" for i in range(n)}
        return {
            "ran": len(calls.keys() & expected),
            "calls": sum(calls.values()),
            "ran_twice_or_more": sum(1 for c in calls.values() if c > 1),
            "unexpected": len(calls.keys() - expected),
            "jobs_left": self.jobs_left(),
            "history": self.history() if self.has_history else None,
        }

    def teardown(self) -> None:
        if self.uses_django:
            from django.db import connections

            connections.close_all()

    # -- per-system hooks ------------------------------------------------------

    def make_scheduler(self) -> Any:
        raise NotImplementedError

    def jobs_left(self) -> int | None:
        return None

    def history(self) -> dict[str, Any]:
        return {}

    # -- helpers ---------------------------------------------------------------

    def scheduler_options(self) -> dict[str, Any]:
        from apscheduler.executors.pool import ThreadPoolExecutor

        return {
            "timezone": UTC,
            "executors": {"default": ThreadPoolExecutor(WORKERS)},
            # A fire is never dropped for being late: every system must run all N.
            "job_defaults": {"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        }

    def _setup_django(self) -> None:
        import django
        from django.core.management import call_command
        from django.db import connections
        from django.db.backends.signals import connection_created

        os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
        os.environ["METRONOME_BENCH_APP"] = self.django_app
        os.environ["METRONOME_BENCH_DB"] = self.db
        os.environ["METRONOME_BENCH_PG_NAME"] = PG_DATABASE
        if self.sqlite_path:
            os.environ["METRONOME_BENCH_SQLITE"] = self.sqlite_path
        django.setup()
        call_command("migrate", verbosity=0, interactive=False)

        counter = self.counter

        def count(execute: Any, sql: Any, params: Any, many: Any, context: Any) -> Any:
            counter.hit()
            return execute(sql, params, many, context)

        def on_connect(sender: Any, connection: Any, **kwargs: Any) -> None:
            counter.connected()
            if count not in connection.execute_wrappers:
                connection.execute_wrappers.append(count)

        # Each thread has its own connection: hook every one, present and future.
        connection_created.connect(on_connect, weak=False)
        for connection in connections.all():
            if count not in connection.execute_wrappers:
                connection.execute_wrappers.append(count)

    django_app = ""


class DjangoApschedulerRunner(Runner):
    key = "django-apscheduler"
    label = "django-apscheduler 0.7.0 `DjangoJobStore`"
    uses_django = True
    has_history = True
    django_app = "django_apscheduler"

    def make_scheduler(self) -> Any:
        from apscheduler.schedulers.background import BackgroundScheduler
        from django_apscheduler.jobstores import DjangoJobStore

        # As its README sets it up: the store as "default"; the store registers
        # its own execution-history listeners when it starts.
        scheduler = BackgroundScheduler(**self.scheduler_options())
        scheduler.add_jobstore(DjangoJobStore(), "default")
        return scheduler

    def jobs_left(self) -> int | None:
        from django_apscheduler.models import DjangoJob

        return DjangoJob.objects.count()

    def history(self) -> dict[str, Any]:
        from django.db.models import Count
        from django_apscheduler.models import DjangoJobExecution

        statuses = dict(
            DjangoJobExecution.objects.values_list("status").annotate(n=Count("id")).order_by()
        )
        return {
            "succeeded": statuses.get(DjangoJobExecution.SUCCESS, 0),
            "statuses": statuses,
        }


class SQLAlchemyRunner(Runner):
    key = "sqlalchemy"
    label = "APScheduler 3.11 `SQLAlchemyJobStore`"

    def make_scheduler(self) -> Any:
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler
        from sqlalchemy import create_engine, event

        if self.db == "sqlite":
            url = f"sqlite:///{self.sqlite_path}"
        else:
            url = f"postgresql+psycopg:///{PG_DATABASE}"  # libpq reads PGHOST, PGUSER...
        self.engine = create_engine(url)
        event.listen(self.engine, "before_cursor_execute", lambda *a, **k: self.counter.hit())
        event.listen(self.engine, "connect", lambda *a, **k: self.counter.connected())
        self.store = SQLAlchemyJobStore(engine=self.engine)
        scheduler = BackgroundScheduler(**self.scheduler_options())
        scheduler.add_jobstore(self.store, "default")
        return scheduler

    def jobs_left(self) -> int | None:
        from sqlalchemy import func, select

        with self.engine.connect() as connection:
            return connection.execute(
                select(func.count()).select_from(self.store.jobs_t)
            ).scalar_one()

    def teardown(self) -> None:
        self.engine.dispose()


class MemoryRunner(Runner):
    key = "memory"
    label = "APScheduler 3.11 `MemoryJobStore` (nothing persisted)"

    def make_scheduler(self) -> Any:
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        self.store = MemoryJobStore()
        scheduler = BackgroundScheduler(**self.scheduler_options())
        scheduler.add_jobstore(self.store, "default")
        return scheduler

    def jobs_left(self) -> int | None:
        return len(self.store.get_all_jobs())


class MetronomeStoreRunner(Runner):
    key = "metronome-store"
    label = "django-metronome `DjangoJobStore` on APScheduler's `BackgroundScheduler`"
    uses_django = True
    has_history = True
    django_app = "django_metronome"

    def scheduler_class(self) -> Any:
        from apscheduler.schedulers.background import BackgroundScheduler

        return BackgroundScheduler

    def make_scheduler(self) -> Any:
        from django_metronome.jobstores import DjangoJobStore, register_events

        scheduler = self.scheduler_class()(**self.scheduler_options())
        scheduler.add_jobstore(DjangoJobStore(), "default")
        register_events(scheduler)
        return scheduler

    def jobs_left(self) -> int | None:
        from django_metronome.models import DjangoJob

        return DjangoJob.objects.count()

    def history(self) -> dict[str, Any]:
        from django.db.models import Count

        from django_metronome.models import DjangoJobExecution, ExecutionStatus

        rows = DjangoJobExecution.objects
        statuses = dict(rows.values_list("status").annotate(n=Count("id")).order_by())
        succeeded = rows.filter(status=ExecutionStatus.SUCCEEDED)
        return {
            "succeeded": statuses.get(ExecutionStatus.SUCCEEDED, 0),
            "statuses": statuses,
            # Completeness of the rows, not only their number.
            "succeeded_without_started_at": succeeded.filter(started_at__isnull=True).count(),
            "succeeded_without_duration": succeeded.filter(duration__isnull=True).count(),
            "without_job_name": rows.filter(job_name="").count(),
        }


class MetronomeSchedulerRunner(MetronomeStoreRunner):
    """
    django-metronome's own scheduler (skipped while ``django_metronome.schedulers`` is missing).

    Set up exactly as the store runner, as the brief's reference usage does: only
    the scheduler's import changes. ``register_events`` adds nothing to schedulers
    of this family, which record their own runs.
    """

    key = "metronome"
    label = "django-metronome scheduler"

    def scheduler_class(self) -> Any:
        from django_metronome.schedulers import BackgroundScheduler

        return BackgroundScheduler


RUNNERS: dict[str, type[Runner]] = {
    r.key: r
    for r in (
        DjangoApschedulerRunner,
        SQLAlchemyRunner,
        MemoryRunner,
        MetronomeStoreRunner,
        MetronomeSchedulerRunner,
    )
}
# What each system needs importable, for the note printed when it is skipped.
REQUIRES = {
    "django-apscheduler": ["django_apscheduler"],
    "sqlalchemy": ["sqlalchemy"],
    "memory": [],
    "metronome-store": ["django_metronome.jobstores"],
    "metronome": ["django_metronome.schedulers"],
}


# =============================================================================
# The child: one (system, database, N) in a fresh process.
# =============================================================================


def child_main(args: argparse.Namespace) -> None:
    result: dict[str, Any] = {"system": args.system, "db": args.db, "n": args.n, "mode": args.mode}
    runner = RUNNERS[args.system](args.db, args.sqlite_path)
    try:
        if args.mode == "throughput":
            result.update(measure_throughput(runner, args))
        else:
            result.update(measure_idle(runner, args))
    except Exception as exc:
        import traceback

        traceback.print_exc()
        result["status"] = "error"
        result["error"] = f"{type(exc).__name__}: {exc}"
    # A thread that dies after the benchmark stopped it mid-burst (APScheduler's
    # loop raises JobLookupError once the scheduler is shut down) is not the system's fault.
    result["thread_errors"] = [
        f"{what} ({when - runner.t_start:.1f} s after start, after {fires:,} fires)"
        if runner.t_start
        else what
        for when, fires, what in runner.deaths.errors
        if runner.t_stop is None or when < runner.t_stop
    ]
    result["log_tally"] = runner.logs.top()
    Path(args.result_file).write_text(json.dumps(result, default=str))
    sys.stdout.flush()
    sys.stderr.flush()
    # Pool threads are not daemons: do not wait for a timed-out system to drain.
    os._exit(0)


def measure_throughput(runner: Runner, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["add_s"] = runner.setup(args.n)
    runner.counter.connections = 0
    runner.start()
    waited = runner.wait(args.n, args.timeout, args.stall_timeout)
    out.update(status=waited.status, fires=waited.fires, run_s=waited.seconds)
    out["stall_s"] = args.stall_timeout
    if waited.status == "done":
        out["settled_s"] = runner.settle(args.settle_timeout)
    else:
        runner.stop_now()
        time.sleep(2.0)  # let writes in flight land before counting
        out["settled_s"] = None
    out["run_queries"] = runner.counter.take()
    out["run_connections"] = runner.counter.connections
    out["verify"] = runner.verify(args.n)
    runner.teardown()
    return out


def measure_idle(runner: Runner, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["add_s"] = runner.setup(args.n, due=FAR_FUTURE)
    runner.counter.take()
    runner.start()
    time.sleep(args.idle_warmup)
    out["start_queries"] = runner.counter.take()
    runner.counter.connections = 0
    time.sleep(args.idle_seconds)
    out["idle_queries"] = runner.counter.take()
    out["idle_connections"] = runner.counter.connections
    out["idle_s"] = args.idle_seconds
    out["status"] = "done" if runner.alive() else "died"
    runner.stop_now()
    runner.teardown()
    return out


# =============================================================================
# The parent: plan, fresh databases, subprocesses, report.
# =============================================================================


@dataclass
class Run:
    system: str
    db: str  # "sqlite", "postgres" or "none" (MemoryJobStore)
    n: int
    mode: str = "throughput"
    result: dict[str, Any] = field(default_factory=dict)
    log: str = ""


def available(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except ImportError:
        return False


def postgres_version() -> str | None:
    """The server's version, or None when PostgreSQL cannot be reached."""
    try:
        with databases.pg_connect(patience=5.0) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else "?"
    except Exception as exc:
        print(f"note: PostgreSQL not reachable ({type(exc).__name__}: {exc}); skipping it.")
        return None


def plan_runs(args: argparse.Namespace, dbs: list[str], systems: list[str]) -> list[Run]:
    # MemoryJobStore has no database: it runs once per N, as db "none".
    pairs = [
        (system, db)
        for db in ["none", *dbs]
        for system in systems
        if (system == "memory") == (db == "none")
    ]
    runs = [Run(system, db, n) for n in args.jobs for system, db in pairs]
    if args.idle_jobs:
        runs += [Run(system, db, args.idle_jobs, mode="idle") for system, db in pairs]
    return runs


def execute(run: Run, args: argparse.Namespace, workdir: Path) -> None:
    name = f"{run.mode}-{run.system}-{run.db}-{run.n}"
    if (workdir / f"{name}.log").exists():
        name += "-retry"
    run.result = {}
    sqlite_path = workdir / f"{name}.sqlite3"
    result_file = workdir / f"{name}.json"
    log_file = workdir / f"{name}.log"
    run.log = str(log_file)
    if run.db == "postgres":
        try:
            databases.fresh_database("postgres", PG_DATABASE)
        except Exception as exc:
            run.result = {"status": "error", "error": f"creating the database: {exc}"}
            return
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        f"--system={run.system}",
        f"--n={run.n}",
        f"--mode={run.mode}",
        f"--sqlite-path={sqlite_path}",
        f"--result-file={result_file}",
        f"--timeout={args.timeout}",
        f"--settle-timeout={args.settle_timeout}",
        f"--stall-timeout={args.stall_timeout}",
        f"--idle-seconds={args.idle_seconds}",
        f"--idle-warmup={args.idle_warmup}",
    ]
    if run.db != "none":
        command.append(f"--db={run.db}")
    # Adding 20,000 jobs one transaction at a time may take a while on a slow
    # store; the kill is only a guard against a child that hangs outright.
    limit = args.timeout + args.settle_timeout + args.add_timeout + 60
    with log_file.open("w") as log:
        try:
            # The exit code says little: the result file says how the run went.
            subprocess.run(
                command, stdout=log, stderr=subprocess.STDOUT, timeout=limit, cwd=REPO, check=False
            )
        except subprocess.TimeoutExpired:
            run.result = {"status": "killed", "error": f"child killed after {limit:.0f} s"}
    if not run.result:
        try:
            run.result = json.loads(result_file.read_text())
        except (OSError, ValueError):
            run.result = {"status": "error", "error": "the child wrote no result"}
    sqlite_path.unlink(missing_ok=True)


# --- formatting ------------------------------------------------------------------


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def fmt_s(s: float | None) -> str:
    return "—" if s is None else f"{s:.2f}"


def rate(run: Run) -> float | None:
    r = run.result
    if r.get("status") != "done" or not r.get("run_s"):
        return None
    return r["fires"] / r["run_s"]


def outcome(run: Run) -> str:
    r = run.result
    status = r.get("status")
    if status == "done":
        return f"{fmt_int(rate(run) or 0)} fires/s"
    if status == "died":
        return f"**thread died after {fmt_int(r['fires'])} fires** ({r['run_s']:.1f} s)"
    if status == "stalled":
        return (
            f"**stalled**: no fire for {r['stall_s']:.0f} s, after {fmt_int(r['fires'])} of "
            f"{fmt_int(run.n)} fires ({r['run_s']:.0f} s)"
        )
    if status == "timeout":
        partial = r["fires"] / r["run_s"] if r.get("run_s") else 0
        return (
            f"**timeout**: {fmt_int(r['fires'])} of {fmt_int(run.n)} fires in "
            f"{r['run_s']:.0f} s ({fmt_int(partial)}/s)"
        )
    return f"**{status}**: {r.get('error', '')}"


def partial_rate(run: Run) -> float | None:
    """Fires per second up to a timeout: an estimate of the rate, marked as such."""
    r = run.result
    if r.get("status") != "timeout" or not r.get("run_s"):
        return None
    return r["fires"] / r["run_s"]


def ratio(run: Run, reference: float | None) -> str:
    value, approx = rate(run), ""
    if value is None:
        value, approx = partial_rate(run), "~"
    if value is None or not reference:
        return "—"
    x = value / reference
    return f"{approx}{x:.2f}x" if x >= 0.1 else f"{approx}{x:.2g}x"


def exactly_once(run: Run) -> str:
    v = run.result.get("verify")
    if not v:
        return "—"
    n = run.n
    if v["ran"] == n and v["calls"] == n and not v["unexpected"]:
        return "yes"
    twice = v["ran_twice_or_more"]
    if run.result.get("status") == "timeout":
        # The rest were not lost, only not reached: say what is known.
        if not twice and v["calls"] == v["ran"]:
            return f"no duplicate in the {fmt_int(v['ran'])} that ran"
        return f"**no**: {fmt_int(twice)} of the {fmt_int(v['ran'])} that ran ran twice or more"
    parts = [f"{fmt_int(v['ran'])}/{fmt_int(n)} ran"]
    if twice:
        parts.append(f"{fmt_int(twice)} ran twice or more")
    return "**no**: " + ", ".join(parts)


def in_history(run: Run) -> str:
    v = run.result.get("verify")
    if not v:
        return "—"
    history = v.get("history")
    if history is None:
        return "n/a"
    succeeded = history["succeeded"]
    if succeeded == run.n:
        return "yes"
    if run.result.get("status") == "timeout":
        # Writes still in flight when counted: a snapshot, not a verdict.
        return f"{fmt_int(succeeded)} of the {fmt_int(v['ran'])} that ran"
    return f"**no**: {fmt_int(succeeded)}/{fmt_int(run.n)}"


def queries_per_fire(run: Run) -> str:
    r = run.result
    if RUNNERS[run.system] is MemoryRunner or "run_queries" not in r:
        return "—"
    if not r.get("fires"):
        return f"{fmt_int(r['run_queries'])} in all"
    per_fire = r["run_queries"] / r["fires"]
    return f"{per_fire:.2f}" if per_fire < 1 else f"{per_fire:.1f}"


def connections_opened(run: Run) -> str:
    r = run.result
    if RUNNERS[run.system] is MemoryRunner or "run_connections" not in r:
        return "—"
    return fmt_int(r["run_connections"])


def notes_for(run: Run) -> list[str]:
    """Anything beyond the table that a reader must know about a run."""
    r = run.result
    notes = [f"scheduler {e}" for e in r.get("thread_errors", [])]
    if r.get("retried_after"):
        notes.append(f"tried twice; the first try failed: {r['retried_after']}")
    if r.get("error"):
        notes.append(r["error"])
    notes += [f"logged {fmt_int(count)}x: `{what}`" for count, what in r.get("log_tally", [])]
    v = r.get("verify") or {}
    if v.get("jobs_left"):
        notes.append(f"{fmt_int(v['jobs_left'])} jobs still in the store afterwards")
    history = v.get("history") or {}
    if history:
        statuses = ", ".join(f"{k!r}: {fmt_int(c)}" for k, c in sorted(history["statuses"].items()))
        if history["succeeded"] != run.n or len(history["statuses"]) > 1:
            notes.append(f"history rows by status: {{{statuses or 'none'}}}")
        for key, what in (
            ("succeeded_without_started_at", "succeeded rows without `started_at`"),
            ("succeeded_without_duration", "succeeded rows without `duration`"),
            ("without_job_name", "rows without `job_name`"),
        ):
            if history.get(key):
                notes.append(f"{fmt_int(history[key])} {what}")
    if r.get("status") == "timeout":
        notes.append(
            "stopped at the timeout; the checks were counted 2 s later, while fires already "
            "handed to the pool still ran"
        )
    if r.get("status") == "stalled":
        notes.append("stopped when no job had run for the stall timeout")
    if r.get("status") == "done" and r.get("settled_s") is None:
        notes.append("did not finish its queued work (ledger writes) within the settle timeout")
    return notes


def build_report(runs: list[Run], labels: dict[str, str]) -> tuple[str, list[str]]:
    """The results as Markdown tables, and the footnotes they refer to."""
    lines: list[str] = []
    footnotes: list[str] = []
    throughput = [r for r in runs if r.mode == "throughput"]
    idle = [r for r in runs if r.mode == "idle"]
    db_names = {"none": "—", "sqlite": "SQLite", "postgres": "PostgreSQL"}
    for n in sorted({r.n for r in throughput}):
        group = [r for r in throughput if r.n == n]
        memory = next((rate(r) for r in group if r.system == "memory"), None)
        peer = {r.db: rate(r) for r in group if r.system == "django-apscheduler"}
        lines += [
            f"### {fmt_int(n)} one-shot jobs due at once",
            "",
            "| system | database | add (s) | all fires ran (s) | result | vs MemoryJobStore "
            "| vs django-apscheduler | every fire ran exactly once | every fire in history "
            "| settled (s) | queries per fire | connections opened |",
            "|---|---|--:|--:|---|--:|--:|---|---|--:|--:|--:|",
        ]
        for run in group:
            r = run.result
            marks = ""
            notes = notes_for(run)
            if notes:
                number = len(footnotes) + 1
                marks = f" [{number}]"
                footnotes.append(
                    f"[{number}] {labels[run.system]}, {db_names[run.db]}, "
                    f"{fmt_int(n)} jobs: " + "; ".join(notes) + "."
                )
            lines.append(
                "| "
                + " | ".join(
                    [
                        labels[run.system] + marks,
                        db_names[run.db],
                        fmt_s(r.get("add_s")),
                        fmt_s(r.get("run_s")) if r.get("status") == "done" else "—",
                        outcome(run),
                        ratio(run, memory),
                        ratio(run, peer.get(run.db)),
                        exactly_once(run),
                        in_history(run),
                        fmt_s(r.get("settled_s")),
                        queries_per_fire(run),
                        connections_opened(run),
                    ]
                )
                + " |"
            )
        lines.append("")
    if idle:
        k = idle[0].n
        lines += [
            f"### Database queries while idle ({fmt_int(k)} jobs due in {FAR_FUTURE.year})",
            "",
            "| system | database | queries in the warm-up | queries per second after it "
            "| connections opened after it |",
            "|---|---|--:|--:|--:|",
        ]
        for run in idle:
            r = run.result
            if run.system == "memory":
                start, per_s, opened = "n/a (no database)", "n/a (no database)", "—"
            elif r.get("status") == "done":
                start = fmt_int(r["start_queries"])
                per_s = f"{r['idle_queries'] / r['idle_s']:.2f}"
                opened = fmt_int(r["idle_connections"])
            else:
                start, per_s, opened = "—", outcome(run), "—"
            lines.append(
                f"| {labels[run.system]} | {db_names[run.db]} | {start} | {per_s} | {opened} |"
            )
        lines.append("")
    return "\n".join(lines), footnotes


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def machine_facts(pg_version: str | None, load_before: str) -> list[tuple[str, str]]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "?"
    memory = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return [
        ("CPUs", f"{os.cpu_count()} x {cpu}"),
        ("memory", memory),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("Django", version("Django")),
        ("APScheduler", version("APScheduler")),
        ("SQLAlchemy", version("SQLAlchemy")),
        ("psycopg", version("psycopg")),
        ("django-apscheduler", version("django-apscheduler")),
        ("django-metronome", version("django-metronome")),
        ("SQLite", sqlite3.sqlite_version),
        ("PostgreSQL", pg_version or "not measured"),
        ("django-metronome source", databases.source_state()),
        (
            "Django `CONN_MAX_AGE`",
            os.environ.get("METRONOME_BENCH_CONN_MAX_AGE") or "0 (Django's default)",
        ),
        ("load average (1, 5, 15 min) before / after", f"{load_before} / {load_average()}"),
    ]


METHOD = """\
Each row is a fresh Python process on a fresh database (a new SQLite file; the
PostgreSQL database `{pg}` dropped and created again), so no run can disturb
another. In each, the system's scheduler is started paused, N jobs are added
through `scheduler.add_job` (timed: "add"), each a one-shot `DateTrigger` job
due at the moment the adding began, and then the scheduler is resumed. "All
fires ran" is the time from `resume()` to the last call of the job, which is a
no-op that counts its own calls per job id under a lock; "result" gives fires
per second from that, or says how the run ended otherwise: a scheduler thread
that died, no job run for {stall:.0f} s ("stalled"), or a timeout ({timeout:.0f} s)
with the fires completed by then (ratios marked ~ use that partial rate).
"Exactly once" compares those counts with the N job ids. "In history" counts
the system's own ledger rows with a success status ("n/a" where the system
keeps no history). "Settled" is the time from `resume()` until
`scheduler.shutdown(wait=True)` returned, that is until the pool and the
scheduler thread finished everything queued, ledger writes included. Query
and connection counts include every thread but the benchmark's own (Django:
an execute wrapper on every connection and the `connection_created` signal;
SQLAlchemy: `before_cursor_execute` and `connect` listeners); on SQLite,
Django's own `BEGIN` counts as a query. Warnings and errors the systems log
are counted and listed in the notes.

The machine is a shared 2-core one: the load average before and after is
recorded above, and figures move by tens of percent from one run to the next.
Compare ratios within one run rather than absolute figures across runs.

Every system uses the same APScheduler configuration: the `default` executor
is `apscheduler.executors.pool.ThreadPoolExecutor` with {workers} workers
(APScheduler's default), time zone UTC, and job defaults `coalesce=True`,
`max_instances=1` and `misfire_grace_time=None`. APScheduler's default grace
time of 1 s would turn most of a large burst into "missed" runs and the
benchmark would measure how fast a system drops work; with no grace time every
system must run every fire. Databases use Django's and SQLAlchemy's defaults
(no SQLite journal or timeout tuning, no pooler). "vs MemoryJobStore" divides
by APScheduler's in-memory store on the same N (it has no database, so one
run serves both columns); "vs django-apscheduler" divides by django-apscheduler
on the same database and N, where it finished.

The idle measurement starts each scheduler with {idle_jobs} jobs due in {year},
lets it run for a {warmup:.0f} s warm-up, then counts the queries of the next
{idle:.0f} s."""


def write_markdown(path: Path, session: dict[str, Any]) -> None:
    report, footnotes = build_report(session_runs(session), session["labels"])
    settings = session["settings"]
    text = [
        "# Benchmarks",
        "",
        "Throughput of one-shot jobs all due at once, in one process, for django-metronome "
        "and the systems it replaces. Written by `benchmarks/throughput.py`; see "
        "`benchmarks/README.md` for how to run it.",
        "",
        f"Measured on {session['date']}, in {session['wall_s'] / 60:.1f} minutes, with:",
        "",
        "```",
        session["command"],
        "```",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in session["facts"]],
        "",
        "## Results",
        "",
        report,
    ]
    if footnotes:
        text += ["Notes:", "", *[f"- {f}" for f in footnotes], ""]
    if session["skipped"]:
        text += ["Not measured in this run:", "", *[f"- {n}" for n in session["skipped"]], ""]
    text += [
        "## Method",
        "",
        METHOD.format(
            pg=PG_DATABASE,
            timeout=settings["timeout"],
            stall=settings.get("stall_timeout", 30.0),
            workers=WORKERS,
            idle_jobs=fmt_int(settings["idle_jobs"]),
            year=FAR_FUTURE.year,
            warmup=settings["idle_warmup"],
            idle=settings["idle_seconds"],
        ),
        "",
    ]
    text += OTHER_BENCHMARKS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text))


#: The other benchmarks' pages, each written by its own script (kept here so that
#: this page, which this script rewrites, always points at them).
OTHER_BENCHMARKS = [
    "## The other benchmarks",
    "",
    "Each written by its own script, on its own page:",
    "",
    "- [Fires into django.tasks](benchmarks-tasks.md) (`benchmarks/tasks.py`): 2,000 "
    "and 20,000 fires due at once enqueued into django-tasks-db and django-tasks-rq "
    "by one and three scheduler processes, end to end with workers, and "
    "django-celery-beat's `DatabaseScheduler` sending the same number of due "
    "entries to Celery on the same PostgreSQL and Redis, including how many two "
    "beat processes send twice.",
    "- [One process and three](benchmarks-processes.md) (`benchmarks/processes.py`): "
    "2,000 and 20,000 no-op fires due at once, run by one and by three "
    "`runscheduler` processes on SQLite and PostgreSQL, and how the fires spread "
    "over the processes.",
    "- [Idle](benchmarks-idle.md) (`benchmarks/idle.py`): queries per second of an "
    "idle scheduler, and how soon a change from another process is picked up.",
    "- [Lateness](benchmarks-lateness.md) (`benchmarks/lateness.py`): how late a 1 s "
    "job fires, idle and during a 20,000-fire burst.",
    "- [Scale](benchmarks-scale.md) (`benchmarks/scale.py`): the admin, the "
    "dashboard, `metronome list` and pruning at 10^4, 10^5 and 10^6 jobs and runs.",
    "",
]


def session_runs(session: dict[str, Any]) -> list[Run]:
    return [Run(**run) for run in session["runs"]]


def show(session: dict[str, Any], output: Path | None) -> None:
    """Print the results and, given a path, write them as Markdown."""
    report, footnotes = build_report(session_runs(session), session["labels"])
    print()
    print(report)
    for note in footnotes:
        print(note)
    if output:
        write_markdown(output, session)
        print(f"\nWritten to {output}")


def parent_main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    load_before = load_average()
    if args.quick:
        args.jobs = args.jobs or list(QUICK_JOB_COUNTS)
        args.db = args.db or ["sqlite"]
        args.idle_jobs = 100 if args.idle_jobs is None else args.idle_jobs
        args.idle_seconds = min(args.idle_seconds, 2.0)
        args.idle_warmup = min(args.idle_warmup, 1.0)
    args.jobs = args.jobs or list(FULL_JOB_COUNTS)
    args.db = args.db or ["sqlite", "postgres"]
    args.idle_jobs = 1_000 if args.idle_jobs is None else args.idle_jobs

    skipped: list[str] = []
    systems = []
    for system in args.system or list(RUNNERS):
        missing = [m for m in REQUIRES[system] if not available(m)]
        if missing:
            note = f"{RUNNERS[system].label}: skipped, `{'`, `'.join(missing)}` is not importable"
            print(f"note: {note}")
            skipped.append(note)
        else:
            systems.append(system)
    dbs = list(dict.fromkeys(args.db))
    pg_version = None
    if "postgres" in dbs:
        if not available("psycopg"):
            print("note: psycopg is not installed; skipping PostgreSQL.")
            pg_version = None
        else:
            pg_version = postgres_version()
        if pg_version is None:
            dbs.remove("postgres")
            skipped.append("PostgreSQL: not reachable, skipped")

    runs = plan_runs(args, dbs, systems)
    labels = {key: runner.label for key, runner in RUNNERS.items()}
    workdir = Path(tempfile.mkdtemp(prefix="metronome_bench_"))
    print(f"{len(runs)} runs; logs in {workdir}")
    try:
        for i, run in enumerate(runs, 1):
            t = time.perf_counter()
            print(
                f"[{i}/{len(runs)}] {run.mode:10} {run.system:18} {run.db:8} n={run.n:<6} ... ",
                end="",
                flush=True,
            )
            execute(run, args, workdir)
            if run.result.get("status") in ("error", "killed"):
                # The benchmark itself failed (on a shared machine: a database
                # server restarted under it, say). One more try, and say so.
                first = run.result.get("error") or run.result["status"]
                print(f"failed ({first}); see {run.log}; retrying ... ", end="", flush=True)
                execute(run, args, workdir)
                run.result.setdefault("retried_after", first)
            summary = outcome(run) if run.mode == "throughput" else run.result.get("status")
            print(f"{summary}  [{time.perf_counter() - t:.0f} s]", flush=True)
            if run.result.get("status") in ("error", "killed"):
                print(f"    see {run.log}")
    finally:
        if "postgres" in dbs:
            try:
                databases.drop_database("postgres", PG_DATABASE)
            except Exception as exc:
                print(f"note: could not drop {PG_DATABASE}: {exc}")

    launcher = os.environ.get("METRONOME_BENCH_LAUNCHER", "python benchmarks/throughput.py")
    session = {
        "date": date.today().isoformat(),
        "wall_s": time.perf_counter() - started,
        "command": " ".join([launcher, *map(shlex.quote, sys.argv[1:])]).strip(),
        "facts": machine_facts(pg_version, load_before),
        "labels": labels,
        "skipped": skipped,
        "settings": {
            "timeout": args.timeout,
            "stall_timeout": args.stall_timeout,
            "idle_jobs": args.idle_jobs,
            "idle_warmup": args.idle_warmup,
            "idle_seconds": args.idle_seconds,
        },
        "runs": [asdict(run) for run in runs],
    }
    (workdir / "results.json").write_text(json.dumps(session, indent=1))
    output = args.output or (None if args.quick else DEFAULT_OUTPUT)
    show(session, Path(output) if output else None)
    if not output:
        print("\n(--quick: docs/benchmarks.md left as it is; pass --output to write a file)")
    print(f"Logs of every run, and results.json: {workdir}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="N one-shot no-op jobs due at once: django-metronome against its peers.",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        action="append",
        metavar="N",
        help="number of jobs (repeat for several; default 2000 and 20000)",
    )
    parser.add_argument(
        "--db",
        action="append",
        choices=["sqlite", "postgres"],
        help="database (repeat for both; default both)",
    )
    parser.add_argument(
        "--system",
        action="append",
        choices=list(RUNNERS),
        help="system to measure (repeat for several; default all)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 jobs, SQLite only")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds a run may take (default 120)"
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=30.0,
        help="give up on a run when no job ran for this many seconds (default 30)",
    )
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for queued work after the last fire (default 120)",
    )
    parser.add_argument(
        "--add-timeout",
        type=float,
        default=600.0,
        help="extra seconds the child may spend adding jobs before it is killed (default 600)",
    )
    parser.add_argument(
        "--idle-jobs",
        type=int,
        default=None,
        metavar="K",
        help="jobs in the idle measurement (default 1000; 0 skips it)",
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=5.0, help="idle measurement length (default 5)"
    )
    parser.add_argument(
        "--idle-warmup", type=float, default=2.0, help="idle warm-up, not counted (default 2)"
    )
    parser.add_argument(
        "--output",
        help="Markdown file for the results (default docs/benchmarks.md; none with --quick)",
    )
    parser.add_argument(
        "--report-from",
        metavar="RESULTS_JSON",
        help="measure nothing: print (and with --output write) the report of an earlier run",
    )
    # The child process (internal).
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="throughput", help=argparse.SUPPRESS)
    parser.add_argument("--sqlite-path", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.system = args.system[0]
        args.db = args.db[0] if args.db else "none"
    return args


def main() -> int:
    args = parse_args()
    if args.child:
        child_main(args)
    if args.report_from:
        show(json.loads(Path(args.report_from).read_text()), args.output and Path(args.output))
        return 0
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
