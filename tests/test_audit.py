"""
The audit trail: every change to a job, with when, who, from where and what changed.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_metronome.api import add_job, pause_job, record_change
from django_metronome.models import DjangoJob, JobChange
from django_metronome.schedulers import BackgroundScheduler
from django_metronome.store import audit, retention
from django_metronome.store.audit import os_user, process_actor

pytestmark = pytest.mark.django_db(transaction=True)


def metronome(*args: str) -> str:
    out = io.StringIO()
    call_command("metronome", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def history(job_id: str) -> list[JobChange]:
    return list(JobChange.objects.filter(job_id=job_id).order_by("at", "id"))


def noop() -> None:
    pass


@pytest.fixture
def scheduler(settings):
    settings.METRONOME = {"POLL_INTERVAL": 0.05, "MIN_INTERVAL": 0.05, "SHUTDOWN_TIMEOUT": 2}
    made = []

    def make() -> BackgroundScheduler:
        scheduler = BackgroundScheduler(timezone=UTC)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        if scheduler.running:
            scheduler.shutdown(wait=True)


# --- record_change ---------------------------------------------------------------------


def test_only_what_changed_is_kept():
    change = audit.record_change(
        "job",
        "modified",
        before={"max_instances": 1, "name": "a", "coalesce": True},
        after={"max_instances": 3, "name": "a", "coalesce": True},
    )
    assert (change.before, change.after) == ({"max_instances": 1}, {"max_instances": 3})
    assert (change.origin, change.actor) == ("code", process_actor())


def test_a_modification_that_changed_nothing_is_not_recorded():
    assert audit.record_change("job", "modified", before={"a": 1}, after={"a": 1}) is None
    assert not JobChange.objects.exists()


def test_an_unknown_action_or_origin_is_refused():
    with pytest.raises(ValueError, match="'renamed' is not a valid ChangeAction"):
        audit.record_change("job", "renamed")
    with pytest.raises(ValueError, match="'slack' is not a valid ChangeOrigin"):
        audit.record_change("job", "paused", origin="slack")


def test_the_public_record_change_is_the_apis_by_default():
    change = record_change("job", "backfilled", after={"fires": 3}, note="from 1 to 3 May")
    assert (change.action, change.origin, change.actor) == ("backfilled", "api", process_actor())
    assert change.after == {"fires": 3}


def test_acting_names_who_and_from_where():
    with audit.acting("admin", "alice"):
        change = audit.record_change("job", "run_now")
    assert (change.origin, change.actor) == ("admin", "alice")
    assert audit.current_actor() == ("code", process_actor())


# --- every change to a job --------------------------------------------------------------


def test_added_modified_paused_resumed_removed_by_the_code(scheduler):
    running = scheduler()
    running.start()
    running.add_job("tests.testapp.jobs:noop", "interval", hours=1, id="j", name="J")
    running.modify_job("j", max_instances=3)
    running.pause_job("j")
    running.resume_job("j")
    running.remove_job("j")
    changes = history("j")
    assert [c.action for c in changes] == ["added", "modified", "paused", "resumed", "removed"]
    assert {(c.origin, c.actor) for c in changes} == {("code", process_actor())}
    added, modified, paused = changes[:3]
    assert added.after["func_ref"] == "tests.testapp.jobs:noop"
    assert added.after["trigger"]["type"] == "interval"
    assert (modified.before, modified.after) == ({"max_instances": 1}, {"max_instances": 3})
    assert paused.after == {"next_run_time": None}
    assert changes[-1].before["name"] == "J"
    assert changes[-1].job_name == "J"


def test_declared_in_code_is_recorded_when_it_adds_or_changes_the_row(scheduler):
    first = scheduler()
    first.add_job(noop, "interval", hours=1, id="declared", replace_existing=True)
    first.start()
    first.shutdown(wait=True)
    again = scheduler()
    # Unchanged: nothing is recorded.
    again.add_job(noop, "interval", hours=1, id="declared", replace_existing=True)
    again.start()
    again.shutdown(wait=True)
    changed = scheduler()
    changed.add_job(noop, "interval", hours=2, id="declared", replace_existing=True)
    changed.start()
    changes = history("declared")
    assert [c.action for c in changes] == ["declared", "declared"]
    assert {(c.origin, c.actor) for c in changes} == {("code", process_actor())}
    assert changes[0].before is None
    assert changes[1].before["trigger"]["interval"] != changes[1].after["trigger"]["interval"]
    # Only what changed: the trigger, and the next run time it moved.
    assert set(changes[1].after) == {"trigger", "next_run_time"}


def test_added_through_the_api_and_paused_with_a_note(scheduler):
    add_job("tests.testapp.jobs:noop", "interval", hours=1, id="api-job")
    pause_job("api-job", note="Supplier outage", by="ops-bot")
    added, paused = history("api-job")
    assert (added.action, added.origin) == ("added", "api")
    assert (paused.action, paused.origin, paused.actor, paused.note) == (
        "paused",
        "api",
        "ops-bot",
        "Supplier outage",
    )


def test_run_now_and_quarantine():
    add_job("tests.testapp.jobs:noop", "interval", hours=1, id="q")
    job = DjangoJob.objects.get(pk="q")
    run = job.run_now(requested_by="alice")
    assert DjangoJob.objects.quarantine("q", "Its trigger failed: boom")
    assert not DjangoJob.objects.quarantine("q", "again")  # recorded once
    changes = history("q")
    assert [c.action for c in changes] == ["added", "run_now", "quarantined"]
    assert (changes[1].actor, changes[1].after) == ("alice", {"execution": run.pk})
    assert (changes[2].origin, changes[2].note) == ("scheduler", "Its trigger failed: boom")


def test_the_command_line_records_its_os_user():
    add_job("tests.testapp.jobs:noop", "interval", hours=1, id="cli")
    metronome("pause", "cli", "--note", "maintenance")
    metronome("resume", "cli")
    metronome("run", "cli")
    metronome("remove", "cli", "--yes")
    changes = history("cli")[1:]
    assert [(c.action, c.origin, c.actor) for c in changes] == [
        ("paused", "cli", os_user()),
        ("resumed", "cli", os_user()),
        ("run_now", "cli", os_user()),
        ("removed", "cli", os_user()),
    ]
    assert changes[0].note == "maintenance"


# --- manage.py metronome audit ----------------------------------------------------------


def test_metronome_audit_shows_the_history_newest_first_even_after_removal():
    add_job("tests.testapp.jobs:noop", "interval", hours=1, id="shown")
    metronome("pause", "shown", "--note", "outage")
    metronome("remove", "shown", "--yes")
    text = metronome("audit", "shown")
    lines = text.splitlines()
    assert lines[0] == "Changes of job 'shown', newest first:"
    body = lines[2:]  # after the header row
    assert "removed" in body[0] and "command line" in body[0]
    assert "paused" in body[1] and body[1].rstrip().endswith("outage")
    assert "added" in body[2] and "API" in body[2]

    data = json.loads(metronome("audit", "shown", "--json"))
    assert [row["action"] for row in data] == ["removed", "paused", "added"]
    assert data[1]["note"] == "outage"
    assert data[1]["actor"] == os_user()
    assert len(json.loads(metronome("audit", "shown", "--json", "--limit", "1"))) == 1


def test_metronome_audit_of_an_unknown_job_says_so():
    with pytest.raises(CommandError, match="There is no job with the id 'nothing'"):
        metronome("audit", "nothing")


# --- retention ----------------------------------------------------------------------------


def test_retention_prunes_old_changes_with_the_runs():
    now = datetime.now(UTC)
    old = audit.record_change("job", "paused", at=now - timedelta(days=40))
    recent = audit.record_change("job", "resumed", at=now - timedelta(days=1))
    retention.prune("default", now, max_age=timedelta(days=30), max_per_job=None)
    assert list(JobChange.objects.values_list("pk", flat=True)) == [recent.pk]
    assert old.pk != recent.pk


def test_metronome_prune_by_age_prunes_old_changes_too():
    old = audit.record_change("job", "paused", at=datetime.now(UTC) - timedelta(days=40))
    audit.record_change("job", "resumed")
    metronome("prune", "--older-than", "30d")
    assert not JobChange.objects.filter(pk=old.pk).exists()
    assert JobChange.objects.count() == 1


def test_an_edit_made_in_the_database_is_recorded_when_the_declaration_undoes_it(scheduler):
    first = scheduler()
    first.add_job(noop, "interval", hours=1, id="edited", name="Nightly", replace_existing=True)
    first.start()
    first.shutdown(wait=True)
    # Someone edits the row with SQL (or a Django shell): no verb of ours sees it.
    DjangoJob.objects.filter(pk="edited").update(name="Nightly (hand-edited)")
    again = scheduler()
    again.add_job(noop, "interval", hours=1, id="edited", name="Nightly", replace_existing=True)
    again.start()
    changes = history("edited")
    assert [(c.action, c.origin) for c in changes] == [
        ("declared", "code"),
        ("modified", "database"),
        ("declared", "code"),
    ]
    edit = changes[1]
    assert (edit.before, edit.after, edit.actor) == (
        {"name": "Nightly"},
        {"name": "Nightly (hand-edited)"},
        "",
    )
    assert changes[2].after == {"name": "Nightly"}  # the declaration put it back


def test_a_change_made_through_the_api_is_not_taken_for_a_database_edit(scheduler):
    first = scheduler()
    first.add_job(noop, "interval", hours=1, id="kept", replace_existing=True)
    first.start()
    first.modify_job("kept", max_instances=2)
    first.shutdown(wait=True)
    again = scheduler()
    again.add_job(noop, "interval", hours=1, id="kept", replace_existing=True)
    again.start()
    assert [c.action for c in history("kept")] == ["declared", "modified", "declared"]
