"""
Claimed is not started: the ledger transitions that keep a never-started fire from being lost.

These drive the store's transactions directly (``claims``, ``nodes``), with
the clock as an argument, on every database of the test run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

import django_metronome
from django_metronome.jobstores import DjangoJobStore
from django_metronome.models import DjangoJob, DjangoJobExecution, ExecutionStatus
from django_metronome.store import claims, ledger, nodes, pending
from django_metronome.store.ledger import Outcome
from tests.claiming import plan_once, started_store

pytestmark = pytest.mark.django_db(transaction=True)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def store() -> DjangoJobStore:
    return started_store()


def claim(store, node: str, at: datetime, limit: int = 100):
    return claims.claim_due_fires(
        using="default",
        node=node,
        now=at,
        limit=limit,
        declared=[],
        load=store.load_rows,
        plan=plan_once,
    )


def one_shots(count: int, when: datetime, prefix: str = "once") -> None:
    for number in range(count):
        django_metronome.add_job(
            "tests.testapp.jobs:noop", "date", run_date=when, id=f"{prefix}-{number}"
        )


def statuses(**filters) -> dict[str, str]:
    return dict(DjangoJobExecution.objects.filter(**filters).values_list("job_id", "status"))


def test_a_claim_records_claimed_fires_not_started_ones(store):
    at = now()
    one_shots(3, at - timedelta(seconds=1))
    batch = claim(store, "node-a", at)

    assert batch.fire_count == 3
    rows = DjangoJobExecution.objects.all()
    assert {row.status for row in rows} == {ExecutionStatus.CLAIMED}
    assert {row.node for row in rows} == {"node-a"}
    assert all(row.started_at is None for row in rows)
    # For their users the one-shot jobs are gone at once, as in APScheduler ...
    assert not DjangoJob.objects.exists()
    assert store.get_all_jobs() == []
    # ... but their rows wait, hidden, for the fires.
    assert DjangoJob.all_rows.filter(ended_at__isnull=False).count() == 3


def test_the_limit_bounds_what_one_claim_takes(store):
    at = now()
    one_shots(10, at - timedelta(seconds=1))
    assert claim(store, "node-a", at, limit=4).fire_count == 4
    assert claim(store, "node-b", at, limit=0).fire_count == 0
    assert DjangoJobExecution.objects.filter(node="node-a").count() == 4
    assert DjangoJob.all_rows.filter(next_run_time__isnull=False).count() == 6


def test_starting_marks_only_fires_still_claimed_by_this_process(store):
    at = now()
    one_shots(3, at - timedelta(seconds=1))
    batch = claim(store, "node-a", at)
    ids = [fire.execution_id for claimed in batch.claimed for fire in claimed.fires]

    # Another process presumed node-a dead and handed one fire back meanwhile.
    DjangoJobExecution.objects.filter(pk=ids[0]).update(status="pending", node="")
    started = ledger.start_fires("default", "node-a", ids, at + timedelta(seconds=1))
    assert sorted(started) == sorted(ids[1:])
    assert ledger.start_fires("default", "node-b", ids, at) == []  # not node-b's
    rows = DjangoJobExecution.objects.in_bulk(ids)
    assert rows[ids[0]].status == ExecutionStatus.PENDING
    assert {rows[pk].status for pk in ids[1:]} == {ExecutionStatus.RUNNING}
    assert {rows[pk].started_at for pk in ids[1:]} == {at + timedelta(seconds=1)}


def test_a_dead_process_hands_back_what_it_never_started(store):
    at = now()
    one_shots(4, at - timedelta(seconds=1))
    batch = claim(store, "node-a", at)
    ids = [fire.execution_id for claimed in batch.claimed for fire in claimed.fires]
    ledger.start_fires("default", "node-a", ids[:1], at)
    nodes.register("default", "node-a", at - timedelta(minutes=5))

    dead = nodes.reap("default", at + timedelta(minutes=1), timedelta(seconds=30))

    assert dead == ["node-a"]
    rows = DjangoJobExecution.objects.in_bulk(ids)
    assert rows[ids[0]].status == ExecutionStatus.INTERRUPTED  # it had started
    assert "presumed dead" in rows[ids[0]].reason
    for pk in ids[1:]:
        assert rows[pk].status == ExecutionStatus.PENDING  # never started: handed back
        assert rows[pk].node == ""
        assert rows[pk].reason.startswith("Handed back")
    # The interrupted fire was its job's last: that job's row goes; the others wait.
    interrupted_job = rows[ids[0]].job_id
    assert not DjangoJob.all_rows.filter(pk=interrupted_job).exists()
    assert DjangoJob.all_rows.count() == 3


def test_a_handed_back_fire_runs_once_elsewhere_and_then_its_job_goes(store):
    at = now()
    one_shots(1, at - timedelta(seconds=1))
    claim(store, "node-a", at)
    nodes.register("default", "node-a", at - timedelta(minutes=5))
    nodes.reap("default", at + timedelta(minutes=1), timedelta(seconds=30))

    later = at + timedelta(minutes=1)
    batch = pending.claim_manual_fires(
        using="default", node="node-b", now=later, limit=10, declared=[], load=store.load_rows
    )
    (claimed,) = batch.claimed
    (fire,) = claimed.fires
    assert not fire.ended  # its job's row goes with the heart's sweep, not with it
    assert fire.run_time == at - timedelta(seconds=1)  # the nominal time, however late
    assert ledger.start_fires("default", "node-b", [fire.execution_id], later) == [
        fire.execution_id
    ]
    # A second process finds nothing left to take.
    again = pending.claim_manual_fires(
        using="default", node="node-c", now=later, limit=10, declared=[], load=store.load_rows
    )
    assert again.fire_count == 0

    ledger.record_outcomes(
        "default",
        [
            Outcome(
                fire.execution_id,
                fire.run_time,
                ExecutionStatus.SUCCEEDED,
                later + timedelta(seconds=1),
                later,
                job_id=claimed.job.id,
            )
        ],
    )
    row = DjangoJobExecution.objects.get(pk=fire.execution_id)
    assert (row.status, row.node) == (ExecutionStatus.SUCCEEDED, "node-b")
    assert row.reason.startswith("Handed back")
    assert row.lateness == timedelta(minutes=1, seconds=1)
    # Its last fire finished: the heart's sweep removes the ended job's row.
    assert ledger.delete_ended_jobs("default") == 1
    assert not DjangoJob.all_rows.exists()


def test_a_clean_stop_hands_back_claims_and_interrupts_started_fires(store):
    at = now()
    one_shots(2, at - timedelta(seconds=1))
    batch = claim(store, "node-a", at)
    ids = [fire.execution_id for claimed in batch.claimed for fire in claimed.fires]
    ledger.start_fires("default", "node-a", ids[:1], at)
    nodes.register("default", "node-a", at)

    assert nodes.stop("default", "node-a", at + timedelta(seconds=1)) == (1, 1)
    assert sorted(statuses().values()) == ["interrupted", "pending"]


def test_a_run_now_request_handed_back_keeps_saying_who_asked(store):
    at = now()
    django_metronome.add_job("tests.testapp.jobs:noop", "interval", hours=1, id="hourly")
    DjangoJob.objects.get(pk="hourly").run_now(requested_by="alice")
    batch = pending.claim_manual_fires(
        using="default", node="node-a", now=at, limit=10, declared=[], load=store.load_rows
    )
    assert batch.fire_count == 1
    nodes.register("default", "node-a", at)
    nodes.stop("default", "node-a", at)

    row = DjangoJobExecution.objects.get(job_id="hourly")
    assert row.status == ExecutionStatus.PENDING
    assert row.reason == "Run now, asked for by alice."


def test_claimed_fires_count_against_max_instances(store):
    at = now()
    django_metronome.add_job(
        "tests.testapp.jobs:noop",
        "interval",
        seconds=10,
        id="ten",
        max_instances=1,
        next_run_time=at - timedelta(seconds=10),
    )
    first = claim(store, "node-a", at)
    assert first.fire_count == 1  # claimed, not started
    second = claim(store, "node-b", at + timedelta(seconds=10))
    assert second.fire_count == 0
    assert second.skipped and "max_instances" in second.skipped[0][2]


def test_an_ended_jobs_id_can_be_used_again_at_once(store):
    at = now()
    one_shots(1, at - timedelta(seconds=1))
    claim(store, "node-a", at)  # claimed, running long perhaps: the row waits

    job = django_metronome.add_job(
        "tests.testapp.jobs:noop", "interval", hours=1, id="once-0", next_run_time=at
    )
    assert job.id == "once-0"
    row = DjangoJob.objects.get(pk="once-0")
    assert row.ended_at is None
    assert row.state["trigger"]["type"] == "interval"


def test_the_last_fire_of_an_ended_job_takes_its_row_along(store):
    at = now()
    one_shots(3, at - timedelta(seconds=1))
    batch = claim(store, "node-a", at)
    fires = [(c.job.id, fire) for c in batch.claimed for fire in c.fires]
    assert all(fire.ended for _, fire in fires)  # one fire each: each is its job's last
    ids = [fire.execution_id for _, fire in fires]
    ledger.start_fires("default", "node-a", ids, at)
    ledger.record_outcomes(
        "default",
        [
            Outcome(
                fire.execution_id,
                fire.run_time,
                ExecutionStatus.SUCCEEDED,
                at,
                at,
                job_id=job_id,
                ended=fire.ended,
            )
            for job_id, fire in fires[:2]
        ],
    )
    assert sorted(DjangoJob.all_rows.values_list("id", flat=True)) == [fires[2][0]]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite plans before it locks")
def test_on_sqlite_a_claim_planned_before_another_committed_records_nothing_twice(store):
    """SQLite reads and plans outside its write lock; the rows moved meanwhile are dropped."""
    at = now()
    one_shots(5, at - timedelta(seconds=1))

    def load_while_another_claims(rows):
        jobs = store.load_rows(rows)
        # Another process claims the same due rows between this one's read and write.
        inner = claim(store, "node-b", at)
        assert inner.fire_count == 5
        return jobs

    outer = claims.claim_due_fires(
        using="default",
        node="node-a",
        now=at,
        limit=100,
        declared=[],
        load=load_while_another_claims,
        plan=plan_once,
    )
    assert outer.fire_count == 0
    assert set(DjangoJobExecution.objects.values_list("node", flat=True)) == {"node-b"}
    assert DjangoJobExecution.objects.count() == 5


def test_claims_whose_answer_was_lost_are_handed_back_by_their_process(store):
    """A claim committed but never answered: its process does not hold the fires."""
    at = now()
    one_shots(3, at - timedelta(seconds=1))
    batch = claim(store, "node-a", at)
    ids = [fire.execution_id for claimed in batch.claimed for fire in claimed.fires]

    assert ledger.hand_back_unheld("default", "node-a", ids[:1], at) == 2
    rows = DjangoJobExecution.objects.in_bulk(ids)
    assert rows[ids[0]].status == ExecutionStatus.CLAIMED
    assert {rows[pk].status for pk in ids[1:]} == {ExecutionStatus.PENDING}
    assert all("answer to its claim was lost" in rows[pk].reason for pk in ids[1:])
    assert ledger.hand_back_unheld("default", "node-b", [], at) == 0  # not node-b's
