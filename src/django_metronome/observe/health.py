"""
Is the scheduler healthy? One answer for ``manage.py metronome health`` and django-health-check.

:func:`health_report` reads, at a time passed in, what both ask about: the
scheduler processes not stopped and whether each heart-beat recently, the
jobs that should run (not paused, quarantined or orphaned) whose next run
time is overdue, and the quarantined jobs. :class:`HealthReport` says what it
found, as sentences (:meth:`~HealthReport.problems`,
:meth:`~HealthReport.notes`) and as data (:meth:`~HealthReport.as_data`).

Healthy, for the command's liveness probe, means a live process and nothing
overdue: restarting a container would not fix a quarantined job, so the
command does not fail on one; django-health-check's plugin
(:mod:`.health_check`) reports it as a failure of a check of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from .. import present
from ..conf import conf
from ..store.db import from_db, to_db
from ..store.models import DjangoJob, SchedulerNode
from ..time.text import duration

__all__ = ["JOBS_NAMED", "HealthReport", "health_report"]

#: The most overdue (and quarantined) jobs a health report names.
JOBS_NAMED = 20


def _local(value: datetime | None, zone: tzinfo) -> datetime | None:
    return None if value is None else from_db(value).astimezone(zone)


def _shown(value: datetime | None, zone: tzinfo) -> str:
    """A time for people, as the command line shows it: ``2026-11-25 08:00:00+01:00``."""
    when = _local(value, zone)
    return "-" if when is None else when.isoformat(sep=" ", timespec="seconds")


def _iso(value: datetime | None, zone: tzinfo) -> str | None:
    when = _local(value, zone)
    return None if when is None else when.isoformat()


@dataclass
class HealthReport:
    """What a health check found at ``checked_at``."""

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
    #: The first quarantined jobs (by id), and how many there are.
    quarantined: list[DjangoJob] = field(default_factory=list)
    quarantined_count: int = 0
    #: A process whose clock is further off than this (seconds) is noted.
    max_clock_offset: float = 1.0

    @property
    def live_nodes(self) -> list[SchedulerNode]:
        return [node for node, alive in self.nodes if alive]

    @property
    def healthy(self) -> bool:
        """A live process and nothing overdue: what a liveness probe asks."""
        return bool(self.live_nodes) and not self.overdue_count

    def heartbeat_age(self, node: SchedulerNode) -> float:
        return (self.checked_at - from_db(node.last_heartbeat)).total_seconds()

    def overdue_by(self, job: DjangoJob) -> float:
        return (self.checked_at - from_db(job.next_run_time)).total_seconds()  # type: ignore[operator]

    def problems(self) -> list[str]:
        """What is wrong, one sentence each; empty when healthy."""
        found = []
        if not self.live_nodes:
            found.append(self.no_live_process())
        if self.overdue_count:
            found.append(self.overdue_jobs())
        return found

    def overdue_jobs(self) -> str:
        """The overdue jobs, the most overdue first, as one sentence."""
        jobs = "; ".join(
            f"{job.id!r} was due at {_shown(job.next_run_time, present.job_zone(job))}, "
            f"{present.ago(self.overdue_by(job))}"
            for job in self.overdue
        )
        more = self.overdue_count - len(self.overdue)
        return (
            f"{self.overdue_count} job(s) overdue by more than {duration(self.max_overdue)}: "
            f"{jobs}" + (f"; and {more} more" if more > 0 else "") + "."
        )

    def no_live_process(self) -> str:
        """Why no process counts as alive, as one sentence."""
        text = (
            f"No scheduler process has heart-beaten in the last {duration(self.max_heartbeat_age)}"
        )
        if self.hostname is not None:
            text = text.replace("process", f"process on host {self.hostname!r}", 1)
        stale = [node for node, alive in self.nodes if not alive]
        if stale:
            text += ": " + "; ".join(
                f"{node.id} last did at {_shown(node.last_heartbeat, UTC)} "
                f"({present.ago(self.heartbeat_age(node))})"
                for node in stale
            )
        elif self.last_heartbeat is not None:
            text += (
                f": the last one ({self.last_heartbeat.id}) stopped at "
                f"{_shown(self.last_heartbeat.stopped_at, UTC)}"
            )
        else:
            text += ": none has ever run on this database"
            if self.hostname is not None:
                text = text.replace("on this database", "here")
        return text + ". Start one with `manage.py runscheduler`."

    def quarantined_jobs(self) -> str:
        """The quarantined jobs, as one sentence; empty when there are none."""
        if not self.quarantined_count:
            return ""
        named = ", ".join(repr(job.id) for job in self.quarantined)
        more = self.quarantined_count - len(self.quarantined)
        return (
            f"{self.quarantined_count} job(s) quarantined (not run until fixed): {named}"
            + (f" and {more} more" if more > 0 else "")
            + "."
        )

    def notes(self) -> list[str]:
        """
        Not wrong yet, but worth knowing: silent processes while others are
        alive, and processes whose clock is off from the database's.
        """
        found = [
            f"Scheduler process {node.id}'s clock is {present.clock_offset(offset)}; it "
            f"schedules by the database's clock, but fix the time synchronisation of "
            f"{node.hostname}."
            for node in self.live_nodes
            if (offset := node.clock_offset) is not None and abs(offset) > self.max_clock_offset
        ]
        if not self.live_nodes:
            return found
        return found + [
            f"Scheduler process {node.id} has not heart-beaten for "
            f"{duration(self.heartbeat_age(node))}; the live ones will presume it dead."
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
                    "started_at": _iso(node.started_at, UTC),
                    "last_heartbeat": _iso(node.last_heartbeat, UTC),
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
                    "next_run_time": _iso(job.next_run_time, present.job_zone(job)),
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
    max_heartbeat_age: float | None = None,
    max_overdue: float = 60.0,
    hostname: str | None = None,
) -> HealthReport:
    """
    Check the scheduler processes' heartbeats and the jobs' next run times at ``now``.

    Healthy means: at least one process not stopped (on ``hostname``, if
    given) has heart-beaten within ``max_heartbeat_age`` seconds (default:
    ``DEAD_AFTER``), and no job that should run (not paused, quarantined or
    orphaned) has a next run time more than ``max_overdue`` seconds before
    ``now``. The quarantined jobs are counted too. At most five queries,
    whatever the number of jobs and processes.
    """
    if max_heartbeat_age is None:
        max_heartbeat_age = conf.DEAD_AFTER
    report = HealthReport(
        now, max_heartbeat_age, max_overdue, hostname, max_clock_offset=conf.MAX_CLOCK_OFFSET
    )
    processes = SchedulerNode.objects.using(using)
    if hostname is not None:
        processes = processes.filter(hostname=hostname)
    cutoff = now - timedelta(seconds=max_heartbeat_age)
    report.nodes = [
        (node, from_db(node.last_heartbeat) >= cutoff)
        for node in processes.filter(stopped_at__isnull=True).order_by("-last_heartbeat", "id")
    ]
    if not report.nodes:
        report.last_heartbeat = processes.order_by("-last_heartbeat", "id").first()
    jobs = DjangoJob.objects.using(using)
    overdue = (
        jobs.loadable()
        .filter(
            orphaned_at__isnull=True,
            next_run_time__lt=to_db(now - timedelta(seconds=max_overdue)),
        )
        .order_by("next_run_time", "id")
    )
    report.overdue, report.overdue_count = _first_and_count(overdue)
    report.quarantined, report.quarantined_count = _first_and_count(
        jobs.quarantined().order_by("id")
    )
    return report


def _first_and_count(jobs: Any) -> tuple[list[DjangoJob], int]:
    """The first :data:`JOBS_NAMED` of ``jobs``, and how many there are (counted only if more)."""
    first = list(jobs[:JOBS_NAMED])
    return first, len(first) if len(first) < JOBS_NAMED else jobs.count()
