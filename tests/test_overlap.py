"""
Overlap policies (``overlap=``): the pure decision, its checks at add time, the
stored state, and each policy against a real scheduler and database.

The three-process proof for ``skip`` and ``buffer_one`` is in
tests/test_overlap_processes.py.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from apscheduler.schedulers.base import STATE_STOPPED
from django.core.management import call_command
from django.db import connections

import django_metronome
from django_metronome import present
from django_metronome.models import DjangoJob, DjangoJobExecution, ExecutionStatus
from django_metronome.schedulers import BackgroundScheduler
from django_metronome.store.jobs import decode_job, encode_job
from django_metronome.time.overlap import (
    BUFFER_ALL_LIMIT,
    UNBOUNDED_INSTANCES,
    Decision,
    Overlap,
    check_overlap,
    decide,
    effective_overlap,
)
from tests.conftest import wait_for

GATE = threading.Event()
LOCK = threading.Lock()
ACTIVE: list[int] = []
PEAK: list[int] = []


def gated() -> None:
    """Runs until GATE opens, counting how many of its fires run at once."""
    with LOCK:
        ACTIVE.append(1)
        PEAK.append(len(ACTIVE))
    try:
        GATE.wait(20)
    finally:
        with LOCK:
            ACTIVE.pop()


def noop() -> None:
    pass


# --- the pure decision ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "running", "waiting", "expected"),
    [
        (Overlap.SKIP, 0, 0, Decision.RUN),
        (Overlap.SKIP, 1, 0, Decision.SKIP),
        (Overlap.ALLOW_ALL, 2, 0, Decision.RUN),
        (Overlap.BUFFER_ONE, 0, 0, Decision.RUN),
        (Overlap.BUFFER_ONE, 1, 0, Decision.BUFFER),
        (Overlap.BUFFER_ONE, 1, 1, Decision.SKIP),
        # One waits already: a new fire does not overtake it, even with nothing running.
        (Overlap.BUFFER_ONE, 0, 1, Decision.SKIP),
        (Overlap.BUFFER_ALL, 0, 3, Decision.BUFFER),
        (Overlap.BUFFER_ALL, 1, BUFFER_ALL_LIMIT - 1, Decision.BUFFER),
        (Overlap.BUFFER_ALL, 1, BUFFER_ALL_LIMIT, Decision.SKIP),
        (Overlap.CANCEL_OTHER, 0, 0, Decision.RUN),
        (Overlap.CANCEL_OTHER, 1, 0, Decision.REPLACE),
    ],
)
def test_decide(policy, running, waiting, expected):
    max_instances = 3 if policy == Overlap.ALLOW_ALL else 1
    assert decide(policy, running=running, waiting=waiting, max_instances=max_instances) == expected


def test_allow_all_stops_at_max_instances():
    assert decide(Overlap.ALLOW_ALL, running=3, waiting=0, max_instances=3) == Decision.SKIP


def test_jobs_without_a_policy_follow_max_instances():
    assert effective_overlap(None, 1) == Overlap.SKIP
    assert effective_overlap(None, 4) == Overlap.ALLOW_ALL
    assert effective_overlap("buffer_one", 1) == Overlap.BUFFER_ONE


@pytest.mark.parametrize(
    ("policy", "max_instances", "message"),
    [
        ("sometimes", None, "overlap must be one of 'skip', 'allow_all'"),
        ("skip", 3, "overlap='skip' runs one fire of the job at a time, but max_instances=3"),
        ("buffer_one", 2, "leave max_instances out, or use overlap='allow_all'"),
        ("allow_all", 1, "overlap='allow_all' lets fires run side by side, but max_instances=1"),
    ],
)
def test_check_overlap_refuses_with_what_to_do(policy, max_instances, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_overlap(policy, max_instances)


# --- add time, stored state -----------------------------------------------------------


#: What a started scheduler fills in (a stopped one leaves them unset).
DEFAULTS = {"misfire_grace_time": 1, "coalesce": True}


@pytest.fixture
def stopped():
    scheduler = BackgroundScheduler(timezone=UTC)
    yield scheduler


def test_add_job_refuses_an_unknown_policy(stopped):
    with pytest.raises(ValueError, match="not 'replace'"):
        stopped.add_job(noop, "interval", seconds=5, id="x", overlap="replace")


def test_add_job_refuses_a_policy_that_contradicts_max_instances(stopped):
    with pytest.raises(ValueError, match="max_instances=4 allows more"):
        stopped.add_job(noop, "interval", seconds=5, id="x", overlap="buffer_all", max_instances=4)


def test_policy_sets_the_max_instances_it_means(stopped):
    one = stopped.add_job(noop, "interval", seconds=5, id="one", overlap="buffer_one")
    free = stopped.add_job(noop, "interval", seconds=5, id="free", overlap="allow_all")
    bound = stopped.add_job(
        noop, "interval", seconds=5, id="bound", overlap="allow_all", max_instances=5
    )
    assert (one.max_instances, free.max_instances, bound.max_instances) == (
        1,
        UNBOUNDED_INSTANCES,
        5,
    )


def test_scheduler_defaults_do_not_override_the_policy():
    scheduler = BackgroundScheduler(timezone=UTC, job_defaults={"max_instances": 3})
    job = scheduler.add_job(noop, "interval", seconds=5, id="one", overlap="skip")
    assert job.max_instances == 1


def test_modify_job_checks_the_policy_against_max_instances(stopped):
    job = stopped.add_job(noop, "interval", seconds=5, id="one", overlap="skip")
    with pytest.raises(ValueError, match="max_instances=2 allows more"):
        job._modify(max_instances=2)
    job._modify(overlap="allow_all", max_instances=2)
    assert (job.overlap, job.max_instances) == ("allow_all", 2)


def test_overlap_is_stored_with_the_job_and_read_back(stopped):
    job = stopped.add_job(noop, "interval", seconds=5, id="kept", overlap="buffer_all", **DEFAULTS)
    func_ref, state = encode_job(job)
    assert state["overlap"] == "buffer_all"
    loaded = decode_job(job_id="kept", name="", func_ref=func_ref, state=state, next_run_time=None)
    assert (loaded.overlap, loaded.max_instances) == ("buffer_all", 1)


def test_old_rows_without_overlap_load_unchanged(stopped):
    job = stopped.add_job(noop, "interval", seconds=5, id="old", max_instances=2, **DEFAULTS)
    func_ref, state = encode_job(job)
    assert "overlap" not in state  # rows written before overlap existed look like this
    loaded = decode_job(job_id="old", name="", func_ref=func_ref, state=state, next_run_time=None)
    assert loaded.overlap is None
    assert effective_overlap(loaded.overlap, loaded.max_instances) == Overlap.ALLOW_ALL


# --- against a real scheduler -----------------------------------------------------------


@pytest.fixture
def running(settings, transactional_db):
    settings.METRONOME = {
        "POLL_INTERVAL": 0.05,
        "HEARTBEAT_INTERVAL": 0.2,
        "DEAD_AFTER": 2,
        "SHUTDOWN_TIMEOUT": 2,
        "MIN_INTERVAL": 0.05,
    }
    GATE.clear()
    ACTIVE.clear()
    PEAK.clear()
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start()
    yield scheduler
    GATE.set()
    if scheduler.state != STATE_STOPPED:
        scheduler.shutdown(wait=True, timeout=5)


#: In the reason of a fire the overlap policy skipped (on a slow machine, fires are
#: also coalesced: those say so, and are not the policy's).
OVERLAP = "(overlap:"


def ledger(job_id, **filters):
    return list(
        DjangoJobExecution.objects.filter(job_id=job_id, **filters).order_by("run_time", "id")
    )


def pause(job_id):
    DjangoJob.objects.filter(pk=job_id).pause()


def pause_and_close(job_id):
    """In a passing thread: pause, and close that thread's connection."""
    try:
        pause(job_id)
    finally:
        connections.close_all()


