"""
The Celery side of ``benchmarks/tasks.py``: django-celery-beat's
``DatabaseScheduler`` sending N due one-off entries to Celery on Redis.

This module is the Celery app (``celery -A benchmarks.celery_beat``) of the beat
and worker processes, and the parent's :func:`measure` of one run:

1. N ``PeriodicTask`` rows, ``one_off=True``, each with its own ``ClockedSchedule``
   (django-celery-beat's one-shot entry, the closest to a ``DateTrigger`` job),
   are created with ``bulk_create``; then every ``clocked_time`` is set, in one
   statement, to one instant ``due`` a few seconds ahead;
2. the beat processes start (``celery beat -S django_celery_beat.schedulers:
   DatabaseScheduler``, the settings below); no worker runs yet, so the sends are
   measured alone: the parent reads the Celery queue (a Redis list) every 0.1 s
   and notes when every entry's message is in it, by the message's
   ``periodic_task_name`` header;
3. once the queue stops growing (no message for ``QUIET`` seconds), the messages
   sent more than once are counted (two beats each send every entry: beat must be
   run as a single process, as Celery's documentation says);
4. if the run drains, a Celery worker (prefork, ``-c WORKERS``) starts and runs
   the no-op task of every message, which records its call in Redis; the
   end-to-end time runs from ``due`` to the last call's end.

The Celery and django-celery-beat settings are their defaults, written out in
:data:`SETTINGS` where they matter: ``beat_max_loop_interval`` 0 (so
``DatabaseScheduler``'s own 5 s), ``beat_sync_every`` 0 (the entries' ``last_run_at``
and run counts are written every 3 minutes and at shutdown). Django's
``CONN_MAX_AGE`` in the beat and the worker is :func:`measure`'s ``max_age``:
``None`` (a persistent connection) for the published rows, ``0`` (Django's
default: ``DatabaseScheduler`` reconnects on every tick) for the one that says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import databases  # noqa: E402

#: The Redis database every Celery and RQ run uses; flushed before each run.
REDIS_URL = os.environ.get("METRONOME_BENCH_REDIS", "redis://127.0.0.1:6379/0")
DATABASE = os.environ.get("METRONOME_BENCH_DATABASE", "metronome_bench_tasks")
#: The Celery queue (a Redis list of that name, kombu's Redis transport).
QUEUE = "celery"
#: The recording task's keys: calls per entry number, and the last call's end.
CALLS, LAST = "bench:calls", "bench:last"
#: A queue that has not grown for this long is taken as complete.
QUIET = 3.0
#: Celery and django-celery-beat settings that matter here (the defaults).
SETTINGS: dict[str, Any] = {
    "beat_scheduler": "django_celery_beat.schedulers:DatabaseScheduler",
    "beat_max_loop_interval": 0,
    "beat_sync_every": 0,
    "timezone": "UTC",
    "enable_utc": True,
    "task_ignore_result": True,
    "worker_hijack_root_logger": False,
}


def conn_max_age() -> int | None:
    value = os.environ.get("METRONOME_BENCH_CONN_MAX_AGE", "0")
    return None if value.lower() == "none" else int(value)


def configure() -> Any:
    """Django with django-celery-beat on the benchmark's database, and the Celery app."""
    from django.conf import settings

    if not settings.configured:
        database = databases.database_settings("postgres", DATABASE)
        database["CONN_MAX_AGE"] = conn_max_age()
        databases.configure_django(
            database,
            INSTALLED_APPS=["django_celery_beat"],
            DJANGO_CELERY_BEAT_TZ_AWARE=True,
        )
    from celery import Celery

    celery = Celery("metronome_bench", broker=REDIS_URL)
    celery.conf.update(SETTINGS)
    return celery


app = configure()
_redis: Any = None


@app.task(name="benchmarks.noop")
def noop(number: int) -> int:
    """The entries' task: a no-op that records its call (one Redis round trip)."""
    global _redis
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(REDIS_URL)
    pipe = _redis.pipeline(transaction=False)
    pipe.hincrby(CALLS, str(number), 1)
    pipe.set(LAST, repr(time.time()))
    pipe.execute()
    return number


def add_entries(count: int) -> None:
    """N one-off clocked entries of ``benchmarks.noop``, due in a year (made due later)."""
    from django.db import transaction
    from django_celery_beat.models import ClockedSchedule, PeriodicTask

    later = datetime.now(UTC) + timedelta(days=365)
    with transaction.atomic():
        clocks = ClockedSchedule.objects.bulk_create(
            [ClockedSchedule(clocked_time=later) for _ in range(count)], batch_size=2_000
        )
        PeriodicTask.objects.bulk_create(
            [
                PeriodicTask(
                    name=f"burst-{number:06d}",
                    task="benchmarks.noop",
                    clocked=clock,
                    one_off=True,
                    args=json.dumps([number]),
                )
                for number, clock in enumerate(clocks)
            ],
            batch_size=2_000,
        )


def child(role: str, *argv: str) -> None:
    """``migrate`` or ``add N`` (the beat and the worker are Celery's own commands)."""
    from django.core.management import call_command

    if role == "migrate":
        call_command("migrate", verbosity=0)
    elif role == "add":
        add_entries(int(argv[0]))


def redis_client() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL)


