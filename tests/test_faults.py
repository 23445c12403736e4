"""
The standing fault suite: break a scheduler process at every step of a fire's life.

A *victim* process runs one-shot jobs beside (or before) survivors; a fault
point (``django_metronome.loop.faults``, configured through ``METRONOME_FAULTS``)
kills it or holds it at an exact instant: after its claim committed, after a
fire was marked started, between a job's end and its outcome write, during a
heartbeat. Or the test kills it mid-job, kills its database connections, or
restarts the database server while it holds. Then the jobs' own side effects
(a line each run appends to a file: no database, so that killing the
scheduler's connections does not touch the jobs) and the ledger must say:

* no fire ran twice;
* no fire that never started was lost: every job ran once, or its fire is
  *interrupted*, which only a started fire can be;
* every fire ended in a final state.

The clock tests run a process whose clock is 30 s off.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from django.db import connection

from django_metronome.jobstores import DjangoJobStore
from django_metronome.models import (
    FINAL_STATUSES,
    DjangoJobExecution,
    ExecutionStatus,
    SchedulerNode,
)
from django_metronome.store import nodes
from tests.conftest import wait_for
from tests.test_processes import reconnecting, restart_database_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

server_only = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="needs a database server (PostgreSQL or MariaDB)"
)

JOBS = 30
WORKERS = "3"


@pytest.fixture(autouse=True)
def fire_log(tmp_path: Path) -> Path:
    FIRES.path = tmp_path / "fires.log"
    return FIRES.path


class FIRES:
    """Where the jobs of the running test append their fires."""

    path: Path


def runs() -> list[tuple[str, int]]:
    """(job id, pid) of every run the jobs saw."""
    if not FIRES.path.exists():
        return []
    lines = FIRES.path.read_text().splitlines()
    return [(job_id, int(pid)) for job_id, _, pid in (line.split() for line in lines)]


def add_one_shots(count: int, when: datetime, seconds: float = 0.2) -> list[str]:
    """One-shot jobs that append their fire to the fire log, then take ``seconds``."""
    store = DjangoJobStore()
    owner = BackgroundScheduler(timezone=UTC)
    store.start(owner, "default")
    ids = [f"fault-{number:03d}" for number in range(count)]
    for job_id in ids:
        store.add_job(
            Job(
                owner,
                id=job_id,
                func="tests.testapp.jobs:append_fire",
                trigger=DateTrigger(when),
                executor="default",
                args=(str(FIRES.path), seconds),
                kwargs={},
                name=job_id,
                misfire_grace_time=3600,
                coalesce=True,
                max_instances=1,
                next_run_time=when,
            )
        )
    return ids


def database_now() -> datetime:
    return reconnecting(lambda: nodes.database_now("default"))


def live(count: int) -> list[SchedulerNode]:
    return wait_for(
        lambda: (
            found
            if len(found := list(SchedulerNode.objects.filter(stopped_at__isnull=True))) >= count
            else None
        ),
        timeout=60,
    )


def scheduler(processes, **env: str) -> subprocess.Popen:
    env.setdefault("METRONOME_PROC_WORKERS", WORKERS)
    return processes.start(
        ["-m", "django", "runscheduler", "--settings=tests.settings_procs"], **env
    )


def settled(ids: list[str]) -> bool:
    rows = DjangoJobExecution.objects.filter(job_id__in=ids)
    return (
        rows.count() == len(ids)
        and not rows.exclude(status__in=[status.value for status in FINAL_STATUSES]).exists()
    )


def wait_settled(ids: list[str], timeout: float = 120) -> None:
    """Wait until every fire has a final ledger row; say which did not, if one does not."""
    try:
        wait_for(lambda: reconnecting(lambda: settled(ids)), timeout=timeout)
    except AssertionError:
        rows = DjangoJobExecution.objects.filter(job_id__in=ids)
        unsettled = rows.exclude(status__in=[status.value for status in FINAL_STATUSES])
        found = list(unsettled.values_list("job_id", "status", "node", "reason"))
        raise AssertionError(f"{rows.count()} ledger rows of {len(ids)}; open: {found}") from None


def check(ids: list[str]) -> Counter[str]:
    """The three promises, by the jobs' side effects; return the ledger's statuses."""
    wanted = set(ids)
    ran = Counter(job_id for job_id, _ in runs() if job_id in wanted)
    assert [job for job, times in ran.items() if times > 1] == [], "a fire ran twice"
    rows = {row.job_id: row for row in DjangoJobExecution.objects.filter(job_id__in=ids)}
    assert sorted(rows) == sorted(ids), "a fire has no ledger row"
    assert {row.status for row in rows.values()} <= FINAL_STATUSES
    for job_id, row in rows.items():
        if row.status == ExecutionStatus.INTERRUPTED:
            assert row.started_at is not None, f"{job_id} was interrupted without starting"
        else:
            assert row.status == ExecutionStatus.SUCCEEDED, (job_id, row.status, row.reason)
            assert ran[job_id] == 1, f"{job_id} succeeded in the ledger but did not run"
    lost = [job for job in ids if not ran[job] and rows[job].status != "interrupted"]
    assert lost == [], "a fire that never started was lost"
    return Counter(row.status for row in rows.values())


def victim_then_survivors(processes, fault: str) -> tuple[list[str], subprocess.Popen]:
    """A victim with ``fault`` takes the jobs first; two survivors start once it died."""
    victim = scheduler(processes, METRONOME_FAULTS=fault)
    live(1)
    ids = add_one_shots(JOBS, database_now())
    wait_for(lambda: victim.poll() is not None, timeout=60)
    assert victim.returncode == -signal.SIGKILL
    scheduler(processes)
    scheduler(processes)
    wait_settled(ids)
    return ids, victim


def handed_back(ids: list[str]) -> int:
    return DjangoJobExecution.objects.filter(
        job_id__in=ids, reason__startswith="Handed back"
    ).count()


def test_killed_right_after_its_claim_its_fires_are_handed_back_and_run_once(processes):
    ids, _ = victim_then_survivors(processes, "claimed=kill")
    statuses = check(ids)
    assert statuses == Counter({"succeeded": JOBS})  # nothing had started: nothing interrupted
    assert handed_back(ids) >= 1


def test_stopped_by_its_own_signal_handler_right_after_a_claim_it_hands_the_fires_back(
    processes, tmp_path
):
    # A BlockingScheduler's SIGTERM handler runs shutdown() in the loop's own thread,
    # between the claim and the hand-out: the rest of the batch must not go to the
    # stopped executors (it was recorded failed, with a traceback a fire).
    victim = processes.start(
        ["-m", "tests.proc_blocking"],
        METRONOME_FAULTS="claimed=term",
        METRONOME_PROC_WORKERS=WORKERS,
    )
    live(1)
    ids = add_one_shots(JOBS, database_now())
    wait_for(lambda: victim.poll() is not None, timeout=60)
    assert victim.returncode == 0
    log = (tmp_path / "proc-0.log").read_text()
    assert "Could not submit" not in log and "Traceback" not in log, log
    assert "claimed and not started; they are handed back" in log, log
    assert not DjangoJobExecution.objects.filter(status=ExecutionStatus.FAILED).exists()
    assert handed_back(ids) >= 1
    scheduler(processes)
    wait_settled(ids)
    assert check(ids) == Counter({"succeeded": JOBS})


def test_killed_between_marking_a_fire_started_and_calling_it(processes):
    ids, _ = victim_then_survivors(processes, "started=kill@4")
    statuses = check(ids)
    assert statuses["interrupted"] >= 1
    # Only fires that had started are interrupted: at most one group of workers' worth
    # beyond the three that ran.
    assert statuses["interrupted"] <= 2 * int(WORKERS)
    assert handed_back(ids) >= 1


def test_killed_between_a_jobs_end_and_its_outcome_write(processes):
    ids, _ = victim_then_survivors(processes, "finished=kill@2")
    statuses = check(ids)
    # The job that finished ran once; its outcome was never written: interrupted.
    assert statuses["interrupted"] >= 1
    assert len(runs()) >= 2


def test_killed_during_a_heartbeat(processes):
    ids, _ = victim_then_survivors(processes, "heartbeat=kill@3")
    check(ids)


def test_killed_mid_job(processes):
    victim = scheduler(processes)
    live(1)
    ids = add_one_shots(JOBS, database_now(), seconds=2)
    wait_for(lambda: sum(pid == victim.pid for _, pid in runs()) >= 2, timeout=60)
    os.kill(victim.pid, signal.SIGKILL)
    scheduler(processes)
    scheduler(processes)
    wait_settled(ids)
    statuses = check(ids)
    assert statuses["interrupted"] >= 2
    assert statuses["interrupted"] <= int(WORKERS)  # only the running ones
    assert handed_back(ids) >= 1


def kill_sessions() -> int:
    """Kill every other connection to the test database; return how many."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return len(cursor.fetchall())
        cursor.execute(
            "SELECT id FROM information_schema.processlist "
            "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
        )
        sessions = [row[0] for row in cursor.fetchall()]
        for session in sessions:
            cursor.execute(f"KILL {int(session)}")
        return len(sessions)