def test_skip_records_the_overlap_as_the_reason(running):
    running.add_job(gated, "interval", seconds=0.1, id="skip", overlap="skip")
    skipped = wait_for(
        lambda: ledger("skip", status=ExecutionStatus.SKIPPED, reason__contains=OVERLAP)
    )
    assert skipped[0].reason.startswith("Skipped (overlap: skip)")
    assert len(ledger("skip", status=ExecutionStatus.RUNNING)) == 1


def test_allow_all_runs_fires_side_by_side_up_to_max_instances(running):
    running.add_job(gated, "interval", seconds=0.1, id="all", overlap="allow_all", max_instances=3)
    wait_for(lambda: len(ledger("all", status=ExecutionStatus.RUNNING)) == 3)
    skipped = wait_for(
        lambda: ledger("all", status=ExecutionStatus.SKIPPED, reason__contains=OVERLAP)
    )
    assert "3 instance(s) running" in skipped[0].reason
    assert max(PEAK) == 3


def test_buffer_one_keeps_one_fire_waiting_and_starts_it_late(running):
    running.add_job(gated, "interval", seconds=0.1, id="one", overlap="buffer_one")
    wait_for(lambda: ledger("one", status=ExecutionStatus.SKIPPED, reason__contains=OVERLAP))
    waiting = ledger("one", status=ExecutionStatus.PENDING)
    assert len(waiting) == 1
    assert waiting[0].reason.startswith("Buffered (overlap: buffer_one)")
    skipped = ledger("one", status=ExecutionStatus.SKIPPED, reason__contains=OVERLAP)[0]
    assert "1 fire(s) of the job already waited" in skipped.reason
    assert skipped.run_time > waiting[0].run_time

    pause("one")
    GATE.set()
    ran = wait_for(
        lambda: DjangoJobExecution.objects.filter(pk=waiting[0].pk, status="succeeded").first()
    )
    first = ledger("one")[0]
    # It started once the first one ended, late by the time it waited.
    assert ran.started_at >= first.finished_at
    assert ran.lateness >= first.finished_at - ran.run_time
    assert ran.reason.startswith("Buffered")
    assert max(PEAK) == 1


