"""
The parts of ``manage.py metronome`` that are not argument wiring.

Argument types (durations, datetimes, counts), what a job, a run and a
scheduler process say about themselves as data (the ``--json`` output), text
tables and times for people, and the health report. Times are passed in, so
that each piece can be tested without a clock.
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
import re
import socket
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from django.db.models import OuterRef, Subquery

from .conf import conf
from .models import DjangoJob, DjangoJobExecution, SchedulerNode
from .store.db import from_db, to_db
from .time.clock import describe_offset
from .time.codecs import decode_tz
from .time.preview import MAX_PREVIEW

# --- argument types ---------------------------------------------------------------

#: Seconds in each unit a duration may be written in.
DURATION_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_PART = re.compile(r"(\d+)([wdhms])")


def duration(value: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w``, or a sum such as ``1d12h``."""
    text = value.strip().lower()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a duration: write a whole number and a unit "
            "(w, d, h, m or s), e.g. 30d, 12h, 90m or 3600s."
        )
    return timedelta(seconds=sum(int(number) * DURATION_UNITS[unit] for number, unit in parts))


def moment(value: str) -> datetime:
    """An ISO 8601 date and time; naive (no offset) when none was written."""
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 date and time: write e.g. 2026-12-01T09:00 "
            "or 2026-12-01T09:00+01:00."
        ) from None


def seconds(value: str) -> float:
    """A finite number of seconds, 0 or more."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds.") from None
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a finite number of seconds, 0 or more.")
    return number


def _whole_number(value: str, low: int, high: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < low or (high is not None and number > high):
        limits = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number {limits}.")
    return number


def positive(value: str) -> int:
    """A whole number, 1 or more."""
    return _whole_number(value, 1)


def preview_count(value: str) -> int:
    """How many fire times to preview: 0 to ``MAX_PREVIEW``."""
    return _whole_number(value, 0, MAX_PREVIEW)


def run_count(value: str) -> int:
    """How many recent runs to show: 0 or more."""
    return _whole_number(value, 0)


def aware(value: datetime, zone: tzinfo) -> datetime:
    """``value`` if it has an offset; else the same wall time read in ``zone``."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value
    # Through UTC and back: a wall time in a DST gap comes out as a real instant.
    return value.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


# --- time zones and times ---------------------------------------------------------


@lru_cache(maxsize=256)
def zone_named(name: str | None) -> tzinfo:
    """The zone a job's state names; UTC when it names none this release knows."""
    try:
        return decode_tz(name) or UTC
    except Exception:
        return UTC


def job_zone(job: DjangoJob) -> tzinfo:
    return zone_named(job.time_zone)


def local(value: datetime | None, zone: tzinfo) -> datetime | None:
    """A datetime read from the database, as an aware datetime in ``zone``."""
    return None if value is None else from_db(value).astimezone(zone)  # type: ignore[union-attr]


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


def span(value: timedelta | float | None) -> str:
    """A duration for people: ``12 ms``, ``3.25 s``, ``2 min 5 s``, ``1 h 3 min``, ``2 d 3 h``."""
    if value is None:
        return "-"
    number = value.total_seconds() if isinstance(value, timedelta) else float(value)
    sign, number = ("-", -number) if number < 0 else ("", number)
    if number == 0:
        text = "0 s"
    elif number < 0.001:
        text = "< 1 ms"
    elif number < 1:
        text = f"{number * 1000:.0f} ms"
    elif number < 60:
        text = f"{number:.0f} s" if number.is_integer() else f"{number:.2f} s"
    else:
        whole = round(number)
        for big, big_unit, small, small_unit in (
            (86400, "d", 3600, "h"),
            (3600, "h", 60, "min"),
            (60, "min", 1, "s"),
        ):
            if whole >= big:
                first, rest = divmod(whole, big)
                text = f"{first} {big_unit}" + (
                    f" {rest // small} {small_unit}" if rest // small else ""
                )
                break
    return sign + text