def _env(max_age: str = "0") -> dict[str, str]:
    return {
        **os.environ,
        "METRONOME_BENCH_REDIS": REDIS_URL,
        "METRONOME_BENCH_DATABASE": DATABASE,
        "METRONOME_BENCH_CONN_MAX_AGE": max_age,
    }


def _run_child(role: str, *argv: str) -> None:
    code = f"import benchmarks.celery_beat as b; b.child({role!r}, *{list(argv)!r})"
    if subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env()).returncode:
        raise SystemExit(f"celery_beat {role} failed")


def _celery(*argv: str, log: Path, max_age: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "celery", "-A", "benchmarks.celery_beat", *argv]
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=REPO, env=_env(max_age), stdout=out, stderr=out)


def measure(
    fires: int,
    beats: int,
    workers: int,
    drain: bool,
    timeout: float,
    lead: float,
    max_age: str = "none",
) -> dict[str, Any]:
    """One run: ``beats`` beat processes, Django's ``CONN_MAX_AGE`` ``max_age`` in them."""
    databases.fresh_database("postgres", DATABASE)
    client = redis_client()
    client.flushdb()
    _run_child("migrate")
    started = time.monotonic()
    _run_child("add", str(fires))
    added = time.monotonic() - started
    due = datetime.now(UTC) + timedelta(seconds=lead)
    connection = databases.pg_connect(DATABASE)
    with connection, connection.cursor() as cursor:
        cursor.execute("UPDATE django_celery_beat_clockedschedule SET clocked_time = %s", [due])
    connection.close()
    logs = Path(tempfile.mkdtemp(prefix="metronome-bench-celery-"))
    procs = [
        _celery(
            "beat",
            "--loglevel=WARNING",
            f"--schedule={logs / f'beat-{n}.db'}",
            f"--pidfile={logs / f'beat-{n}.pid'}",
            log=logs / f"beat-{n}.log",
            max_age=max_age,
        )
        for n in range(beats)
    ]
    figures: dict[str, Any] = {"log": str(logs)}
    try:
        figures.update(wait_for_sends(client, fires, due, timeout, procs))
        drain = drain and figures["distinct"] == fires
        if drain:
            procs.append(
                _celery(
                    "worker",
                    f"--concurrency={workers}",
                    "--loglevel=WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    log=logs / "worker.log",
                    max_age=max_age,
                )
            )
            figures.update(wait_for_calls(client, figures["messages"], due, timeout))
    finally:
        databases.stop_processes(procs)
    system = "celery-beat" if max_age == "none" else f"celery-beat-age{max_age}"
    figures.update(system=system, fires=fires, processes=beats, add_seconds=added)
    figures["workers"] = workers if drain else 0
    sent = figures["distinct"]
    figures["ok"] = sent == fires and (not drain or figures.get("calls_distinct") == fires)
    figures["checks"] = (
        f"every entry sent{', all ran' if drain else ''}"
        if figures["ok"]
        else f"{sent:,} of {fires:,} sent"
        + (f", {figures.get('calls_distinct', 0):,} ran" if drain else "")
    )
    return figures


def wait_for_sends(
    client: Any, fires: int, due: datetime, timeout: float, procs: list[subprocess.Popen[bytes]]
) -> dict[str, Any]:
    """Read the queue as it grows, until every entry is in it and it stopped growing."""
    deadline = time.monotonic() + (due - datetime.now(UTC)).total_seconds() + timeout
    seen: dict[str, int] = {}
    read = 0
    all_sent: float | None = None
    last_growth = time.monotonic()
    while time.monotonic() < deadline:
        length = client.llen(QUEUE)
        if length > read:
            # kombu pushes on the left and nothing pops: counted from the right, the
            # messages not read yet are -length .. -(read + 1), however many came since.
            for raw in client.lrange(QUEUE, -length, -(read + 1)):
                name = json.loads(raw)["headers"].get("periodic_task_name", "")
                seen[name] = seen.get(name, 0) + 1
            read = length
            last_growth = time.monotonic()
            if all_sent is None and len(seen) >= fires:
                all_sent = (datetime.now(UTC) - due).total_seconds()
        elif all_sent is not None and time.monotonic() - last_growth > QUIET:
            break
        elif all(proc.poll() is not None for proc in procs):
            break  # every beat died: its log says why
        time.sleep(0.1)
    waited = (datetime.now(UTC) - due).total_seconds()
    return {
        "messages": read,
        "distinct": len(seen),
        "sent_twice": sum(1 for count in seen.values() if count > 1),
        "sent_seconds": all_sent,
        "rate": fires / all_sent if all_sent else len(seen) / waited,
        "sent_by_timeout": None if all_sent else len(seen),
    }


def wait_for_calls(client: Any, messages: int, due: datetime, timeout: float) -> dict[str, Any]:
    """Until the worker ran every message in the queue (duplicates included)."""
    deadline = time.monotonic() + timeout
    calls = 0
    while time.monotonic() < deadline:
        calls = sum(int(value) for value in client.hvals(CALLS))
        if calls >= messages:
            break
        time.sleep(0.2)
    last = client.get(LAST)
    finished = datetime.fromtimestamp(float(last), UTC) if last else None
    return {
        "calls": calls,
        "calls_distinct": client.hlen(CALLS),
        "end_to_end_seconds": (finished - due).total_seconds() if finished else None,
    }
