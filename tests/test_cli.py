"""
``manage.py metronome``: every subcommand, as text and as JSON, its errors and exit codes.

Most tests call the command in the test process (``call_command``); a few run
it as a real subprocess on the test database, to see the exit codes a
container's liveness probe sees.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.cron import CronTrigger
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection

from django_metronome.cli import arguments, health, output
from django_metronome.management.commands.metronome import Command as MetronomeCommand
from django_metronome.models import (
    DjangoJob,
    DjangoJobExecution,
    ExecutionStatus,
    JobSource,
    SchedulerNode,
)
from django_metronome.schedulers import BackgroundScheduler
from django_metronome.store import retention
from django_metronome.store.db import utcnow
from django_metronome.time.text import duration
from tests.testapp import jobs

ROOT = Path(__file__).resolve().parent.parent
BERLIN = ZoneInfo("Europe/Berlin")
SEOUL = ZoneInfo("Asia/Seoul")

#: A daily 02:30 in Berlin from 29 March 2031: its next fires cross the DST change of the
#: 30th (02:30 does not exist that night, so it fires at 03:00).
DAILY_0230 = CronTrigger(hour=2, minute=30, start_date=datetime(2031, 3, 29), timezone=BERLIN)
MORNING_SEOUL = CronTrigger(hour=8, start_date=datetime(2031, 1, 1), timezone=SEOUL)
#: The clock of the tests that store jobs (``add``): it stands still before the schedules
#: above start and before the times the tests pause to, whatever the day the tests run.
CLOCK = datetime(2030, 11, 30, 12, tzinfo=UTC)

JOB_KEYS = {
    "id",
    "name",
    "func_ref",
    "source",
    "schedule",
    "time_zone",
    "next_run_time",
    "state",
    "paused",
    "paused_until",
    "paused_at",
    "paused_by",
    "pause_note",
    "orphaned_at",
    "quarantined_at",
    "quarantine_reason",
    "last_run",
}
RUN_KEYS = {
    "id",
    "job_id",
    "job_name",
    "run_time",
    "status",
    "manual",
    "node",
    "claimed_at",
    "started_at",
    "finished_at",
    "duration_seconds",
    "lateness_seconds",
    "reason",
    "exception",
    "traceback",
}


def metronome(*args: str) -> str:
    """Run ``manage.py metronome ARGS`` in this process; return what it printed."""
    out, err = io.StringIO(), io.StringIO()
    call_command("metronome", *args, stdout=out, stderr=err)
    return out.getvalue()


def metronome_json(*args: str):
    return json.loads(metronome(*args, "--json"))


def fails(*args: str, code: int = 1) -> str:
    """Run it expecting a CommandError with exit code ``code``; return the message."""
    with pytest.raises(CommandError) as caught:
        metronome(*args)
    assert caught.value.returncode == code, str(caught.value)
    return str(caught.value)


def failing_json(*args: str) -> str:
    """The JSON a failing subcommand printed before its CommandError."""
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("metronome", *args, "--json", stdout=out)
    return out.getvalue()


def columns(line: str) -> list[str]:
    """The cells of a table line (cells are two or more spaces apart)."""
    return re.split(r"\s{2,}", line.strip())


@pytest.fixture
def add(store, make_job):
    """Store a job, as a scheduler would; return its row. The test runs at ``CLOCK``."""

    def add(job_id, trigger=None, func=jobs.noop, **options):
        options.setdefault("next_run_time", datetime(2031, 3, 29, 2, 30, tzinfo=BERLIN))
        store.add_job(make_job(func, id=job_id, trigger=trigger or DAILY_0230, **options))
        return DjangoJob.objects.get(pk=job_id)

    with time_machine.travel(CLOCK, tick=False):
        yield add


def ledger_row(job_id, run_time, status=ExecutionStatus.SUCCEEDED, **fields):
    return DjangoJobExecution.objects.create(
        job_id=job_id, run_time=run_time, status=status, node="host:1:abc", **fields
    )


def node(identity="host:1:abc", heartbeat_age=0.0, stopped=False):
    now = utcnow()
    return SchedulerNode.objects.create(
        id=identity,
        hostname="host",
        pid=1,
        started_at=now - timedelta(hours=1),
        last_heartbeat=now - timedelta(seconds=heartbeat_age),
        stopped_at=now if stopped else None,
    )


# --- argument types -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("3600s", 3600), ("1d12h", 129600)],
)
def test_durations(text, seconds):
    assert arguments.duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["30", "3x", "d", "1.5h", "-1d", "1d 2h", ""])
def test_bad_durations_are_refused(text):
    with pytest.raises(Exception, match="is not a duration: write a whole number and a unit"):
        arguments.duration(text)


def test_a_naive_time_is_read_in_the_zone_and_a_gap_time_comes_out_real():
    assert (
        arguments.aware(datetime(2031, 12, 1, 9), SEOUL).isoformat() == "2031-12-01T09:00:00+09:00"
    )
    # 02:30 does not exist in Berlin on 30 March 2031: it is an hour later in summer time.
    assert arguments.aware(datetime(2031, 3, 30, 2, 30), BERLIN).isoformat() == (
        "2031-03-30T03:30:00+02:00"
    )
    with_offset = datetime(2031, 12, 1, 9, tzinfo=UTC)
    assert arguments.aware(with_offset, SEOUL) is with_offset


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (0.0004, "< 1 ms"),
        (0.012, "12 ms"),
        (3.25, "3.25 s"),
        (30, "30 s"),
        (125, "2 min 5 s"),
        (3780, "1 h 3 min"),
        (7200, "2 h"),
        (2 * 86400 + 3 * 3600, "2 d 3 h"),
    ],
)
def test_spans_for_people(seconds, text):
    assert duration(seconds) == text


def test_tables_align_wide_characters():
    text = output.table(["ID", "NAME"], [["時計", "a"], ["x", "multi\nline"]])
    assert text.splitlines() == ["ID    NAME", "時計  a", "x     multi line"]


# --- list -------------------------------------------------------------------------------------


@pytest.fixture
def several(add):
    """Jobs in each state, with some history."""
    add(
        "seoul",
        trigger=MORNING_SEOUL,
        name="Morning mail",
        next_run_time=datetime(2031, 1, 1, 8, tzinfo=SEOUL),
    )
    add("nightly", name="Nightly report")
    add("held", name="Held", next_run_time=None)
    add("later", name="Later").pause(datetime(2031, 12, 24, 18, tzinfo=BERLIN))
    add("broken", name="Broken")
    DjangoJob.objects.quarantine("broken", "ImportError: No module named 'gone'")
    add("ghost", name="Ghost", next_run_time=None)
    DjangoJob.objects.filter(pk="ghost").update(
        source=JobSource.CODE, orphaned_at=datetime(2031, 1, 2, tzinfo=UTC)
    )
    ledger_row("seoul", datetime(2030, 12, 31, 23, tzinfo=UTC), ExecutionStatus.FAILED)
    ledger_row("seoul", datetime(2030, 12, 30, 23, tzinfo=UTC))
    ledger_row("nightly", datetime(2031, 3, 28, 1, 30, tzinfo=UTC))


def test_list_shows_a_table_with_times_in_each_jobs_zone(several):
    lines = metronome("list").splitlines()
    assert columns(lines[0]) == [
        "ID",
        "NAME",
        "SCHEDULE",
        "TIME ZONE",
        "NEXT RUN",
        "STATE",
        "LAST OUTCOME",
    ]
    rows = {columns(line)[0]: columns(line) for line in lines[1:]}
    # Earliest next run first, paused jobs last.
    assert [columns(line)[0] for line in lines[1:]] == [
        "seoul",
        "broken",
        "nightly",
        "ghost",
        "held",
        "later",
    ]
    assert rows["seoul"] == [
        "seoul",
        "Morning mail",
        "At 08:00 every day (Asia/Seoul)",
        "Asia/Seoul",
        "2031-01-01 08:00:00+09:00",
        "active",
        "failed",
    ]
    assert rows["nightly"][4:] == ["2031-03-29 02:30:00+01:00", "active", "succeeded"]
    assert rows["held"][4:] == ["-", "paused", "-"]
    assert rows["later"][4:] == ["-", "paused until 2031-12-24 18:00:00+01:00", "-"]
    assert rows["broken"][5] == "quarantined"
    assert rows["ghost"][5] == "orphaned, paused"


def test_list_as_json(several):
    data = metronome_json("list")
    assert set(data) == {"jobs"}
    found = {job["id"]: job for job in data["jobs"]}
    assert all(set(job) == JOB_KEYS for job in data["jobs"])
    assert found["seoul"] == {
        "id": "seoul",
        "name": "Morning mail",
        "func_ref": "tests.testapp.jobs:noop",
        "source": "runtime",
        "schedule": "At 08:00 every day (Asia/Seoul)",
        "time_zone": "Asia/Seoul",
        "next_run_time": "2031-01-01T08:00:00+09:00",
        "state": "active",
        "paused": False,
        "paused_until": None,
        "paused_at": None,
        "paused_by": None,
        "pause_note": None,
        "orphaned_at": None,
        "quarantined_at": None,
        "quarantine_reason": "",
        "last_run": {
            "id": DjangoJobExecution.objects.get(job_id="seoul", status="failed").id,
            "run_time": "2031-01-01T08:00:00+09:00",
            "status": "failed",
        },
    }
    assert found["later"]["state"] == "paused"
    assert found["later"]["paused_until"] == "2031-12-24T18:00:00+01:00"
    assert found["broken"]["state"] == "quarantined"
    assert found["broken"]["quarantine_reason"] == "ImportError: No module named 'gone'"
    assert found["ghost"]["state"] == "orphaned"
    assert found["ghost"]["orphaned_at"] == "2031-01-02T01:00:00+01:00"
    assert found["held"]["last_run"] is None


@pytest.mark.parametrize(
    ("options", "ids"),
    [
        (["--paused"], ["ghost", "held", "later"]),
        (["--orphaned"], ["ghost"]),
        (["--quarantined"], ["broken"]),
        (["--search", "REPORT"], ["nightly"]),  # the name, in any case
        (["--search", "seo"], ["seoul"]),  # the id
        (["--search", "jobs:noop"], ["seoul", "broken", "nightly", "ghost", "held", "later"]),
        (["--paused", "--search", "held"], ["held"]),
    ],
)
def test_list_filters(several, options, ids):
    assert [job["id"] for job in metronome_json("list", *options)["jobs"]] == ids


def test_list_says_when_there_is_nothing(db):
    assert metronome("list") == "No jobs.\n"
    assert metronome("list", "--paused") == "No job matches.\n"
    assert metronome_json("list") == {"jobs": []}


def test_common_options_go_before_or_after_the_subcommand(several):
    before = json.loads(metronome("--json", "--database", "default", "list"))
    after = json.loads(metronome("list", "--json", "--database", "default", "-v", "0"))
    assert before == after


def test_unknown_database_is_a_usage_error(db):
    message = fails("list", "--database", "nope", code=2)
    assert (
        message == "There is no database 'nope': use one of the aliases in DATABASES ('default')."
    )


# --- show -----------------------------------------------------------------------------------


def test_show_tells_everything_about_a_job(add):
    add("nightly", name="Nightly report")
    ledger_row(
        "nightly",
        datetime(2031, 3, 28, 1, 30, tzinfo=UTC),
        ExecutionStatus.FAILED,
        duration=timedelta(seconds=2),
        lateness=timedelta(milliseconds=15),
        exception="RuntimeError: boom\nmore",
    )
    lines = metronome("show", "nightly", "--count", "3").splitlines()
    assert lines[:8] == [
        "Job        nightly",
        "Name       Nightly report",
        "Function   tests.testapp.jobs:noop",
        "Source     added at run time",
        "Schedule   At 02:30 every day (Europe/Berlin)",
        "Time zone  Europe/Berlin",
        "State      active",
        "Next run   2031-03-29 02:30:00+01:00",
    ]
    at = lines.index("Next 3 fire times (Europe/Berlin):")
    assert lines[at + 1 : at + 4] == [
        "  2031-03-29 02:30:00+01:00",
        "  2031-03-30 03:00:00+02:00",  # no 02:30 that night: the first instant after
        "  2031-03-31 02:30:00+02:00",
    ]
    at = lines.index("Stored state (JSON):")
    assert lines[at + 1] == "  {"
    assert '    "timezone": "Europe/Berlin",' in lines
    at = lines.index("Last runs, newest first (times in Europe/Berlin):")
    assert columns(lines[at + 1])[:4] == ["ID", "JOB", "RUN TIME", "STATUS"]
    assert columns(lines[at + 2])[1:] == [
        "nightly",
        "2031-03-28 02:30:00+01:00",
        "failed",
        "2 s",
        "15 ms",
        "host:1:abc",
        "RuntimeError: boom",
    ]


def test_show_as_json(add):
    add("nightly", name="Nightly report")
    for day in (26, 27, 28):
        ledger_row("nightly", datetime(2031, 3, day, 1, 30, tzinfo=UTC))
    data = metronome_json("show", "nightly", "--count", "2", "--runs", "2")
    assert set(data) == JOB_KEYS | {
        "created_at",
        "updated_at",
        "stored_state",
        "next_fire_times",
        "preview_error",
        "recent_runs",
    }
    assert data["next_fire_times"] == ["2031-03-29T02:30:00+01:00", "2031-03-30T03:00:00+02:00"]
    assert data["preview_error"] is None
    assert data["stored_state"]["trigger"]["type"] == "cron"
    assert [run["run_time"] for run in data["recent_runs"]] == [
        "2031-03-28T02:30:00+01:00",
        "2031-03-27T02:30:00+01:00",
    ]
    assert all(set(run) == RUN_KEYS for run in data["recent_runs"])
    assert data["last_run"]["run_time"] == "2031-03-28T02:30:00+01:00"
    assert datetime.fromisoformat(data["created_at"]).utcoffset() is not None


def test_show_previews_a_job_paused_until_from_the_end_of_its_pause(add):
    add("nightly").pause(datetime(2031, 4, 10, 12, tzinfo=BERLIN))
    output = metronome("show", "nightly", "--count", "1")
    assert "State      paused until 2031-04-10 12:00:00+02:00" in output
    assert (
        "Next 1 fire times, after the pause ends (Europe/Berlin):\n  2031-04-11 02:30:00+02:00"
        in (output)
    )


def test_show_a_quarantined_job_with_an_unreadable_schedule(db):
    DjangoJob.objects.create(
        id="lunar",
        func_ref="tests.testapp.jobs:noop",
        state={"version": 1, "trigger": {"type": "lunar"}, "timezone": "Europe/Berlin"},
    )
    DjangoJob.objects.quarantine("lunar", "Unknown trigger type 'lunar'.")
    output = metronome("show", "lunar")
    assert re.search(r"^Schedule +\(a schedule this release cannot read\)$", output, re.M)
    assert re.search(r"^Quarantined  since .*: Unknown trigger type 'lunar'\.$", output, re.M)
    assert "Next fire times: cannot be computed (" in output
    data = metronome_json("show", "lunar")
    assert data["next_fire_times"] == []
    assert data["preview_error"]
    assert data["state"] == "quarantined"


def test_unknown_job_id_says_what_to_do(add):
    add("nightly-report")
    assert fails("show", "nightly") == (
        "There is no job with the id 'nightly'. Did you mean 'nightly-report'? "
        "`manage.py metronome list` shows the jobs."
    )
    for subcommand in ("run", "pause", "resume", "remove"):
        assert fails(subcommand, "nope").startswith("There is no job with the id 'nope'. `manage")


def test_bad_preview_count_is_refused(add):
    add("nightly")
    message = fails("show", "nightly", "--count", "5000")
    assert message == "Error: argument --count: '5000' is not a whole number from 0 to 1000."


# --- run ------------------------------------------------------------------------------------


def test_run_asks_through_the_database_and_returns_at_once(add):
    job = add("nightly")
    output = metronome("run", "nightly")
    run = DjangoJobExecution.objects.get()
    assert (run.status, run.manual, run.job_id) == (ExecutionStatus.PENDING, True, "nightly")
    assert run.reason.startswith("Run now, asked for by command line (")
    assert output.splitlines() == [
        f"Asked for a run of job 'nightly' now: ledger row {run.id}, pending until a scheduler "
        "process takes it. The job's schedule does not move.",
        "Follow it with `manage.py metronome history --job nightly`, or ask with --wait.",
    ]
    with time_machine.travel(CLOCK + timedelta(seconds=1), tick=False):  # a second later
        data = metronome_json("run", "nightly")
    assert set(data) == RUN_KEYS
    assert data["status"] == "pending"
    assert data["id"] == DjangoJobExecution.objects.latest("id").id
    job.refresh_from_db()
    assert job.next_run_time == datetime(2031, 3, 29, 1, 30, tzinfo=UTC)  # did not move


def test_run_wait_without_a_scheduler_times_out_and_says_how_to_start_one(add):
    add("nightly")
    message = fails("run", "nightly", "--wait", "--timeout", "0.2", code=3)
    run = DjangoJobExecution.objects.get()
    assert message == (
        f"Run {run.id} of job 'nightly' is still pending after 200 ms. No scheduler process is "
        "running: start one with `manage.py runscheduler`. The request stays in the ledger: "
        "a scheduler process runs it when it takes it."
    )


def test_run_wait_timeout_defaults_to_the_django_apscheduler_setting(add, settings):
    add("nightly")
    settings.APSCHEDULER_RUN_NOW_TIMEOUT = 0.1
    assert "is still pending after 100 ms." in fails("run", "nightly", "--wait", code=3)


def test_run_is_refused_for_a_job_no_process_would_run(add):
    add("broken")
    DjangoJob.objects.quarantine("broken", "ImportError: No module named 'gone'")
    add("ghost")
    DjangoJob.objects.filter(pk="ghost").update(source=JobSource.CODE, orphaned_at=utcnow())
    assert fails("run", "broken") == (
        "Job 'broken' is quarantined (ImportError: No module named 'gone'), so no scheduler "
        "process would run it. Fix the cause, or remove the job with "
        "`manage.py metronome remove broken`."
    )
    assert fails("run", "ghost").startswith("Job 'ghost' is orphaned: it is declared in code")
    assert not DjangoJobExecution.objects.exists()


@pytest.fixture
def running_scheduler(settings):
    settings.METRONOME = {"POLL_INTERVAL": 0.05, "HEARTBEAT_INTERVAL": 0.2, "DEAD_AFTER": 2}
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start()
    yield scheduler
    if scheduler.state != STATE_STOPPED:
        scheduler.shutdown(wait=True, timeout=5)


@pytest.mark.django_db(transaction=True)
def test_run_wait_with_a_running_scheduler_prints_the_outcome(running_scheduler):
    running_scheduler.add_job(jobs.noop, "interval", hours=1, id="hourly", name="Hourly")
    running_scheduler.add_job(jobs.fail, "interval", hours=1, id="failing", args=["nope"])
    scheduled = DjangoJob.objects.get(pk="hourly").next_run_time

    output = metronome("run", "hourly", "--wait", "--timeout", "10")
    run = DjangoJobExecution.objects.get(job_id="hourly")
    assert run.status == ExecutionStatus.SUCCEEDED
    assert run.node == running_scheduler.identity
    assert output.splitlines()[1:3] == [
        "Waiting up to 10 s for its outcome...",
        f"Run {run.id} of job 'hourly' succeeded (it ran for {duration(run.duration)}).",
    ]
    assert DjangoJob.objects.get(pk="hourly").next_run_time == scheduled

    message = fails("run", "failing", "--wait", "--timeout", "10")
    run = DjangoJobExecution.objects.get(job_id="failing")
    assert message == f"Run {run.id} of job 'failing' failed: RuntimeError: nope"

    with pytest.raises(CommandError) as caught:
        metronome("run", "failing", "--wait", "--timeout", "10", "--json")
    assert caught.value.returncode == 1
    assert "failed: RuntimeError: nope" in str(caught.value)

    data = metronome_json("run", "hourly", "--wait", "--timeout", "10")
    assert (data["status"], data["manual"]) == ("succeeded", True)
    assert data["node"] == running_scheduler.identity
    assert data["reason"].startswith("Run now, asked for by command line (")


@pytest.mark.django_db(transaction=True)
def test_run_wait_prints_the_traceback_of_a_failed_run(running_scheduler):
    running_scheduler.add_job(jobs.fail, "interval", hours=1, id="failing", args=["nope"])
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("metronome", "run", "failing", "--wait", "--timeout", "10", stdout=out)
    lines = out.getvalue().splitlines()
    at = lines.index("Traceback (most recent call last):")
    assert lines[at - 1].endswith("failed: RuntimeError: nope")
    assert lines[-2].strip() == "raise RuntimeError(message)"
    assert lines[-1] == "RuntimeError: nope"


# --- pause, resume, remove -------------------------------------------------------------------


def test_pause_until_a_naive_time_reads_it_in_the_jobs_zone(add):
    add("seoul", trigger=MORNING_SEOUL)
    output = metronome("pause", "seoul", "--until", "2031-12-01T09:00")
    job = DjangoJob.objects.get(pk="seoul")
    assert job.paused_until == datetime(2031, 12, 1, 0, 0, tzinfo=UTC)
    assert job.next_run_time is None
    assert output == (
        "Paused job 'seoul' until 2031-12-01 09:00:00+09:00 (Asia/Seoul); "
        "it resumes by itself then.\n"
    )


def test_pause_until_a_time_with_an_offset_as_json(add):
    add("seoul", trigger=MORNING_SEOUL)
    data = metronome_json("pause", "seoul", "--until", "2031-12-01T09:00Z")
    assert set(data) == JOB_KEYS
    assert (data["state"], data["paused"]) == ("paused", True)
    assert data["paused_until"] == "2031-12-01T18:00:00+09:00"
    assert data["next_run_time"] is None


def test_pause_help_says_how_a_time_without_offset_is_read():
    parser = MetronomeCommand().create_parser("manage.py", "metronome")
    (subcommands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    help_text = " ".join(subcommands.choices["pause"].format_help().split())
    assert "A time without an offset is read in the job's own time zone." in help_text


def test_pause_then_resume(add):
    add("nightly")
    assert metronome("pause", "nightly") == (
        "Paused job 'nightly': it does not fire until `manage.py metronome resume nightly`.\n"
    )
    assert DjangoJob.objects.get(pk="nightly").is_paused
    assert "(it was paused already)" in metronome("pause", "nightly")
    assert metronome("resume", "nightly") == (
        "Resumed job 'nightly': next run at 2031-03-29 02:30:00+01:00.\n"
    )
    assert DjangoJob.objects.get(pk="nightly").next_run_time == datetime(
        2031, 3, 29, 1, 30, tzinfo=UTC
    )
    assert metronome("resume", "nightly") == (
        "Job 'nightly' is not paused; its next run is at 2031-03-29 02:30:00+01:00.\n"
    )
    metronome("pause", "nightly")
    data = metronome_json("resume", "nightly")
    assert (data["state"], data["next_run_time"]) == ("active", "2031-03-29T02:30:00+01:00")


def test_pause_refuses_a_bad_or_past_time(add):
    add("nightly")
    assert fails("pause", "nightly", "--until", "tomorrow") == (
        "Error: argument --until: 'tomorrow' is not an ISO 8601 date and time: write e.g. "
        "2026-12-01T09:00 or 2026-12-01T09:00+01:00."
    )
    assert fails("pause", "nightly", "--until", "2020-01-01T00:00+00:00", code=2) == (
        "--until 2020-01-01T00:00:00+00:00 is not in the future. Leave --until out to pause "
        "with no end, or resume the job with `manage.py metronome resume nightly`."
    )
    assert not DjangoJob.objects.get(pk="nightly").is_paused


def test_resume_of_a_job_whose_schedule_has_ended_says_so(add):
    ended = CronTrigger(hour=8, end_date=datetime(2020, 1, 1), timezone=BERLIN)
    add("once", trigger=ended, next_run_time=None)
    assert fails("resume", "once") == (
        "Job 'once' was not resumed: its schedule has ended, so it has no fire left and stays "
        "paused. Remove it with `manage.py metronome remove once` if it is no longer wanted."
    )
    assert DjangoJob.objects.get(pk="once").is_paused


def test_remove_with_yes_keeps_the_history(add):
    add("nightly")
    ledger_row("nightly", datetime(2031, 3, 28, 1, 30, tzinfo=UTC))
    assert metronome("remove", "nightly", "--yes") == (
        "Removed job 'nightly'. Its run history is kept (1 run(s)): "
        "`manage.py metronome history --job nightly`.\n"
    )
    assert not DjangoJob.objects.exists()
    assert DjangoJobExecution.objects.filter(job_id="nightly").count() == 1


def test_remove_of_a_job_declared_in_code_warns_that_it_comes_back(add):
    add("declared")
    DjangoJob.objects.filter(pk="declared").update(source=JobSource.CODE)
    assert metronome_json("remove", "declared", "--no-input") == {
        "id": "declared",
        "removed": True,
        "runs_kept": 0,
    }
    add("declared")
    DjangoJob.objects.filter(pk="declared").update(source=JobSource.CODE)
    assert "It is declared in code: a scheduler process that declares it adds it again" in (
        metronome("remove", "declared", "--yes")
    )


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(("answer", "removed"), [("y\n", True), ("YES\n", True), ("\n", False)])
def test_remove_asks_on_a_terminal(add, monkeypatch, answer, removed):
    add("nightly", name="Nightly report")
    monkeypatch.setattr(sys, "stdin", Terminal(answer))
    output = metronome("remove", "nightly")
    assert output.startswith(
        "Remove job 'nightly' (Nightly report)? Its run history is kept. [y/N] "
    )
    assert output.endswith(
        "is kept (0 run(s)): `manage.py metronome history --job nightly`.\n"
        if removed
        else "Not removed.\n"
    )
    assert DjangoJob.objects.filter(pk="nightly").exists() is not removed


def test_remove_without_a_terminal_needs_yes(add, monkeypatch):
    add("nightly")
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    assert fails("remove", "nightly") == (
        "Job 'nightly' was not removed: add --yes to remove it without a question (standard "
        "input is not a terminal, so none was asked)."
    )
    assert DjangoJob.objects.filter(pk="nightly").exists()


# --- history -----------------------------------------------------------------------------------


@pytest.fixture
def history(add):
    add("seoul", trigger=MORNING_SEOUL)
    add("nightly")
    ledger_row("seoul", datetime(2031, 1, 1, 23, tzinfo=UTC))
    ledger_row("seoul", datetime(2031, 1, 2, 23, tzinfo=UTC), ExecutionStatus.FAILED)
    ledger_row("nightly", datetime(2031, 1, 2, 1, 30, tzinfo=UTC), ExecutionStatus.MISSED)
    ledger_row("gone", datetime(2031, 1, 3, 12, tzinfo=UTC), reason="Why not.")


def test_history_newest_first_in_each_jobs_zone(history):
    lines = metronome("history").splitlines()
    assert columns(lines[0]) == [
        "ID",
        "JOB",
        "RUN TIME",
        "STATUS",
        "DURATION",
        "LATENESS",
        "PROCESS",
        "DETAIL",
    ]
    assert [columns(line)[1:4] for line in lines[1:5]] == [
        ["gone", "2031-01-03 12:00:00+00:00", "succeeded"],  # removed: UTC
        ["seoul", "2031-01-03 08:00:00+09:00", "failed"],
        ["nightly", "2031-01-02 02:30:00+01:00", "missed"],
        ["seoul", "2031-01-02 08:00:00+09:00", "succeeded"],
    ]
    assert columns(lines[1])[-1] == "Why not."
    assert lines[5] == (
        "4 run(s), newest first. Times are in each job's own zone (UTC for removed jobs)."
    )


@pytest.mark.parametrize(
    ("options", "jobs_and_statuses"),
    [
        (["--job", "seoul"], [("seoul", "failed"), ("seoul", "succeeded")]),
        (
            ["--job", "seoul", "--job", "gone"],
            [("gone", "succeeded"), ("seoul", "failed"), ("seoul", "succeeded")],
        ),
        (
            ["--status", "failed", "--status", "missed"],
            [("seoul", "failed"), ("nightly", "missed")],
        ),
        (["--since", "2031-01-02T12:00Z"], [("gone", "succeeded"), ("seoul", "failed")]),
        (["--until", "2031-01-02T01:30+00:00"], [("seoul", "succeeded")]),  # exclusive
        # Naive: read in METRONOME["TIME_ZONE"], here the project's UTC.
        (
            ["--since", "2031-01-02T01:30", "--until", "2031-01-03"],
            [("seoul", "failed"), ("nightly", "missed")],
        ),
        (["--limit", "1"], [("gone", "succeeded")]),
    ],
)
def test_history_filters(history, options, jobs_and_statuses):
    runs = metronome_json("history", *options)["runs"]
    assert [(run["job_id"], run["status"]) for run in runs] == jobs_and_statuses


def test_history_as_json(history):
    runs = metronome_json("history", "--job", "seoul", "--limit", "1")["runs"]
    assert len(runs) == 1
    assert set(runs[0]) == RUN_KEYS
    assert runs[0]["run_time"] == "2031-01-03T08:00:00+09:00"
    assert (runs[0]["status"], runs[0]["node"], runs[0]["manual"]) == (
        "failed",
        "host:1:abc",
        False,
    )


def test_history_refuses_bad_times(history):
    assert fails("history", "--since", "2031-13-01") == (
        "Error: argument --since: '2031-13-01' is not an ISO 8601 date and time: write e.g. "
        "2026-12-01T09:00 or 2026-12-01T09:00+01:00."
    )
    assert fails("history", "--since", "2031-02-01", "--until", "2031-01-01", code=2) == (
        "--since 2031-02-01T00:00:00+00:00 is not before --until 2031-01-01T00:00:00+00:00."
    )
    assert metronome("history", "--status", "interrupted") == "No runs.\n"


def test_history_says_when_the_limit_leaves_runs_out(history):
    assert metronome("history", "--limit", "3").splitlines()[-1] == (
        "3 run(s), newest first (there are more: raise --limit). Times are in each job's own "
        "zone (UTC for removed jobs)."
    )
    assert (
        metronome("history", "--limit", "4")
        .splitlines()[-1]
        .startswith("4 run(s), newest first. Times")
    )


# --- prune -------------------------------------------------------------------------------------


def finished_runs(job_id, count, newest, status=ExecutionStatus.SUCCEEDED, step=timedelta(hours=1)):
    DjangoJobExecution.objects.bulk_create(
        DjangoJobExecution(job_id=job_id, run_time=newest - i * step, status=status)
        for i in range(count)
    )


def test_prune_older_than_loops_until_nothing_is_left(db, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 2)  # one round of retention deletes at most 20
    now = utcnow()
    finished_runs("a", 60, now)
    finished_runs("b", 3, now - timedelta(days=3), status=ExecutionStatus.RUNNING)
    output = metronome("prune", "--older-than", "24h")
    assert output == (
        "Deleted 36 finished run(s) from the history: 36 scheduled more than 1 d ago. "
        "Running and pending runs are never deleted.\n"
    )
    assert DjangoJobExecution.objects.filter(job_id="a").count() == 24
    assert DjangoJobExecution.objects.filter(job_id="b").count() == 3


def test_prune_per_job_loops_until_nothing_is_left(db, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 1)  # one round deletes at most 10 per job
    now = utcnow()
    finished_runs("a", 30, now)
    finished_runs("b", 4, now)
    data = metronome_json("prune", "--keep-per-job", "5")
    assert data == {
        "deleted": 25,
        "deleted_by_age": 0,
        "deleted_by_count": 25,
        "older_than_seconds": None,
        "keep_per_job": 5,
    }
    assert DjangoJobExecution.objects.filter(job_id="a").count() == 5
    assert DjangoJobExecution.objects.filter(job_id="b").count() == 4


def test_prune_defaults_to_the_retention_settings(db, settings):
    settings.METRONOME = {"HISTORY_MAX_AGE": 7200, "HISTORY_MAX_PER_JOB": 2}
    now = utcnow()
    finished_runs("a", 5, now)  # 0 to 4 hours ago: 3 are too old
    finished_runs("b", 4, now, step=timedelta(minutes=10))  # recent, but 2 too many
    assert metronome("prune") == (
        "Deleted 5 finished run(s) from the history: 3 scheduled more than 2 h ago and "
        "2 beyond the 2 most recent of each job. Running and pending runs are never deleted.\n"
    )
    assert sorted(DjangoJobExecution.objects.values_list("job_id", flat=True)) == [
        "a",
        "a",
        "b",
        "b",
    ]
    # An option given replaces its setting; the other setting still applies.
    data = metronome_json("prune", "--older-than", "1h")
    assert (data["older_than_seconds"], data["keep_per_job"]) == (3600, 2)


def test_prune_refuses_when_there_is_no_limit(db):
    assert fails("prune", code=2) == (
        "Nothing to prune by: give --older-than (e.g. 30d) and/or --keep-per-job N, or set "
        "METRONOME['HISTORY_MAX_AGE'] (seconds) or METRONOME['HISTORY_MAX_PER_JOB'] in the "
        "settings."
    )


def test_prune_refuses_bad_limits(db):
    assert fails("prune", "--older-than", "30 days") == (
        "Error: argument --older-than: '30 days' is not a duration: write a whole number and "
        "a unit (w, d, h, m or s), e.g. 30d, 12h, 90m or 3600s."
    )
    assert fails("prune", "--keep-per-job", "0") == (
        "Error: argument --keep-per-job: '0' is not a whole number 1 or more."
    )


# --- health ----------------------------------------------------------------------------------


def test_health_without_any_scheduler_process(db):
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("metronome", "health", stdout=out)
    assert caught.value.returncode == 1
    assert str(caught.value) == (
        "Not healthy: no scheduler process has heart-beaten in the last 30 s."
    )
    assert out.getvalue().splitlines() == [
        "Not healthy:",
        "- No scheduler process has heart-beaten in the last 30 s: none has ever run on this "
        "database. Start one with `manage.py runscheduler`.",
    ]


def test_health_with_a_live_process(db):
    node("host:1:abc", heartbeat_age=1)
    node("host:2:old", heartbeat_age=3600, stopped=True)  # stopped long ago: not a problem
    lines = metronome("health").splitlines()
    assert lines[0] == "Healthy."
    assert lines[1].startswith("Scheduler process host:1:abc is alive: last heartbeat 1.")
    assert lines[2] == "No job is overdue by more than 1 min."
    data = metronome_json("health")
    assert (data["healthy"], data["live_nodes"], data["problems"]) == (True, 1, [])
    assert [n["id"] for n in data["nodes"]] == ["host:1:abc"]


def test_health_with_a_stale_heartbeat(db):
    node("host:1:abc", heartbeat_age=95)
    message = fails("health")
    assert message == "Not healthy: no scheduler process has heart-beaten in the last 30 s."
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("metronome", "health", "--max-heartbeat-age", "60", stdout=out)
    problem = out.getvalue().splitlines()[1]
    assert problem.startswith(
        "- No scheduler process has heart-beaten in the last 1 min: host:1:abc last did at "
    )
    assert problem.endswith(" ago). Start one with `manage.py runscheduler`.")
    assert "(1 min 35 s ago)" in problem
    # A longer allowance makes it healthy.
    assert metronome("health", "--max-heartbeat-age", "120").startswith("Healthy.")


def test_health_notes_a_silent_process_while_another_is_alive(db):
    node("host:1:abc", heartbeat_age=1)
    node("host:2:def", heartbeat_age=95)
    output = metronome("health")
    assert output.startswith("Healthy.")
    assert "Note: Scheduler process host:2:def has not heart-beaten for 1 min 35 s" in output
    data = metronome_json("health")
    assert [(n["id"], n["alive"]) for n in data["nodes"]] == [
        ("host:1:abc", True),
        ("host:2:def", False),
    ]


def test_health_shows_each_process_clock_and_notes_one_that_is_off(db):
    node("host:1:abc", heartbeat_age=1)
    node("host:2:def", heartbeat_age=1)
    SchedulerNode.objects.filter(pk="host:1:abc").update(clock_offset=0.004)
    SchedulerNode.objects.filter(pk="host:2:def").update(clock_offset=-30.25)
    output = metronome("health")
    assert output.startswith("Healthy.")  # it schedules by the database's clock
    assert (
        "Note: Scheduler process host:2:def's clock is 30.250 s ahead of the database's" in output
    )
    assert "host:1:abc's clock" not in output
    data = metronome_json("health")
    assert {n["id"]: n["clock_offset_seconds"] for n in data["nodes"]} == {
        "host:1:abc": 0.004,
        "host:2:def": -30.25,
    }
    assert len(data["notes"]) == 1


def test_health_with_an_overdue_job(add):
    node("host:1:abc", heartbeat_age=1)
    due = utcnow() - timedelta(minutes=5)
    add("late", trigger=MORNING_SEOUL, next_run_time=due.astimezone(SEOUL))
    # Not overdue: within the allowance, paused, quarantined, orphaned.
    add("recent", next_run_time=utcnow() - timedelta(seconds=10))
    add("held", next_run_time=None)
    add("broken", next_run_time=due)
    DjangoJob.objects.quarantine("broken", "gone")
    add("ghost", next_run_time=due)
    DjangoJob.objects.filter(pk="ghost").update(source=JobSource.CODE, orphaned_at=utcnow())

    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("metronome", "health", stdout=out)
    assert caught.value.returncode == 1
    assert str(caught.value) == "Not healthy: 1 job(s) overdue by more than 1 min."
    problem = out.getvalue().splitlines()[1]
    shown_due = due.astimezone(SEOUL).isoformat(sep=" ", timespec="seconds")
    assert problem.startswith(
        f"- 1 job(s) overdue by more than 1 min: 'late' was due at {shown_due}, 5 min"
    )

    data = json.loads(failing_json("health"))
    assert data["healthy"] is False
    assert data["overdue_count"] == 1
    (late,) = data["overdue_jobs"]
    assert set(late) == {"id", "name", "next_run_time", "overdue_seconds"}
    assert late["id"] == "late"
    assert late["next_run_time"] == due.astimezone(SEOUL).isoformat()
    assert 300 <= late["overdue_seconds"] < 310

    assert metronome("health", "--max-overdue", "600").startswith("Healthy.")


def test_health_json_keys(db):
    data = json.loads(failing_json("health", "--max-overdue", "30"))
    assert set(data) == {
        "healthy",
        "checked_at",
        "max_heartbeat_age_seconds",
        "max_overdue_seconds",
        "hostname",
        "live_nodes",
        "nodes",
        "overdue_count",
        "overdue_jobs",
        "problems",
        "notes",
    }
    assert data["max_overdue_seconds"] == 30
    assert datetime.fromisoformat(data["checked_at"]).utcoffset() == timedelta(0)


def test_health_this_host_counts_only_processes_on_this_host(db):
    node("elsewhere:1:abc", heartbeat_age=1)
    SchedulerNode.objects.filter(pk="elsewhere:1:abc").update(hostname="elsewhere")
    here = socket.gethostname()
    assert metronome("health").startswith("Healthy.")
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("metronome", "health", "--this-host", stdout=out)
    assert str(caught.value) == (
        f"Not healthy: no scheduler process on host {here!r} has heart-beaten in the last 30 s."
    )
    assert out.getvalue().splitlines()[1] == (
        f"- No scheduler process on host {here!r} has heart-beaten in the last 30 s: none has "
        "ever run here. Start one with `manage.py runscheduler`."
    )
    SchedulerNode.objects.create(
        id=f"{here}:2:def", hostname=here, pid=2, started_at=utcnow(), last_heartbeat=utcnow()
    )
    data = metronome_json("health", "--this-host")
    assert (data["healthy"], data["hostname"]) == (True, here)
    assert [n["id"] for n in data["nodes"]] == [f"{here}:2:def"]


def test_a_database_error_says_what_to_check(db, monkeypatch):
    def lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(health, "health_report", lost)
    assert fails("health") == (
        "The database 'default' could not be queried: server closed the connection "
        "unexpectedly. Check that it is running and reachable, and that its migrations are "
        "applied (`manage.py migrate`)."
    )


def test_health_thresholds_must_be_numbers(db):
    assert fails("health", "--max-overdue", "soon") == (
        "Error: argument --max-overdue: 'soon' is not a number of seconds."
    )


# --- real processes -------------------------------------------------------------------------------


def run_manage(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["METRONOME_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    return subprocess.run(
        [sys.executable, "-m", "django", "metronome", *args, "--settings=tests.settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_health_exit_codes_in_a_real_process():
    unhealthy = run_manage("health")
    assert unhealthy.returncode == 1, unhealthy.stderr
    assert "No scheduler process has heart-beaten in the last 30 s" in unhealthy.stdout
    # Said once: the report on standard output, no summary repeating it.
    assert (unhealthy.stdout + unhealthy.stderr).count("ot healthy") == 1, unhealthy
    assert unhealthy.stderr == ""
    # With --json the data goes to standard output and a summary to standard error.
    unhealthy = run_manage("health", "--json")
    assert unhealthy.returncode == 1
    assert json.loads(unhealthy.stdout)["healthy"] is False
    assert unhealthy.stderr.strip() == (
        "CommandError: Not healthy: no scheduler process has heart-beaten in the last 30 s."
    )

    node("host:1:abc", heartbeat_age=1)
    healthy = run_manage("health", "--json")
    assert healthy.returncode == 0, healthy.stderr
    assert json.loads(healthy.stdout)["healthy"] is True

    usage = run_manage("health", "--max-overdue", "soon")
    assert usage.returncode == 2
    assert "argument --max-overdue: 'soon' is not a number of seconds." in usage.stderr


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "args", [("list",), ("show", "nightly"), ("history",), ("health",), ("list", "--json")]
)
def test_a_reader_that_stops_reading_ends_it_quietly(args, store, make_job):
    """`metronome show X | head`: no BrokenPipeError traceback, whatever the subcommand."""
    store.add_job(make_job(jobs.noop, id="nightly", trigger=DAILY_0230))
    env = dict(os.environ)
    env["METRONOME_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "metronome", *args, "--settings=tests.settings"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # the reader is gone before the first line is written
    with proc.stderr:
        errors = proc.stderr.read()
    assert proc.wait(60) == 141, errors
    assert errors == ""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_list_json_and_errors_in_a_real_process(store, make_job):
    store.add_job(make_job(jobs.noop, id="nightly", trigger=DAILY_0230))
    listed = run_manage("list", "--json")
    assert listed.returncode == 0, listed.stderr
    (job,) = json.loads(listed.stdout)["jobs"]
    assert (job["id"], job["next_run_time"]) == ("nightly", "2026-11-25T08:00:00+01:00")

    missing = run_manage("show", "nope")
    assert missing.returncode == 1
    assert missing.stderr.startswith("CommandError: There is no job with the id 'nope'.")

    bad_time = run_manage("pause", "nightly", "--until", "tomorrow")
    assert bad_time.returncode == 2
    assert "'tomorrow' is not an ISO 8601 date and time" in bad_time.stderr

    timeout = run_manage("run", "nightly", "--wait", "--timeout", "0.1")
    assert timeout.returncode == 3
    assert "start one with `manage.py runscheduler`" in timeout.stderr
