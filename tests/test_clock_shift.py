"""
The clock shift of the test runs (tests/clock_shift.py): ``scripts/test`` runs the
suite with ``METRONOME_CLOCK_SHIFT=+365d`` and ``-365d``. These tests check that such
a run really moves the clocks, and moves them together: this process's, SQLite's,
and those of the scheduler processes the tests start. Without a shift they check
that nothing moved.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db.utils import ConnectionHandler

from tests import clock_shift
from tests.conftest import wait_for

#: Far below the shifts of the runs (a year), far above the time a process takes to start.
SLACK = 60.0


def kernel_time(directory: Path) -> float:
    """The real time, unshifted: a new file's modification time comes from the kernel."""
    marker = directory / "now"
    marker.touch()
    return marker.stat().st_mtime


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("", 0),
        ("0", 0),
        ("+365d", 365 * 86400),
        ("-365d", -365 * 86400),
        ("+36h", 36 * 3600),
        ("-90m", -5400),
        (" +30s ", 30),
        ("+1.5d", 129600),
    ],
)
def test_shifts_are_read_with_their_sign_and_unit(text, seconds):
    assert clock_shift.parse(text) == seconds


@pytest.mark.parametrize("text", ["365d", "+365", "+365 d", "+1y", "-d", "++1d"])
def test_a_bad_shift_is_refused(text):
    with pytest.raises(RuntimeError, match="write a sign, a number and a unit"):
        clock_shift.parse(text)


def test_this_process_runs_the_shift_away_from_the_real_time(tmp_path):
    real = kernel_time(tmp_path)
    assert abs(time.time() - (real + clock_shift.shift())) < SLACK
    assert abs(datetime.now(UTC).timestamp() - (real + clock_shift.shift())) < SLACK


def test_sqlite_now_moves_with_the_shift(tmp_path, django_db_blocker):
    # An SQLite database of its own, whatever the database of this run.
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db")}}
    )
    database = handler["default"]
    real = kernel_time(tmp_path)
    with django_db_blocker.unblock():
        try:
            with database.cursor() as cursor:
                cursor.execute(
                    "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now'), datetime(), "
                    "strftime('%Y-%m-%d %H:%M:%S', '2020-01-01', '+1 day')"
                )
                now, bare, fixed = cursor.fetchone()
        finally:
            database.close()
    expected = real + clock_shift.shift()
    for value in (now, bare):
        seconds = datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
        assert abs(seconds - expected) < SLACK, value
    assert fixed == "2020-01-02 00:00:00"  # other times are left alone


def test_a_shift_is_refused_on_a_database_server(monkeypatch):
    monkeypatch.setattr(clock_shift, "_started", False)
    monkeypatch.setenv("METRONOME_CLOCK_SHIFT", "+1d")
    monkeypatch.setenv("METRONOME_TEST_DB", "postgres")
    with pytest.raises(RuntimeError, match="run it with METRONOME_TEST_DB=sqlite"):
        clock_shift.start_from_environment()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_scheduler_process_started_by_the_tests_keeps_their_clock(processes):
    from django_metronome.models import SchedulerNode

    before = datetime.now(UTC)
    processes.runscheduler("")
    node = wait_for(lambda: SchedulerNode.objects.first(), timeout=60)
    after = datetime.now(UTC)

    # Its registration is stamped by its own clock, between our two readings.
    margin = timedelta(seconds=5)
    assert before - margin <= node.started_at <= after + margin, (before, node.started_at)
