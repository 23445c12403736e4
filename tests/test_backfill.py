"""
Backfill: every fire of a job in a past range, once, marked backfilled, run oldest first.

The API and the command write pending ledger rows; the pending claim (by hand,
with the clock as an argument) runs them; two real processes backfilling the
same range at once write each fire once (PostgreSQL).
"""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

import django_metronome
from django_metronome.models import DjangoJob, DjangoJobExecution, ExecutionStatus, JobChange
from django_metronome.store import pending
from django_metronome.store.backfill import MAX_BACKFILL, BackfillRefused
from tests.claiming import started_store

pytestmark = pytest.mark.django_db(transaction=True)


def minutely(job_id: str = "minutely", **options) -> datetime:
    """A job firing each minute since two days ago (its next run time in the future)."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=2)
    django_metronome.add_job(
        "tests.testapp.jobs:noop",
        "interval",
        minutes=1,
        start_date=start,
        id=job_id,
        **options,
    )
    return start


def ledger(job_id: str = "minutely"):
    return list(
        DjangoJobExecution.objects.filter(job_id=job_id)
        .order_by("run_time")
        .values_list("run_time", "status", "backfilled")
    )


def backfills(job_id: str = "minutely") -> list[tuple[str, str, dict]]:
    """The job's audit trail of backfills: (origin, actor, what was backfilled), oldest first."""
    return list(
        JobChange.objects.filter(job_id=job_id, action="backfilled")
        .order_by("at", "pk")
        .values_list("origin", "actor", "after")
    )


def test_a_backfill_writes_each_fire_once_marked_and_pending():
    start = minutely()
    result = django_metronome.backfill("minutely", start, start + timedelta(minutes=4))
    expected = [start + timedelta(minutes=n) for n in range(5)]
    assert result.fires == expected and result.written == expected and result.recorded == []
    assert ledger() == [(fire, ExecutionStatus.PENDING, True) for fire in expected]
    # Again, over a wider range: the fires already in the ledger are not written twice.
    again = django_metronome.backfill("minutely", start, start + timedelta(minutes=6))
    assert again.recorded == expected
    assert again.written == [start + timedelta(minutes=5), start + timedelta(minutes=6)]
    assert len(ledger()) == 7
    # Each backfill that wrote fires is in the job's audit trail, by this process (the API).
    trail = backfills()
    assert [(origin, after["fires"]) for origin, _, after in trail] == [("api", 5), ("api", 2)]
    assert trail[0][2]["from"] == start.isoformat()