def test_buffer_all_runs_every_waiting_fire_in_order_one_at_a_time(running):
    running.add_job(gated, "interval", seconds=0.1, id="all", overlap="buffer_all")
    wait_for(lambda: len(ledger("all", status=ExecutionStatus.PENDING)) >= 3)
    pause("all")
    waiting = [row.pk for row in ledger("all", status=ExecutionStatus.PENDING)]
    assert not ledger("all", status=ExecutionStatus.SKIPPED, reason__contains=OVERLAP)
    GATE.set()
    wait_for(lambda: not ledger("all", status__in=["pending", "claimed", "running"]))
    rows = [row for row in ledger("all") if row.started_at is not None]
    assert {row.status for row in rows} == {"succeeded"}
    assert set(waiting) <= {row.pk for row in rows}
    starts = [row.started_at for row in rows]
    assert starts == sorted(starts)  # in the order of their scheduled times
    for earlier, later in itertools.pairwise(rows):
        assert later.started_at >= earlier.finished_at  # never two at once
    assert max(PEAK) == 1


def test_a_run_now_request_behind_a_buffered_fire_waits_too(running):
    running.add_job(gated, "interval", seconds=0.1, id="one", overlap="buffer_one")
    wait_for(lambda: ledger("one", status=ExecutionStatus.PENDING))
    pause("one")
    request = DjangoJob.objects.get(pk="one").run_now(requested_by="tests")
    threading.Event().wait(0.3)
    assert DjangoJobExecution.objects.get(pk=request.pk).status == ExecutionStatus.PENDING
    GATE.set()
    done = wait_for(
        lambda: DjangoJobExecution.objects.filter(pk=request.pk, status="succeeded").first()
    )
    assert done.started_at >= max(row.finished_at for row in ledger("one") if row.pk != request.pk)
    assert datetime.now(UTC) - done.finished_at < timedelta(minutes=1)


# --- cancel_other ------------------------------------------------------------------------

SAW: list[str] = []


def cooperative() -> None:
    """Runs until asked to stop (cancel_other), or until GATE opens."""
    from django_metronome.context import current_fire

    fire = current_fire()
    assert fire is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not GATE.is_set():
        if fire.cancelled:
            SAW.append("cancelled")
            return
        GATE.wait(0.02)


async def stubborn_coroutine() -> None:
    SAW.append("started")
    try:
        for _ in range(400):  # 20 s at most, or until GATE opens
            if GATE.is_set():
                return
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        SAW.append("cancelled")
        raise