def requester() -> str:
    """Who asks for a run from here: ``command line (user@host)``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):
        user = "unknown user"
    return f"command line ({user}@{socket.gethostname()})"


# --- jobs and runs as data ----------------------------------------------------------


def job_state(job: DjangoJob) -> str:
    """One word for where a job stands: quarantined, orphaned, paused or scheduled."""
    if job.is_quarantined:
        return "quarantined"
    if job.orphaned_at is not None:
        return "orphaned"
    if job.is_paused:
        return "paused"
    return "scheduled"


def job_state_words(job: DjangoJob) -> str:
    """Where a job stands, for people: ``paused until 2026-12-01 09:00:00+01:00``, ..."""
    words = []
    if job.is_quarantined:
        words.append("quarantined")
    if job.orphaned_at is not None:
        words.append("orphaned")
    if job.is_paused:
        if job.paused_until is not None:
            words.append(f"paused until {shown(job.paused_until, job_zone(job))}")
        else:
            words.append("paused")
    return ", ".join(words) or "scheduled"


def with_last_run(jobs: Any) -> Any:
    """Annotate each job with the id of its most recent ledger row (``last_run_id``)."""
    latest = (
        DjangoJobExecution.objects.filter(job_id=OuterRef("pk"))
        .order_by("-run_time", "-id")
        .values("id")[:1]
    )
    return jobs.annotate(last_run_id=Subquery(latest))


def job_data(job: DjangoJob, last_run: DjangoJobExecution | None = None) -> dict[str, Any]:
    """A job as ``--json`` shows it; times in the job's own zone."""
    zone = job_zone(job)
    return {
        "id": job.id,
        "name": job.name,
        "func_ref": job.func_ref,
        "source": job.source,
        "schedule": job.describe_schedule(),
        "time_zone": job.time_zone,
        "next_run_time": iso(job.next_run_time, zone),
        "state": job_state(job),
        "paused": job.is_paused,
        "paused_until": iso(job.paused_until, zone),
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


def zones_of(using: str, job_ids: Iterable[str]) -> dict[str, tzinfo]:
    """The zones of the jobs that still exist among ``job_ids``."""
    rows = DjangoJob.objects.using(using).filter(pk__in=set(job_ids)).values_list("id", "state")
    return {
        job_id: zone_named(state.get("timezone") if isinstance(state, dict) else None)
        for job_id, state in rows
    }


def run_detail(run: DjangoJobExecution) -> str:
    """The one line that says most about a run: its exception, else its reason."""
    return one_line(run.exception or run.reason)


def runs_table(runs: Sequence[DjangoJobExecution], zones: dict[str, tzinfo]) -> str:
    rows = [
        [
            str(run.id),
            run.job_id,
            shown(run.run_time, zones.get(run.job_id, UTC)),
            run.status,
            span(run.duration),
            span(run.lateness),
            run.node or "-",
            run_detail(run) or "-",
        ]
        for run in runs
    ]
    headers = ["ID", "JOB", "RUN TIME", "STATUS", "DURATION", "LATENESS", "PROCESS", "DETAIL"]
    return table(headers, rows)


# --- text for people -----------------------------------------------------------------


def one_line(text: str, limit: int = 80) -> str:
    """The first line of ``text``, cut to ``limit`` characters."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def width(text: str) -> int:
    """How many terminal columns ``text`` takes (wide East Asian characters take two)."""
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


# --- health ----------------------------------------------------------------------------

#: The most overdue jobs a health report names.
OVERDUE_SHOWN = 20


@dataclass
class HealthReport:
    """What ``manage.py metronome health`` found."""

    checked_at: datetime
    max_heartbeat_age: float
    max_overdue: float
    #: Only processes on this host count, when set.
    hostname: str | None = None
    #: Processes not marked stopped: (node, alive).
    nodes: list[tuple[SchedulerNode, bool]] = field(default_factory=list)
    #: The time of the most recent heartbeat of any process, stopped or not.
    last_heartbeat: SchedulerNode | None = None
    overdue: list[DjangoJob] = field(default_factory=list)
    overdue_count: int = 0
    #: A process whose clock is further off than this (seconds) is noted.
    max_clock_offset: float = 1.0

    @property
    def live_nodes(self) -> list[SchedulerNode]:
        return [node for node, alive in self.nodes if alive]

    @property
    def healthy(self) -> bool:
        return bool(self.live_nodes) and not self.overdue_count

    def heartbeat_age(self, node: SchedulerNode) -> float:
        return (self.checked_at - from_db(node.last_heartbeat)).total_seconds()  # type: ignore[operator]

    def overdue_by(self, job: DjangoJob) -> float:
        return (self.checked_at - from_db(job.next_run_time)).total_seconds()  # type: ignore[operator]

    def problems(self) -> list[str]:
        """What is wrong, one sentence each; empty when healthy."""
        found = []
        if not self.live_nodes:
            found.append(self._no_live_process())
        if self.overdue_count:
            jobs = "; ".join(
                f"{job.id!r} was due at {shown(job.next_run_time, job_zone(job))}, "
                f"{span(self.overdue_by(job))} ago"
                for job in self.overdue
            )
            more = self.overdue_count - len(self.overdue)
            found.append(
                f"{self.overdue_count} job(s) overdue by more than {span(self.max_overdue)}: "
                f"{jobs}" + (f"; and {more} more" if more > 0 else "") + "."
            )
        return found

    def _no_live_process(self) -> str:
        text = f"No scheduler process has heart-beaten in the last {span(self.max_heartbeat_age)}"
        if self.hostname is not None:
            text = text.replace("process", f"process on host {self.hostname!r}", 1)
        stale = [node for node, alive in self.nodes if not alive]
        if stale:
            text += ": " + "; ".join(
                f"{node.id} last did at {shown(node.last_heartbeat, UTC)} "
                f"({span(self.heartbeat_age(node))} ago)"
                for node in stale
            )
        elif self.last_heartbeat is not None:
            text += (
                f": the last one ({self.last_heartbeat.id}) stopped at "
                f"{shown(self.last_heartbeat.stopped_at, UTC)}"
            )
        else:
            text += ": none has ever run on this database"
            if self.hostname is not None:
                text = text.replace("on this database", "here")
        return text + ". Start one with `manage.py runscheduler`."

    def notes(self) -> list[str]:
        """
        Not wrong yet, but worth knowing: silent processes while others are
        alive, and processes whose clock is off from the database's.
        """
        found = [
            f"Scheduler process {node.id}'s clock is {describe_offset(offset)} the database's; "
            f"it schedules by the database's clock, but fix the time synchronisation of "
            f"{node.hostname}."
            for node in self.live_nodes
            if (offset := node.clock_offset) is not None and abs(offset) > self.max_clock_offset
        ]
        if not self.live_nodes:
            return found
        return found + [
            f"Scheduler process {node.id} has not heart-beaten for "
            f"{span(self.heartbeat_age(node))}; the live ones will presume it dead."
            for node, alive in self.nodes
            if not alive
        ]

    def as_data(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "checked_at": self.checked_at.isoformat(),
            "max_heartbeat_age_seconds": self.max_heartbeat_age,
            "max_overdue_seconds": self.max_overdue,
            "hostname": self.hostname,
            "live_nodes": len(self.live_nodes),
            "nodes": [
                {
                    "id": node.id,
                    "hostname": node.hostname,
                    "pid": node.pid,
                    "started_at": iso(node.started_at, UTC),
                    "last_heartbeat": iso(node.last_heartbeat, UTC),
                    "heartbeat_age_seconds": self.heartbeat_age(node),
                    "clock_offset_seconds": node.clock_offset,
                    "alive": alive,
                }
                for node, alive in self.nodes
            ],
            "overdue_count": self.overdue_count,
            "overdue_jobs": [
                {
                    "id": job.id,
                    "name": job.name,
                    "next_run_time": iso(job.next_run_time, job_zone(job)),
                    "overdue_seconds": self.overdue_by(job),
                }
                for job in self.overdue
            ],
            "problems": self.problems(),
            "notes": self.notes(),
        }


def health_report(
    using: str,
    now: datetime,
    *,
    max_heartbeat_age: float,
    max_overdue: float,
    hostname: str | None = None,
) -> HealthReport:
    """
    Check the scheduler processes' heartbeats and the jobs' next run times at ``now``.

    Healthy means: at least one process not stopped (on ``hostname``, if
    given) has heart-beaten within ``max_heartbeat_age`` seconds, and no job
    that should run (not paused, quarantined or orphaned) has a next run time
    more than ``max_overdue`` seconds before ``now``.
    """
    report = HealthReport(
        now, max_heartbeat_age, max_overdue, hostname, max_clock_offset=conf.MAX_CLOCK_OFFSET
    )
    processes = SchedulerNode.objects.using(using)
    if hostname is not None:
        processes = processes.filter(hostname=hostname)
    cutoff = now - timedelta(seconds=max_heartbeat_age)
    report.nodes = [
        (node, from_db(node.last_heartbeat) >= cutoff)  # type: ignore[operator]
        for node in processes.filter(stopped_at__isnull=True).order_by("-last_heartbeat", "id")
    ]
    report.last_heartbeat = processes.order_by("-last_heartbeat", "id").first()
    overdue = (
        DjangoJob.objects.using(using)
        .loadable()
        .filter(
            orphaned_at__isnull=True,
            next_run_time__lt=to_db(now - timedelta(seconds=max_overdue)),
        )
        .order_by("next_run_time", "id")
    )
    report.overdue = list(overdue[:OVERDUE_SHOWN])
    report.overdue_count = (
        len(report.overdue) if len(report.overdue) < OVERDUE_SHOWN else overdue.count()
    )
    return report
