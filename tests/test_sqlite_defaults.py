"""
SQLite exactly as ``startproject`` configures it (no OPTIONS): the scheduler
starts and runs without "database is locked", while another process writes.

Django's default SQLite transactions ask for the write lock only at their
first write and fail at once when it is taken; the scheduler's own threads
take it when their transactions begin and wait for it (``django_metronome.sqlite``).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from django_metronome.store.sqlite import is_scheduler_thread
from tests.conftest import wait_for
from tests.proctools import ROOT

pytestmark = pytest.mark.skipif(
    os.environ.get("METRONOME_TEST_DB", "sqlite") != "sqlite",
    reason="SQLite's own settings: tested in the SQLite run",
)

SETTINGS = "--settings=tests.settings_sqlite_default"

#: Another process of the project writing all the time: short transactions that
#: read, then write, then hold the lock a moment, as a busy web request does.
LOAD = """
import random, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=5, isolation_level=None)
db.execute("CREATE TABLE IF NOT EXISTS load (id INTEGER PRIMARY KEY, v TEXT)")
written = 0
while True:
    try:
        db.execute("BEGIN")
        db.execute("SELECT count(*) FROM load").fetchone()
        db.execute("INSERT INTO load (v) VALUES ('x')")
        time.sleep(random.uniform(0.01, 0.05))
        db.execute("COMMIT")
        written += 1
        print(written, flush=True)
    except sqlite3.OperationalError:
        db.execute("ROLLBACK")
    time.sleep(random.uniform(0, 0.02))
"""


def query(database: Path, sql: str) -> int:
    db = sqlite3.connect(database, timeout=20)
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()


@pytest.mark.slow
def test_runscheduler_starts_without_lock_errors_under_load(tmp_path, processes):
    database = tmp_path / "db.sqlite3"
    env = processes.env(METRONOME_TEST_DB_NAME=str(database))
    migrate = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v0", SETTINGS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    load = processes.start(["-c", LOAD, str(database)], handles_sigterm=False)

    succeeded = (
        "SELECT count(*) FROM django_metronome_djangojobexecution "
        "WHERE job_id = 'every-second' AND status = 'succeeded'"
    )
    for _ in range(3):
        scheduler = processes.start(
            ["-m", "django", "runscheduler", SETTINGS],
            METRONOME_TEST_DB_NAME=str(database),
            METRONOME_PROC_JOBS="every-second",
        )
        before = query(database, succeeded)
        wait_for(lambda: query(database, succeeded) >= before + 2, timeout=60)  # noqa: B023
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(30) == 0

    assert load.poll() is None
    assert query(database, "SELECT count(*) FROM load") > 50  # it really wrote meanwhile
    log = processes.logs()
    assert "Scheduler process" in log  # the schedulers' INFO lines are in it
    assert "database is locked" not in log, log
    assert "Heartbeat failed" not in log, log
    assert query(database, "SELECT count(*) FROM django_metronome_schedulernode") == 3
    assert (
        query(
            database,
            "SELECT count(*) FROM django_metronome_schedulernode WHERE stopped_at IS NULL",
        )
        == 0
    )


@pytest.mark.slow
def test_a_second_runscheduler_on_the_file_shows_w001(tmp_path, processes):
    """The README's promise: W001 shows as a second scheduler process starts."""
    database = tmp_path / "db.sqlite3"
    env = processes.env(METRONOME_TEST_DB_NAME=str(database))
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v0", SETTINGS], cwd=ROOT, env=env, check=True
    )
    alive = "SELECT count(*) FROM django_metronome_schedulernode WHERE stopped_at IS NULL"
    processes.start(
        ["-m", "django", "runscheduler", SETTINGS], METRONOME_TEST_DB_NAME=str(database)
    )
    wait_for(lambda: query(database, alive) == 1, timeout=60)
    processes.start(
        ["-m", "django", "runscheduler", SETTINGS], METRONOME_TEST_DB_NAME=str(database)
    )
    wait_for(lambda: query(database, alive) == 2, timeout=60)
    first, second = processes.logs().split("--- proc-1.log ---")
    assert "django_metronome.W001" not in first
    assert "(django_metronome.W001) 2 scheduler processes share the SQLite database" in second


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("metronome-heart", True),
        ("metronome-ledger", True),
        ("metronome-scheduler", True),
        ("metronome-db_0", True),
        ("APScheduler", True),
        # The threads that run jobs keep the project's own settings.
        ("metronome-worker_3", False),
        ("metronome-default_0", False),
        ("MainThread", False),
    ],
)
def test_only_the_schedulers_own_threads_are_changed(name, expected):
    assert is_scheduler_thread(name) is expected