@server_only
@pytest.mark.parametrize("point", ["claimed", "started", "finished", "outcomes"])
def test_its_connections_killed_at_each_step_it_carries_on(processes, tmp_path, point):
    marker = tmp_path / f"{point}.hold"
    victim = scheduler(processes, METRONOME_FAULTS=f"{point}=hold:{marker}")
    live(1)
    ids = add_one_shots(JOBS, database_now())
    wait_for(marker.exists, timeout=60)
    assert kill_sessions() >= 1
    marker.unlink()
    wait_settled(ids)
    assert victim.poll() is None
    assert check(ids) == Counter({"succeeded": JOBS})


@server_only
@pytest.mark.restarts_server
@pytest.mark.parametrize("point", ["claimed", "started", "finished"])
def test_the_database_restarted_at_each_step_it_carries_on(processes, tmp_path, point):
    marker = tmp_path / f"{point}.hold"
    victim = scheduler(processes, METRONOME_FAULTS=f"{point}=hold:{marker}")
    live(1)
    ids = add_one_shots(JOBS, database_now())
    wait_for(marker.exists, timeout=60)
    restart_database_server()
    marker.unlink()
    wait_settled(ids)
    assert victim.poll() is None
    assert check(ids) == Counter({"succeeded": JOBS})


@server_only
@pytest.mark.restarts_server
def test_a_graceful_stop_after_a_database_restart_records_the_stop(processes):
    victim = scheduler(processes)
    (node,) = live(1)
    (job_id,) = add_one_shots(1, database_now(), seconds=60)
    wait_for(lambda: DjangoJobExecution.objects.filter(job_id=job_id, status="running").exists())
    restart_database_server()
    victim.send_signal(signal.SIGTERM)
    assert victim.wait(60) == 0

    row = reconnecting(lambda: DjangoJobExecution.objects.get(job_id=job_id))
    assert row.status == ExecutionStatus.INTERRUPTED
    assert "stopped before the job finished" in row.reason
    assert SchedulerNode.objects.get(pk=node.pk).stopped_at is not None


