"""
An idle scheduler is nearly silent, and still sees every change made elsewhere.

On PostgreSQL the database notifies (LISTEN/NOTIFY) and the loop sleeps until
its next due time; on SQLite and MariaDB the loop reads one change marker.
These tests check behaviour only: that each kind of change is announced (and
a claim is not), that announcements are acted on when polling could not
explain it, that a killed LISTEN connection falls back to polling and comes
back, and the queries of an idle turn and of a heartbeat. No timing is
asserted: outcomes are polled for, with deadlines.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.base import STATE_RUNNING
from django.db import connection
from django.test.utils import CaptureQueriesContext

import django_metronome
from django_metronome.loop.heart import Heart
from django_metronome.models import DjangoJob, DjangoJobExecution, SchedulerNode
from django_metronome.schedulers import BackgroundScheduler
from django_metronome.store import changes, claims, nodes
from tests.claiming import plan_once, started_store
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# Far enough ahead never to fall due during a test, built from now (any day, any clock).
FAR = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3650)
LISTEN_QUERY = f'LISTEN "{changes.CHANNEL}"'
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's"
)


def budget(**per_vendor: int) -> int:
    return per_vendor[connection.vendor]


@pytest.fixture(autouse=True)
def quiet_settings(settings):
    # On PostgreSQL polling is made too slow to explain a pickup within the tests'
    # deadlines: only a notification can. Elsewhere the change marker is polled often,
    # and the rescan is far: only the marker can explain it.
    polling = 60 if connection.vendor == "postgresql" else 0.1
    settings.METRONOME = {
        "POLL_INTERVAL": polling,
        "RESCAN_INTERVAL": 60,
        "HEARTBEAT_INTERVAL": 0.2,
        "DEAD_AFTER": 2,
        "SHUTDOWN_TIMEOUT": 2,
    }


@pytest.fixture
def scheduler():
    made = BackgroundScheduler(timezone=UTC)
    yield made
    if made.running:
        made.shutdown(wait=True, timeout=5)


def far_job(job_id: str, **options) -> None:
    django_metronome.add_job(
        "tests.testapp.jobs:noop", "interval", hours=1, id=job_id, next_run_time=FAR, **options
    )


def ran(job_id: str):
    return DjangoJobExecution.objects.filter(job_id=job_id, status="succeeded").first()


def started_and_idle(scheduler) -> None:
    """Start, and wait until the loop sleeps the way an idle one does."""
    scheduler.start()
    if connection.vendor == "postgresql":
        wait_for(lambda: scheduler._watch == changes.NOTIFY)
    wait_for(lambda: not scheduler._stale)


# -- what announces a change -------------------------------------------------------------


class Announcements:
    """Whether the database announced a change since the last look (test thread)."""

    def __init__(self) -> None:
        self.version = None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(LISTEN_QUERY)
        self.take()

    def take(self) -> bool:
        if connection.vendor == "postgresql":
            # Notifications of this session's own commits arrive with the commit's answer.
            return sum(1 for _ in connection.connection.notifies(timeout=0)) > 0
        version, self.version = self.version, changes.marker("default")
        return version != self.version


def claim_now(job_id: str) -> None:
    store = started_store()

    batch = claims.claim_due_fires(
        using="default",
        node="n",
        now=datetime.now(UTC),
        limit=10,
        declared=[],
        load=store.load_rows,
        plan=plan_once,
    )
    assert batch.fire_count == 1


def test_each_change_of_what_is_due_is_announced_and_a_claim_is_not():
    announced = Announcements()
    soon = datetime.now(UTC) - timedelta(seconds=1)

    django_metronome.add_job(
        "tests.testapp.jobs:noop", "interval", hours=1, id="tick", next_run_time=soon
    )
    assert announced.take(), "add"
    # A claim moves the job later: every other scheduler may sleep on.
    claim_now("tick")
    assert not announced.take(), "claim"
    job = DjangoJob.objects.get(pk="tick")
    job.pause()
    assert announced.take(), "pause"
    job.resume()
    assert announced.take(), "resume"
    job.run_now()
    assert announced.take(), "run now"
    # A hand edit, raw SQL, moving the job earlier.
    table = connection.ops.quote_name(DjangoJob._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET next_run_time = %s WHERE id = %s",
            [connection.ops.adapt_datetimefield_value(soon), "tick"],
        )
    assert announced.take(), "hand edit"
    DjangoJob.objects.filter(pk="tick").delete()
    assert announced.take(), "remove"


# -- acted on ---------------------------------------------------------------------------


def test_a_job_added_by_another_connection_is_picked_up(scheduler):
    far_job("far")
    started_and_idle(scheduler)

    # Another connection (this thread's), as a web request's add_job would be.
    django_metronome.add_job(
        "tests.testapp.jobs:noop", "date", run_date=datetime.now(UTC), id="now"
    )

    wait_for(lambda: ran("now"))


def test_run_now_resume_and_a_hand_edit_are_picked_up(scheduler):
    far_job("far")
    every_second = datetime.now(UTC) - timedelta(minutes=1)
    django_metronome.add_job(
        "tests.testapp.jobs:noop", "interval", seconds=1, start_date=every_second, id="paused"
    )
    DjangoJob.objects.get(pk="paused").pause()
    started_and_idle(scheduler)

    DjangoJob.objects.get(pk="far").run_now()
    wait_for(lambda: ran("far"))

    DjangoJob.objects.get(pk="paused").resume()
    wait_for(lambda: ran("paused"))

    far_job("edited")
    DjangoJob.objects.filter(pk="edited").update(next_run_time=datetime.now(UTC))
    wait_for(lambda: ran("edited"))


def test_a_paused_or_removed_job_does_not_fire(scheduler):
    soon = datetime.now(UTC) + timedelta(seconds=1)
    django_metronome.add_job(
        "tests.testapp.jobs:noop", "interval", hours=1, id="paused", next_run_time=soon
    )
    django_metronome.add_job(
        "tests.testapp.jobs:noop", "interval", hours=1, id="removed", next_run_time=soon
    )
    django_metronome.add_job(
        "tests.testapp.jobs:noop", "interval", hours=1, id="kept", next_run_time=soon
    )
    started_and_idle(scheduler)

    DjangoJob.objects.get(pk="paused").pause()
    DjangoJob.objects.filter(pk="removed").delete()

    wait_for(lambda: ran("kept"))
    assert not DjangoJobExecution.objects.filter(job_id__in=["paused", "removed"]).exists()


def test_a_run_now_seen_without_room_is_taken_once_there_is_room(scheduler):
    far_job("far")
    # Paused: the loop's thread waits, this thread takes the turns.
    scheduler.start(paused=True)
    scheduler._claim_and_dispatch()
    if connection.vendor == "postgresql":
        wait_for(lambda: scheduler._watch == changes.NOTIFY)
        scheduler._claim_and_dispatch()
    DjangoJob.objects.get(pk="far").run_now()
    if connection.vendor == "postgresql":
        wait_for(lambda: scheduler._stale)

    # Every worker busy: the request is seen, and left waiting.
    scheduler._capacity = lambda: 0
    scheduler._claim_and_dispatch()
    assert DjangoJobExecution.objects.filter(job_id="far", status="pending").exists()

    # A worker comes free (the pool wakes the loop): the next turn takes it, though
    # nothing new was announced.
    del scheduler._capacity
    scheduler._claim_and_dispatch()
    assert not DjangoJobExecution.objects.filter(job_id="far", status="pending").exists()


def test_without_the_triggers_the_loop_reads_the_job_table_every_poll(
    scheduler, settings, monkeypatch, caplog
):
    # MySQL without the privilege to create them, or triggers dropped by hand.
    monkeypatch.setattr(changes, "triggers_installed", lambda using: False)
    settings.METRONOME = {**settings.METRONOME, "POLL_INTERVAL": 0.1}
    far_job("far")
    scheduler.start()
    wait_for(lambda: scheduler._watch == changes.POLL)

    django_metronome.add_job(
        "tests.testapp.jobs:noop", "date", run_date=datetime.now(UTC), id="polled"
    )

    wait_for(lambda: ran("polled"))
    assert "triggers are missing" in caplog.text
    assert scheduler._listener is None


@postgresql_only
def test_listen_false_polls_the_job_table(scheduler, settings):
    # For poolers in transaction mode, which deliver no notifications.
    settings.METRONOME = {**settings.METRONOME, "LISTEN": False, "POLL_INTERVAL": 0.1}
    far_job("far")
    scheduler.start()
    wait_for(lambda: scheduler._watch == changes.POLL)

    django_metronome.add_job(
        "tests.testapp.jobs:noop", "date", run_date=datetime.now(UTC), id="polled"
    )

    wait_for(lambda: ran("polled"))
    assert scheduler._listener is None
    assert listener_pids() == []


# -- the LISTEN connection lost -----------------------------------------------------------


def listener_pids() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query = %s AND pid <> pg_backend_pid()",
            [LISTEN_QUERY],
        )
        return [pid for (pid,) in cursor.fetchall()]


def kill(pids: list[int]) -> None:
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


@postgresql_only
def test_a_killed_listen_connection_falls_back_to_polling(scheduler, settings, monkeypatch):
    # Reconnecting waits long: only polling can pick the change up meanwhile.
    monkeypatch.setattr(changes, "RETRY_FIRST", 60.0)
    settings.METRONOME = {**settings.METRONOME, "POLL_INTERVAL": 0.1}
    far_job("far")
    started_and_idle(scheduler)
    listening = wait_for(listener_pids)

    kill(listening)
    wait_for(lambda: scheduler._watch == changes.POLL)
    django_metronome.add_job(
        "tests.testapp.jobs:noop", "date", run_date=datetime.now(UTC), id="polled"
    )

    wait_for(lambda: ran("polled"))
    assert listener_pids() == []


@postgresql_only
def test_a_killed_listen_connection_listens_again(scheduler):
    far_job("far")
    started_and_idle(scheduler)
    (first,) = wait_for(listener_pids)

    kill([first])
    (second,) = wait_for(lambda: [pid for pid in listener_pids() if pid != first])
    wait_for(lambda: scheduler._watch == changes.NOTIFY)
    # Polling every 60 s cannot explain this pickup: the notification does.
    django_metronome.add_job(
        "tests.testapp.jobs:noop", "date", run_date=datetime.now(UTC), id="notified"
    )

    wait_for(lambda: ran("notified"))
    assert second != first


# -- query budgets --------------------------------------------------------------------------


def test_an_idle_turn_reads_the_change_marker_at_most(scheduler, django_assert_num_queries):
    for number in range(20):
        far_job(f"far-{number}")
    # Paused: the loop's thread waits, this thread takes the turns.
    scheduler.start(paused=True)
    scheduler._claim_and_dispatch()  # decides how to watch; the first look
    if connection.vendor == "postgresql":
        wait_for(lambda: scheduler._watch == changes.NOTIFY)
        scheduler._claim_and_dispatch()  # the look the listener asks for once it listens

    # One turn: nothing on PostgreSQL, the change marker elsewhere.
    with django_assert_num_queries(3 * budget(postgresql=0, sqlite=1, mysql=1)):
        for _ in range(3):
            wait = scheduler._claim_and_dispatch()
    assert wait > 0

    far_job("another")
    if connection.vendor == "postgresql":
        wait_for(lambda: scheduler._stale)
    with CaptureQueriesContext(connection) as looked:
        scheduler._claim_and_dispatch()
    # The change is looked at: the pending fires, the next due time (and the marker).
    assert len(looked) >= 2


def test_a_heartbeat_with_nothing_to_do_is_one_statement(django_assert_num_queries):
    heart = Heart("default", "me:1:a", lambda: [])
    heart.beat()  # registers, and does everything once

    # The heartbeat, the clock and the look (two statements where UPDATE cannot return).
    with django_assert_num_queries(budget(postgresql=1, sqlite=1, mysql=2)):
        heart.beat()
    node = SchedulerNode.objects.get(pk="me:1:a")
    assert node.stopped_at is None


def test_a_heartbeat_reaps_the_dead_and_resumes_what_is_due():
    heart = Heart("default", "me:1:a", lambda: [])
    heart.beat()
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    nodes.register("default", "dead:2:b", long_ago)
    far_job("napping")
    DjangoJob.objects.get(pk="napping").pause(until=datetime.now(UTC) - timedelta(seconds=1))

    heart.beat()

    assert SchedulerNode.objects.get(pk="dead:2:b").stopped_at is not None
    assert DjangoJob.objects.get(pk="napping").next_run_time is not None


def turns_by_hand(scheduler, monkeypatch) -> None:
    """
    Started, its loop's thread left waiting, and running: this thread takes the turns.

    (Paused, a turn claims nothing due; so the state says running, and nothing wakes
    the loop's own thread.)
    """
    scheduler.start(paused=True)
    monkeypatch.setattr(scheduler, "wakeup", lambda: None)
    scheduler.state = STATE_RUNNING
    scheduler._claim_and_dispatch()
    if connection.vendor == "postgresql":
        wait_for(lambda: scheduler._watch == changes.NOTIFY)
        scheduler._claim_and_dispatch()


def test_a_turn_for_a_known_due_time_claims_without_looking_first(scheduler, monkeypatch):
    """
    Nothing announced since the last look: the turn that comes at the next due time
    claims at once, without first reading the pending fires and the next due time
    (two statements per fire of a periodic job, and their wait on its lateness).
    """
    far_job("far")
    turns_by_hand(scheduler, monkeypatch)

    def turn_when_due(job_id: str, *, announced: bool) -> list[str]:
        due = datetime.now(UTC) + timedelta(seconds=0.3)
        django_metronome.add_job("tests.testapp.jobs:noop", "date", run_date=due, id=job_id)
        if connection.vendor == "postgresql":
            wait_for(lambda: scheduler._stale)
        scheduler._claim_and_dispatch()  # the look that sees it: due in a moment
        assert scheduler._next_due == due and not scheduler._stale
        wait_for(lambda: datetime.now(UTC) > due)
        scheduler._stale = announced
        with CaptureQueriesContext(connection) as turn:
            scheduler._claim_and_dispatch()
        assert DjangoJobExecution.objects.filter(job_id=job_id).count() == 1
        return [query["sql"] for query in turn.captured_queries]

    direct = turn_when_due("first", announced=False)
    looked = turn_when_due("second", announced=True)
    assert len(looked) - len(direct) == 2
    assert any("pending" in sql for sql in looked)
    assert not any("pending" in sql for sql in direct)


def test_a_known_due_time_that_moved_unannounced_leads_to_a_whole_look(scheduler, monkeypatch):
    far_job("far")
    turns_by_hand(scheduler, monkeypatch)
    # The loop believes something is due; nothing is (a job moved later by another
    # process announces nothing).
    scheduler._next_due = datetime.now(UTC) - timedelta(seconds=1)
    scheduler._stale = False

    wait = scheduler._claim_and_dispatch()

    assert wait == 0 and scheduler._stale
    scheduler._claim_and_dispatch()
    assert not scheduler._stale
    assert scheduler._next_due == FAR
    assert not DjangoJobExecution.objects.exists()
