"""
SQLite in a burst: the scheduler's threads take turns at the write lock
(``store.sqlite.WriteTurns``).

Found by measuring a 20,000-fire burst: the loop and the ledger thread spent
about 40% of it asleep in SQLite's busy handler, waiting for a lock the other
had already released. (The due query's plan: tests/test_due_plans.py.)
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from django.db import connection, connections, transaction

from django_metronome.store.db import utcnow, write_transaction
from django_metronome.store.models import DjangoJob
from django_metronome.store.sqlite import WriteTurns
from tests.conftest import wait_for

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("METRONOME_TEST_DB", "sqlite") != "sqlite",
        reason="SQLite's own locking: tested in the SQLite run",
    ),
    pytest.mark.django_db(transaction=True),
]


def in_thread(name: str, target, *args) -> threading.Thread:
    """Run ``target`` in a thread of that name, with its own connection, closed at the end."""

    def run() -> None:
        try:
            target(*args)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def turns_of_this_thread() -> WriteTurns:
    connection.ensure_connection()
    turns = getattr(connection, "_metronome_turns", None)
    assert turns is not None, "a scheduler thread's SQLite connection takes turns"
    return turns


def test_a_second_thread_waits_for_its_turn_until_the_first_commits():
    order: list[str] = []
    holding = threading.Event()
    release = threading.Event()

    def first() -> None:
        with write_transaction("default"):
            DjangoJob.all_rows.filter(pk="nothing").update(name="x")
            order.append("first began")
            holding.set()
            release.wait(10)
            order.append("first commits")

    def second() -> None:
        holding.wait(10)
        with write_transaction("default"):
            order.append("second began")

    threads = [in_thread("metronome-ledger", first), in_thread("metronome-scheduler", second)]
    assert holding.wait(10)
    time.sleep(0.05)  # the second is waiting for its turn by now (or it would have begun)
    assert order == ["first began"]
    release.set()
    for thread in threads:
        thread.join(10)
    assert order == ["first began", "first commits", "second began"]


@pytest.mark.parametrize("ending", ["commit", "error", "close"])
def test_a_turn_is_given_back_however_the_transaction_ends(ending):
    seen: dict[str, object] = {}

    def work() -> None:
        turns = turns_of_this_thread()
        try:
            with transaction.atomic():
                DjangoJob.all_rows.filter(pk="nothing").update(name="x")
                seen["held inside"] = turns.held and turns.lock.locked()
                if ending == "error":
                    raise RuntimeError("the job's own error")
                if ending == "close":
                    connection.close()
                    seen["after close"] = turns.held or turns.lock.locked()
        except Exception as exc:
            seen["raised"] = type(exc).__name__
        seen["after"] = turns.held or turns.lock.locked()

    in_thread("metronome-ledger", work).join(10)
    assert seen["held inside"] is True
    assert seen["after"] is False
    if ending == "error":
        assert seen["raised"] == "RuntimeError"
    if ending == "close":
        assert seen["after close"] is False


def test_a_lost_turn_slows_a_thread_down_but_never_stops_it():
    # A turn that is never given back (a bug, a thread killed mid-transaction):
    # the next thread begins after the turn's timeout, and SQLite decides.
    done = threading.Event()

    def work() -> None:
        turns = turns_of_this_thread()
        turns.timeout = 0.2
        turns.lock.acquire()  # stands for a turn nobody gives back
        try:
            with write_transaction("default"):
                DjangoJob.all_rows.filter(pk="nothing").update(name="x")
            done.set()
        finally:
            turns.lock.release()

    in_thread("metronome-scheduler", work).join(10)
    assert done.is_set()


def test_threads_that_are_not_the_schedulers_do_not_take_turns():
    seen = {}

    def work() -> None:
        connection.ensure_connection()
        seen["turns"] = getattr(connection, "_metronome_turns", None)

    in_thread("a-job-thread", work).join(10)
    assert seen == {"turns": None}


def test_the_loop_and_the_ledger_thread_run_a_burst_on_one_file():
    # Behaviour, not speed: many fires due at once, every one once and recorded,
    # with the loop and the ledger thread taking turns at the file.
    from django_metronome.schedulers import BackgroundScheduler
    from django_metronome.store.models import DjangoJobExecution, ExecutionStatus
    from tests.testapp import jobs

    scheduler = BackgroundScheduler()
    scheduler.start(paused=True)
    due = utcnow()
    try:
        for number in range(300):
            scheduler.add_job(
                jobs.noop, "date", run_date=due, id=f"burst-{number:03d}", misfire_grace_time=None
            )
        scheduler.resume()
        finished = DjangoJobExecution.objects.filter(status=ExecutionStatus.SUCCEEDED)
        wait_for(lambda: finished.count() == 300, timeout=30)
    finally:
        scheduler.shutdown()
    assert DjangoJobExecution.objects.count() == 300
    assert not DjangoJob.all_rows.exists()