# --- spreading the work --------------------------------------------------------------


def test_a_burst_spreads_over_the_live_processes(processes):
    """No process claims more than it can start soon, so each takes a share."""
    victims = [scheduler(processes) for _ in range(3)]
    live(3)
    ids = add_one_shots(90, database_now() + timedelta(seconds=0.5), seconds=0.1)
    wait_settled(ids)
    assert check(ids) == Counter({"succeeded": 90})
    shares = Counter(pid for _, pid in runs())
    print("fires per process:", {proc.pid: shares[proc.pid] for proc in victims})
    assert all(shares[proc.pid] >= 5 for proc in victims), shares


# --- one clock -----------------------------------------------------------------------


def skewed(processes, seconds: float, clock: str) -> subprocess.Popen:
    return processes.start(
        ["-m", "tests.proc_skewed", str(seconds)],
        METRONOME_PROC_CLOCK=clock,
        METRONOME_PROC_WORKERS=WORKERS,
    )


def first_fire_before(deadline: datetime, ids: list[str]) -> datetime | None:
    """Poll until the database's clock reaches ``deadline``: when did a job run, if it did?"""
    while database_now() < deadline:
        if runs():
            return database_now()
        time.sleep(0.02)
    return None


def test_a_process_whose_clock_runs_30_s_fast_fires_on_the_databases_time(processes, caplog):
    fast = skewed(processes, 30, "database")
    scheduler(processes, METRONOME_PROC_CLOCK="database")
    live(2)
    due = database_now() + timedelta(seconds=3)
    ids = add_one_shots(5, due, seconds=0)
    early = first_fire_before(due - timedelta(milliseconds=100), ids)
    assert early is None, f"a fire ran at {early}, before its time {due}"
    wait_settled(ids, timeout=30)
    assert check(ids) == Counter({"succeeded": 5})
    for row in DjangoJobExecution.objects.filter(job_id__in=ids):
        assert row.run_time == due
        assert row.started_at >= due - timedelta(milliseconds=100)

    # Several heartbeats later, nobody was presumed dead by the fast process.
    nodes_seen = live(2)
    wait_for(lambda: SchedulerNode.objects.get(pid=fast.pid).clock_offset is not None)
    beats = {node.pk: node.last_heartbeat for node in nodes_seen}
    wait_for(
        lambda: all(
            node.last_heartbeat > beats[node.pk] + timedelta(seconds=4)
            for node in SchedulerNode.objects.filter(pk__in=beats)
        ),
        timeout=30,
    )
    assert SchedulerNode.objects.filter(stopped_at__isnull=False).count() == 0
    assert "presumed dead" not in processes.logs()
    offset = SchedulerNode.objects.get(pid=fast.pid).clock_offset
    # About 30 s (time-machine's ticking clock starts where the process travelled).
    assert -32 < offset < -27
    assert "s ahead of the database's" in processes.logs()  # the warning says it


def test_trusting_its_own_clock_the_same_process_fires_early(processes):
    """The witness: the test above can see an early fire."""
    skewed(processes, 30, "local")
    live(1)
    due = database_now() + timedelta(seconds=10)
    ids = add_one_shots(1, due, seconds=0)
    early = first_fire_before(due - timedelta(seconds=5), ids)
    assert early is not None