def test_cancel_other_asks_a_thread_fire_to_stop_and_starts_the_next(running):
    SAW.clear()
    running.add_job(cooperative, "interval", seconds=0.3, id="replace", overlap="cancel_other")
    cancelled = wait_for(
        lambda: DjangoJobExecution.objects.filter(
            job_id="replace", status="succeeded", reason__startswith="Cancelled by the next fire"
        ).first()
    )
    pause("replace")
    assert "overlap: cancel_other" in cancelled.reason
    assert SAW and SAW[0] == "cancelled"
    successor = DjangoJobExecution.objects.filter(
        job_id="replace", run_time__gt=cancelled.run_time
    ).first()
    assert "Started while the job's previous fire ran" in successor.reason
    # The successor started while the cancelled one still ran: no waiting on it.
    assert successor.started_at < cancelled.finished_at


def test_a_fire_of_another_policy_is_never_cancelled(running):
    from django_metronome.context import current_fire

    seen = []
    GATE.set()

    def look() -> None:
        seen.append(current_fire().cancelled)

    running.add_job(look, "interval", seconds=0.1, id="plain", overlap="skip")
    wait_for(lambda: seen)
    assert seen[0] is False


def test_cancel_other_cancels_a_coroutine_fire_for_real(settings, transactional_db):
    from django_metronome.schedulers import AsyncIOScheduler

    settings.METRONOME = {"POLL_INTERVAL": 0.05, "MIN_INTERVAL": 0.05, "SHUTDOWN_TIMEOUT": 2}
    SAW.clear()
    GATE.clear()

    async def main() -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            stubborn_coroutine, "interval", seconds=0.3, id="co", overlap="cancel_other"
        )
        scheduler.start()
        deadline = time.monotonic() + 15
        while "cancelled" not in SAW and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(pause_and_close, "co")
        GATE.set()  # the fire that replaced it ends
        await asyncio.to_thread(scheduler.wait_for_outcomes, 5)
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0.1)

    asyncio.run(main())
    assert "cancelled" in SAW
    interrupted = wait_for(
        lambda: DjangoJobExecution.objects.filter(
            job_id="co", status="interrupted", reason__startswith="Cancelled by the next fire"
        ).first()
    )
    assert "FireCancelled" in interrupted.exception


def test_fires_buffered_behind_a_schedules_last_claimed_fire_still_run(running):
    """The schedule ends with fires waiting: the job's row stays until they have run."""
    now = datetime.now(UTC)
    running.add_job(
        gated,
        "interval",
        seconds=1,
        start_date=now - timedelta(seconds=3),
        end_date=now - timedelta(seconds=0.5),
        next_run_time=now - timedelta(seconds=3),
        id="ending",
        overlap="buffer_all",
        misfire_policy="all",
        misfire_grace_time=60,
        coalesce=False,
    )
    wait_for(lambda: len(ledger("ending", status=ExecutionStatus.PENDING)) == 2)
    GATE.set()
    done = wait_for(
        lambda: (
            rows if len(rows := ledger("ending", status__in=["succeeded", "failed"])) == 3 else None
        )
    )
    assert [row.status for row in done] == ["succeeded"] * 3


# --- the policy shown: the admin's job page and `metronome show` ------------------------


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({}, "skip: a fire due while one runs is skipped"),
        ({"overlap": "buffer_one"}, "buffer_one: one fire waits for the running one"),
        ({"overlap": "buffer_all"}, "start in order (at most 100 wait)"),
        ({"overlap": "cancel_other"}, "cancel_other: a new fire asks the running one to stop"),
        ({"max_instances": 3}, "allow_all: fires run side by side, at most 3 at once"),
        ({"overlap": "allow_all"}, "allow_all: fires run side by side, without a bound"),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_the_job_page_and_show_say_what_an_overlapping_fire_does(admin_client, options, words):

    django_metronome.add_job(
        "tests.testapp.jobs:noop", "interval", minutes=5, id="overlapping", **options
    )
    page = admin_client.get("/admin/django_metronome/djangojob/overlapping/change/")
    body = page.content.decode()
    assert "overlapping fires (overlap)" in body.lower()
    assert words in body
    out = StringIO()
    call_command("metronome", "show", "overlapping", stdout=out)
    (line,) = [line for line in out.getvalue().splitlines() if line.startswith("Overlap")]
    assert words in line


@pytest.mark.django_db
def test_a_hand_edited_policy_is_shown_as_unreadable_not_as_an_error():

    job = DjangoJob(id="edited", state={"overlap": "sometimes", "max_instances": 1})
    assert present.overlap_words(job) == "(a policy this release cannot read)"
