"""Expectations and incidents: opened once, resolved once, whoever evaluates."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, connections, transaction

from django_metronome.alerts import evaluate, expect, store_expectation
from django_metronome.loop import watch
from django_metronome.models import (
    DjangoJob,
    DjangoJobExecution,
    ExecutionStatus,
    Expectation,
    Incident,
    IncidentKind,
    SchedulerNode,
)
from django_metronome.signals import incident_opened, incident_resolved
from django_metronome.store import incidents

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STATES = {True: ExecutionStatus.SUCCEEDED, False: ExecutionStatus.FAILED}


def job(job_id: str, *, paused: bool = False) -> DjangoJob:
    return DjangoJob.objects.create(
        id=job_id,
        func_ref="tests.testapp.jobs:record_fire",
        state={},
        next_run_time=None if paused else NOW + timedelta(hours=1),
    )


def run(job_id: str, at: datetime, ok: bool) -> None:
    DjangoJobExecution.objects.create(
        job_id=job_id, run_time=at, status=STATES[ok], finished_at=at, node="n"
    )


def check(now: datetime = NOW, *, scheduler: bool = False) -> incidents.Changes:
    return incidents.evaluate("default", now, dead_after=30, expect_scheduler=scheduler)


@pytest.fixture
def heard():
    """The incident signals sent, as (event, job id, kind)."""
    events: list[tuple[str, str, str]] = []

    def opened(sender, incident, **kwargs):
        events.append(("opened", incident.job_id, incident.kind))

    def resolved(sender, incident, **kwargs):
        events.append(("resolved", incident.job_id, incident.kind))

    incident_opened.connect(opened)
    incident_resolved.connect(resolved)
    yield events
    incident_opened.disconnect(opened)
    incident_resolved.disconnect(resolved)


# --- expect(): refused at once, with what to write -------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"every": "1h"}, TypeError, "timedelta(hours=1)"),
        ({"every": 0}, ValueError, "positive duration"),
        ({"every": timedelta(seconds=-5)}, ValueError, "positive duration"),
        ({"every": float("nan")}, ValueError, "positive duration"),
        ({"max_failures": -1}, ValueError, "0 or more"),
        ({"max_failures": 1.5}, ValueError, "whole number"),
        ({"max_failures": True}, ValueError, "whole number"),
    ],
)
def test_expect_refuses_bad_values(kwargs, error, words, declared):
    pattern = words.replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(error, match=pattern):
        expect("report", **kwargs)
    with pytest.raises(error, match=pattern):
        store_expectation("report", **kwargs)
    assert not Expectation.objects.exists()
    assert declared.version == 0


def test_expect_refuses_an_empty_id():
    with pytest.raises(TypeError, match="non-empty string"):
        expect("", every=60)


def test_store_expectation_stores_updates_and_forgets():
    stored = store_expectation("report", every=timedelta(hours=1), max_failures=2)
    assert (stored.every, stored.max_failures) == (3600.0, 2)
    since = stored.since
    unchanged = store_expectation("report", every=3600, max_failures=2)
    assert unchanged.since == since  # the same deadline
    assert store_expectation("report", max_failures=0).every is None
    assert store_expectation("report") is None
    assert not Expectation.objects.exists()


@pytest.fixture
def declared(monkeypatch):
    """A fresh registry of expectations declared in code."""
    fresh = incidents.DeclaredExpectations()
    monkeypatch.setattr(incidents, "declared_expectations", fresh)
    return fresh


def test_expect_declares_and_a_scheduler_stores_at_its_first_heartbeat(declared):
    expect("report", every=timedelta(minutes=5))
    expect("sync", max_failures=1)
    assert not Expectation.objects.exists()  # declaring writes nothing
    ticker = watch.Watch("default", "p1")
    ticker.tick()
    assert sorted(Expectation.objects.values_list("job_id", "every", "max_failures")) == [
        ("report", 300.0, None),
        ("sync", None, 1),
    ]
    since = Expectation.objects.get(pk="report").since
    ticker.tick()  # nothing new declared: nothing written
    expect("report", every=300)  # the same again: stored, the deadline kept
    expect("sync")  # forgotten
    ticker.tick()
    assert list(Expectation.objects.values_list("job_id", flat=True)) == ["report"]
    assert Expectation.objects.get().since == since


# --- evaluation ------------------------------------------------------------------------


def test_failures_in_a_row_open_one_incident_and_a_success_resolves_it(heard):
    job("report")
    incidents.set_expectation("default", "report", NOW - timedelta(days=1), max_failures=1)
    run("report", NOW - timedelta(minutes=3), ok=True)
    run("report", NOW - timedelta(minutes=2), ok=False)
    assert not check()  # one failure in a row is allowed
    run("report", NOW - timedelta(minutes=1), ok=False)
    changes = check()
    assert [(i.job_id, i.kind) for i in changes.opened] == [("report", IncidentKind.FAILING)]
    assert changes.opened[0].detail == (
        "The last 2 runs failed; at most 1 failure in a row is expected."
    )
    assert not check()  # still broken: nothing new
    run("report", NOW - timedelta(seconds=90), ok=False)
    assert not check()
    assert Incident.objects.count() == 1
    run("report", NOW, ok=True)
    changes = check()
    assert [i.job_id for i in changes.resolved] == ["report"]
    incident = Incident.objects.get()
    assert incident.is_open is None and incident.resolved_at == NOW
    assert not check()


def test_missed_and_skipped_fires_do_not_break_a_run_of_failures():
    job("report")
    incidents.set_expectation("default", "report", NOW - timedelta(days=1), max_failures=0)
    run("report", NOW - timedelta(minutes=2), ok=False)
    DjangoJobExecution.objects.create(
        job_id="report", run_time=NOW - timedelta(minutes=1), status=ExecutionStatus.MISSED
    )
    assert [i.kind for i in check().opened] == [IncidentKind.FAILING]


def test_no_success_within_every_opens_an_overdue_incident():
    job("report")
    set_at = NOW - timedelta(hours=2)
    incidents.set_expectation("default", "report", set_at, every=timedelta(hours=1))
    # The first deadline counts from when the expectation was set.
    assert not check(set_at + timedelta(minutes=59))
    changes = check(set_at + timedelta(minutes=61))
    assert [i.kind for i in changes.opened] == [IncidentKind.OVERDUE]
    assert "since the expectation was set" in changes.opened[0].detail
    run("report", NOW - timedelta(minutes=5), ok=True)
    assert [i.kind for i in check().resolved] == [IncidentKind.OVERDUE]
    # An hour after that success, overdue again: a second incident, the first stays resolved.
    changes = check(NOW + timedelta(minutes=56))
    assert [i.kind for i in changes.opened] == [IncidentKind.OVERDUE]
    assert "No successful run since" in changes.opened[0].detail
    assert Incident.objects.filter(is_open=True).count() == 1
    assert Incident.objects.count() == 2


def test_a_paused_job_is_not_overdue():
    job("report", paused=True)
    incidents.set_expectation("default", "report", NOW - timedelta(days=1), every=60)
    assert not check()


def test_a_removed_job_or_a_forgotten_expectation_resolves_its_incidents():
    job("a")
    job("b")
    for job_id in ("a", "b"):
        incidents.set_expectation("default", job_id, NOW - timedelta(days=1), every=60)
    assert len(check().opened) == 2
    DjangoJob.objects.filter(pk="a").delete()
    store_expectation("b")
    assert sorted(i.job_id for i in check().resolved) == ["a", "b"]


def test_no_live_scheduler_is_an_incident_until_one_beats():
    changes = check(scheduler=True)
    assert [(i.job_id, i.kind) for i in changes.opened] == [("", IncidentKind.NO_SCHEDULER)]
    assert str(changes.opened[0]) == "no scheduler alive"
    SchedulerNode.objects.create(
        id="h:1:x", hostname="h", pid=1, started_at=NOW, last_heartbeat=NOW - timedelta(seconds=5)
    )
    assert [i.kind for i in check(scheduler=True).resolved] == [IncidentKind.NO_SCHEDULER]
    assert not check(NOW + timedelta(seconds=20), scheduler=True)
    # Silent beyond DEAD_AFTER: dead, a new incident.
    assert check(NOW + timedelta(seconds=40), scheduler=True).opened


def test_evaluate_sends_each_signal_once(heard, settings):
    settings.METRONOME = {"EXPECT_SCHEDULER": False}
    now = datetime.now(UTC)
    job("report")
    store_expectation("report", max_failures=0)
    run("report", now - timedelta(minutes=2), ok=False)
    evaluate()
    evaluate()
    run("report", now - timedelta(minutes=1), ok=True)
    evaluate()
    evaluate()
    assert heard == [
        ("opened", "report", IncidentKind.FAILING),
        ("resolved", "report", IncidentKind.FAILING),
    ]


# --- the database decides --------------------------------------------------------------


def test_the_database_refuses_a_second_open_incident_of_a_job_and_kind():
    Incident.objects.create(job_id="a", kind=IncidentKind.FAILING, opened_at=NOW)
    with pytest.raises(IntegrityError), transaction.atomic():
        Incident.objects.create(job_id="a", kind=IncidentKind.FAILING, opened_at=NOW)
    # Resolved ones do not count, and another kind is another incident.
    Incident.objects.create(job_id="a", kind=IncidentKind.FAILING, opened_at=NOW, is_open=None)
    Incident.objects.create(job_id="a", kind=IncidentKind.FAILING, opened_at=NOW, is_open=None)
    Incident.objects.create(job_id="a", kind=IncidentKind.OVERDUE, opened_at=NOW)
    assert incidents.open_incident("default", "a", IncidentKind.FAILING, NOW) is None


def test_only_one_resolver_succeeds():
    incident = Incident.objects.create(job_id="a", kind=IncidentKind.FAILING, opened_at=NOW)
    other = Incident.objects.get()
    assert incidents.resolve_incident("default", incident, NOW)
    assert not incidents.resolve_incident("default", other, NOW)


def test_one_turn_per_interval():
    assert incidents.take_turn("default", "p1", NOW, 60)
    assert not incidents.take_turn("default", "p2", NOW + timedelta(seconds=30), 60)
    assert not incidents.take_turn("default", "p1", NOW + timedelta(seconds=59), 60)
    assert incidents.take_turn("default", "p2", NOW + timedelta(seconds=60), 60)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor == "sqlite", reason="needs concurrent writers (row locks)")
def test_concurrent_turns_and_openings_let_one_through():
    """Eight threads on their own connections: one turn, one incident."""
    barrier = threading.Barrier(8)
    turns: list[bool] = []
    opened: list[bool] = []

    def contend(i: int) -> None:
        try:
            barrier.wait()
            turns.append(incidents.take_turn("default", f"p{i}", NOW, 60))
            barrier.wait()
            opened.append(
                incidents.open_incident("default", "a", IncidentKind.FAILING, NOW) is not None
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(turns) == [False] * 7 + [True]
    assert sorted(opened) == [False] * 7 + [True]
    assert Incident.objects.count() == 1


# --- manage.py metronome watch ---------------------------------------------------------


def test_the_watch_command_evaluates_notifies_and_lists(settings, heard, capsys):
    settings.METRONOME = {"EXPECT_SCHEDULER": True}
    call_command("metronome", "watch", "--json")
    data = json.loads(capsys.readouterr().out)
    assert len(data["opened"]) == 1 and data["resolved"] == []
    [incident] = data["open"]
    assert (incident["job_id"], incident["kind"]) == (None, "no_scheduler")
    assert heard == [("opened", "", IncidentKind.NO_SCHEDULER)]
    call_command("metronome", "watch")
    out = capsys.readouterr().out
    assert "Opened 0 incident(s), resolved 0." in out
    assert "no scheduler alive: No scheduler process has sent a heartbeat" in out


# --- the heart's share: the turn, then the announcer evaluates ---------------------------


@pytest.mark.django_db(transaction=True)
def test_one_watch_takes_the_turn_and_its_announcer_evaluates_and_notifies(settings):
    settings.METRONOME = {"WATCH_INTERVAL": 60, "EXPECT_SCHEDULER": True}
    threads: list[str] = []

    def opened(sender, incident, **kwargs):
        threads.append(threading.current_thread().name)

    incident_opened.connect(opened)
    try:
        first, second = watch.Watch("default", "p1"), watch.Watch("default", "p2")
        assert not first.tick()  # not before half an interval after the start
        first._tried_at = second._tried_at = -float("inf")
        assert first.tick()
        assert not second.tick()  # the turn is taken for WATCH_INTERVAL
        assert watch.announcer.flush(10)
    finally:
        incident_opened.disconnect(opened)
    assert threads == ["metronome-announcer"]
    assert Incident.objects.get().kind == IncidentKind.NO_SCHEDULER