def test_a_dry_run_writes_nothing_and_the_limits_are_refused_clearly():
    start = minutely()
    dry = django_metronome.backfill("minutely", start, start + timedelta(minutes=2), dry_run=True)
    assert len(dry.fires) == 3 and dry.written == [] and ledger() == []
    with pytest.raises(BackfillRefused, match=f"More than {MAX_BACKFILL} fires"):
        django_metronome.backfill("minutely", start, start + timedelta(days=1))
    with pytest.raises(BackfillRefused, match="ends in the future"):
        django_metronome.backfill("minutely", start, datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(BackfillRefused, match="swap --from and --to"):
        django_metronome.backfill("minutely", start, start - timedelta(minutes=1))
    assert ledger() == []


def test_backfilled_fires_wait_their_turn_oldest_first():
    start = minutely()
    django_metronome.backfill("minutely", start, start + timedelta(minutes=2))
    now = datetime.now(UTC)

    def take():
        return pending.claim_manual_fires(
            using="default",
            node="node-a",
            now=now,
            limit=10,
            declared=[],
            load=started_store().load_rows,
        )

    batch = take()
    assert [fire.run_time for claimed in batch.claimed for fire in claimed.fires] == [start]
    assert batch.skipped == []  # max_instances=1: the others wait, they are not skipped
    statuses = [status for _, status, _ in ledger()]
    assert statuses == [ExecutionStatus.CLAIMED, ExecutionStatus.PENDING, ExecutionStatus.PENDING]


def test_the_command_lists_the_fires_and_refuses_too_many():
    start = minutely()
    out = io.StringIO()
    call_command(
        "metronome",
        "backfill",
        "minutely",
        "--from",
        start.isoformat(),
        "--to",
        (start + timedelta(minutes=1)).isoformat(),
        "--dry-run",
        stdout=out,
    )
    text = out.getvalue()
    assert "Dry run: 2 of these 2 fires of job 'minutely' would run." in text
    assert ledger() == [] and backfills() == []  # a dry run changes nothing, not even the trail
    call_command(
        "metronome",
        "backfill",
        "minutely",
        "--from",
        start.isoformat(),
        "--to",
        (start + timedelta(minutes=1)).isoformat(),
        stdout=out,
    )
    assert "2 fire(s) wait for a scheduler process" in out.getvalue()
    [(origin, actor, after)] = backfills()
    assert origin == "cli" and actor and after["fires"] == 2
    with pytest.raises(CommandError, match="backfill a shorter range"):
        call_command(
            "metronome",
            "backfill",
            "minutely",
            "--from",
            start.isoformat(),
            "--to",
            (start + timedelta(days=1)).isoformat(),
            stdout=out,
        )


@pytest.mark.slow
def test_two_processes_backfilling_at_once_write_each_fire_once(processes):
    if connection.vendor != "postgresql":
        pytest.skip("two real processes at once: PostgreSQL (the guarantee is the unique key)")
    start = minutely()
    end = start + timedelta(minutes=119)
    command = [
        "-m",
        "django",
        "metronome",
        "backfill",
        "minutely",
        "--from",
        start.isoformat(),
        "--to",
        end.isoformat(),
        "--settings=tests.settings_procs",
    ]
    first, second = processes.start(command), processes.start(command)
    assert first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0, processes.logs()
    rows = ledger()
    assert len(rows) == 120 == len({run_time for run_time, _, _ in rows})
    assert all(backfilled for _, _, backfilled in rows)
    assert DjangoJob.objects.filter(id="minutely").exists()
    print(processes.logs(), file=sys.stderr)


# --- the admin's action: a range, the list of its fires, then the backfill -----------------

JOBS_URL = "/admin/django_metronome/djangojob/"


def test_the_admin_lists_the_fires_before_it_backfills(admin_client):
    start = minutely()
    local = start.replace(tzinfo=None)  # read in the job's zone, UTC here
    form = {
        "action": "backfill",
        "_selected_action": ["minutely"],
        "index": "0",
        "start": local.isoformat(sep=" "),
        "end": (local + timedelta(minutes=2)).isoformat(sep=" "),
    }
    page = admin_client.post(JOBS_URL, form)  # the range form, nothing listed yet
    assert page.status_code == 200 and "backfill_step" in page.content.decode()
    listed = admin_client.post(JOBS_URL, {**form, "backfill_step": "preview"})
    body = listed.content.decode()
    assert "3 fires will run" in body and ledger() == []
    # Applying a range other than the one listed lists it again, writing nothing.
    changed = {**form, "end": (local + timedelta(minutes=3)).isoformat(sep=" ")}
    relisted = admin_client.post(
        JOBS_URL,
        {**changed, "backfill_step": "apply", "listed_range": listed.context["listed_range"]},
    )
    assert "4 fires will run" in relisted.content.decode() and ledger() == []
    done = admin_client.post(
        JOBS_URL,
        {**form, "backfill_step": "apply", "listed_range": listed.context["listed_range"]},
        follow=True,
    )
    assert any("3 fires wait for a scheduler process" in str(m) for m in done.context["messages"])
    assert [status for _, status, _ in ledger()] == [ExecutionStatus.PENDING] * 3
    [(origin, actor, after)] = backfills()
    assert (origin, after["fires"]) == ("admin", 3)
    assert actor == done.context["user"].get_username()


def test_the_admin_refuses_a_range_beyond_the_maximum(admin_client):
    start = minutely()
    local = start.replace(tzinfo=None)  # read in the job's zone, UTC here
    response = admin_client.post(
        JOBS_URL,
        {
            "action": "backfill",
            "_selected_action": ["minutely"],
            "index": "0",
            "start": local.isoformat(sep=" "),
            "end": (local + timedelta(days=1)).isoformat(sep=" "),
            "backfill_step": "preview",
        },
    )
    assert "backfill a shorter range" in response.content.decode()
    assert ledger() == []


@pytest.mark.parametrize(
    ("overlap", "claimed", "skipped"),
    [("buffer_all", 1, 0), ("skip", 1, 2), ("allow_all", 3, 0)],
)
def test_a_backfill_has_its_own_overlap_policy(overlap, claimed, skipped):
    start = minutely()
    django_metronome.backfill("minutely", start, start + timedelta(minutes=2), overlap=overlap)
    batch = pending.claim_manual_fires(
        using="default",
        node="node-a",
        now=datetime.now(UTC),
        limit=10,
        declared=[],
        load=started_store().load_rows,
    )
    assert sum(len(c.fires) for c in batch.claimed) == claimed
    assert len(batch.skipped) == skipped
    statuses = [status for _, status, _ in ledger()]
    assert statuses.count(ExecutionStatus.SKIPPED) == skipped
    assert statuses.count(ExecutionStatus.PENDING) == 3 - claimed - skipped


def test_an_unknown_backfill_overlap_is_refused():
    start = minutely()
    with pytest.raises(BackfillRefused, match="Unknown overlap policy 'replace'"):
        django_metronome.backfill("minutely", start, start, overlap="replace")
    with pytest.raises(CommandError):
        call_command(
            "metronome",
            "backfill",
            "minutely",
            "--from",
            start.isoformat(),
            "--to",
            start.isoformat(),
            "--overlap",
            "replace",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )


def test_a_backfilled_run_says_so_on_its_page(admin_client):
    start = minutely()
    django_metronome.backfill("minutely", start, start)
    run = DjangoJobExecution.objects.get(job_id="minutely")
    body = admin_client.get(f"/admin/django_metronome/djangojobexecution/{run.pk}/change/")
    text = body.content.decode()
    field = text[text.index("field-backfilled_text") :]
    assert field[: field.index("</div>", field.index("readonly"))].rstrip().endswith("yes")
    # Not jittered: its nominal time is its scheduled time.
    nominal = text[text.index("field-nominal_time_text") :]
    assert start.strftime("%Y-%m-%d %H:%M") in nominal[: nominal.index("</div>", 200)]
