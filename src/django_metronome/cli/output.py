"""
What ``manage.py metronome`` prints: times, tables, and jobs and runs as data.

A job and a run say the same things about themselves in every subcommand: as
``--json`` data (:func:`job_data`, :func:`run_data`; every time ISO 8601 with
its offset) and as text for people (:func:`shown` times, :func:`table` rows).
The words for a job's state and for lengths of time are the admin's too
(:mod:`django_metronome.present`, :func:`django_metronome.time.text.duration`).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from django.utils import translation

from .. import present
from ..store.db import from_db
from ..store.models import DjangoJob, DjangoJobExecution, ExecutionStatus

# --- times ------------------------------------------------------------------------------


def local(value: datetime | None, zone: tzinfo) -> datetime | None:
    """A datetime read from the database, as an aware datetime in ``zone``."""
    return None if value is None else from_db(value).astimezone(zone)


def iso(value: datetime | None, zone: tzinfo) -> str | None:
    """ISO 8601 with the offset, in ``zone``: the form of every time in ``--json``."""
    when = local(value, zone)
    return None if when is None else when.isoformat()


def shown(value: datetime | None, zone: tzinfo) -> str:
    """A time for people: ``2026-11-25 08:00:00+01:00``, in ``zone``."""
    when = local(value, zone)
    return "-" if when is None else when.isoformat(sep=" ", timespec="seconds")


def total_seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


# --- jobs and runs ----------------------------------------------------------------------


def state_words(job: DjangoJob) -> str:
    """Where a job stands, for people: ``orphaned, paused until 2026-12-01 09:00:00+01:00``."""
    zone = present.job_zone(job)
    return present.state_words(job, lambda until: shown(until, zone), translation)


def job_data(job: DjangoJob, last_run: DjangoJobExecution | None = None) -> dict[str, Any]:
    """A job as ``--json`` shows it; times in the job's own zone."""
    zone = present.job_zone(job)
    return {
        "id": job.id,
        "name": job.name,
        "func_ref": job.func_ref,
        "source": job.source,
        "schedule": job.describe_schedule(),
        "time_zone": job.time_zone,
        "next_run_time": iso(job.next_run_time, zone),
        "state": present.job_state(job),
        "paused": job.is_paused,
        "paused_until": iso(job.paused_until, zone),
        "paused_at": iso(job.paused_at, zone),
        "paused_by": job.paused_by,
        "pause_note": job.pause_note,
        "orphaned_at": iso(job.orphaned_at, zone),
        "quarantined_at": iso(job.quarantined_at, zone),
        "quarantine_reason": job.quarantine_reason,
        "last_run": None
        if last_run is None
        else {
            "id": last_run.id,
            "run_time": iso(last_run.run_time, zone),
            "status": last_run.status,
        },
    }


def run_data(run: DjangoJobExecution, zone: tzinfo) -> dict[str, Any]:
    """A ledger row as ``--json`` shows it; times in ``zone`` (its job's, else UTC)."""
    return {
        "id": run.id,
        "job_id": run.job_id,
        "job_name": run.job_name,
        "run_time": iso(run.run_time, zone),
        "status": run.status,
        "manual": run.manual,
        "node": run.node,
        "claimed_at": iso(run.claimed_at, zone),
        "started_at": iso(run.started_at, zone),
        "finished_at": iso(run.finished_at, zone),
        "duration_seconds": total_seconds(run.duration),
        "lateness_seconds": total_seconds(run.lateness),
        "reason": run.reason,
        "exception": run.exception,
        "traceback": run.traceback,
    }


def status_word(status: str) -> str:
    """A run's status for people, in ``LANGUAGE_CODE``: ``succeeded`` (``성공`` in Korean)."""
    return str(ExecutionStatus(status).label) if status in ExecutionStatus.values else status


def runs_table(runs: Sequence[DjangoJobExecution], zones: dict[str, tzinfo]) -> str:
    """Ledger rows as a table; each run's time in its job's zone (``zones``), else UTC."""
    rows = [
        [
            str(run.id),
            run.job_id,
            shown(run.run_time, zones.get(run.job_id, UTC)),
            status_word(run.status),
            present.length(run.duration, words=translation),
            present.length(run.lateness, words=translation),
            run.node or "-",
            present.run_detail(run) or "-",
        ]
        for run in runs
    ]
    headers = ["ID", "JOB", "RUN TIME", "STATUS", "DURATION", "LATENESS", "PROCESS", "DETAIL"]
    return table(headers, rows)


# --- text and JSON ----------------------------------------------------------------------


def width(text: str) -> int:
    """How many terminal columns ``text`` takes (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)  # one column each: the common case, without a lookup per character
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, under a header line."""
    rows = [[" ".join(cell.split()) for cell in row] for row in rows]
    widths = [
        max([width(header), *(width(row[i]) for row in rows)]) for i, header in enumerate(headers)
    ]
    lines = [
        "  ".join(
            cell + " " * (size - width(cell)) for cell, size in zip(row, widths, strict=True)
        ).rstrip()
        for row in [list(headers), *rows]
    ]
    return "\n".join(lines)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


class StreamedTable:
    """
    A :func:`table` printed a chunk of rows at a time, for lists too long to hold.

    The columns are as wide as the header and the first chunk need; a later,
    wider cell widens its column from there on (the table never waits for the
    last row to know its widths).
    """

    def __init__(self, headers: Sequence[str]) -> None:
        self.headers = list(headers)
        self.widths = [width(header) for header in headers]
        self.started = False

    def lines(self, rows: Sequence[Sequence[str]]) -> list[str]:
        """The text lines of ``rows`` (after the header line, for the first chunk)."""
        rows = [[" ".join(cell.split()) for cell in row] for row in rows]
        for row in rows:
            self.widths = [
                max(size, width(cell)) for size, cell in zip(self.widths, row, strict=True)
            ]
        if not self.started:
            rows = [self.headers, *rows]
            self.started = True
        return [
            "  ".join(
                cell + " " * (size - width(cell))
                for cell, size in zip(row, self.widths, strict=True)
            ).rstrip()
            for row in rows
        ]
