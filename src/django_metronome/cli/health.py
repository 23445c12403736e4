"""
``manage.py metronome health``: a liveness probe, exit 0 if healthy, else 1.

Healthy means: at least one scheduler process not stopped (on this host, with
``--this-host``) has heart-beaten recently, and no job that should run (not
paused, quarantined or orphaned) is overdue. :func:`health_report` finds out,
at a time passed in, so that it can be tested without a clock.
"""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import CommandError

from .. import present
from ..conf import conf
from ..store.db import from_db, to_db, utcnow
from ..store.models import DjangoJob, SchedulerNode
from ..time.text import duration
from .arguments import seconds
from .output import iso, shown
from .shell import Shell

NAME = "health"
HELP = "Check the scheduler for a liveness probe: exit 0 if healthy, else 1."
DESCRIPTION = (
    "Healthy: at least one scheduler process has heart-beaten recently, and no job "
    "that should run (not paused, quarantined or orphaned) is overdue."
)

#: The most overdue jobs a health report names.
OVERDUE_SHOWN = 20


class NotHealthy(CommandError):
    """``health`` found a problem, and its text report is printed already (``reported``)."""

    def __init__(self, message: str, *, reported: bool) -> None:
        super().__init__(message)
        self.reported = reported


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-heartbeat-age",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="How recent a heartbeat must be (default: METRONOME['DEAD_AFTER'], 30).",
    )
    parser.add_argument(
        "--max-overdue",
        type=seconds,
        default=60.0,
        metavar="SECONDS",
        help="How late a job's next run may be (default: 60).",
    )
    parser.add_argument(
        "--this-host",
        action="store_true",
        help="Count only the scheduler processes on this host (by its hostname): for the "
        "probe of one container among several. Overdue jobs still count wherever they are.",
    )


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
        return (self.checked_at - from_db(node.last_heartbeat)).total_seconds()

    def overdue_by(self, job: DjangoJob) -> float:
        return (self.checked_at - from_db(job.next_run_time)).total_seconds()  # type: ignore[operator]

    def problems(self) -> list[str]:
        """What is wrong, one sentence each; empty when healthy."""
        found = []
        if not self.live_nodes:
            found.append(self._no_live_process())
        if self.overdue_count:
            jobs = "; ".join(
                f"{job.id!r} was due at {shown(job.next_run_time, present.job_zone(job))}, "
                f"{present.ago(self.overdue_by(job))}"
                for job in self.overdue
            )
            more = self.overdue_count - len(self.overdue)
            found.append(
                f"{self.overdue_count} job(s) overdue by more than {duration(self.max_overdue)}: "
                f"{jobs}" + (f"; and {more} more" if more > 0 else "") + "."
            )
        return found

    def _no_live_process(self) -> str:
        text = (
            f"No scheduler process has heart-beaten in the last {duration(self.max_heartbeat_age)}"
        )
        if self.hostname is not None:
            text = text.replace("process", f"process on host {self.hostname!r}", 1)
        stale = [node for node, alive in self.nodes if not alive]
        if stale:
            text += ": " + "; ".join(
                f"{node.id} last did at {shown(node.last_heartbeat, UTC)} "
                f"({present.ago(self.heartbeat_age(node))})"
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
                    "next_run_time": iso(job.next_run_time, present.job_zone(job)),
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
        (node, from_db(node.last_heartbeat) >= cutoff)
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


def handle(
    shell: Shell, *, max_heartbeat_age: float | None, max_overdue: float, this_host: bool, **_: Any
) -> None:
    report = health_report(
        shell.using,
        utcnow(),
        max_heartbeat_age=conf.DEAD_AFTER if max_heartbeat_age is None else max_heartbeat_age,
        max_overdue=max_overdue,
        hostname=socket.gethostname() if this_host else None,
    )
    if shell.as_json:
        shell.print_json(report.as_data())
    else:
        print_report(shell, report)
    if not report.healthy:
        wrong = []
        if not report.live_nodes:
            where = "" if report.hostname is None else f" on host {report.hostname!r}"
            wrong.append(
                f"no scheduler process{where} has heart-beaten in the last "
                f"{duration(report.max_heartbeat_age)}"
            )
        if report.overdue_count:
            wrong.append(
                f"{report.overdue_count} job(s) overdue by more than {duration(report.max_overdue)}"
            )
        message = f"Not healthy: {'; '.join(wrong)}."
        if shell.as_json:
            raise CommandError(message)  # the data says it to programs; this, to people
        raise NotHealthy(message, reported=True)


def print_report(shell: Shell, report: HealthReport) -> None:
    if report.healthy:
        shell.print(shell.style.SUCCESS("Healthy."))
    else:
        shell.print(shell.style.ERROR("Not healthy:"))
        for problem in report.problems():
            shell.print(f"- {problem}")
    for node in report.live_nodes:
        shell.print(
            f"Scheduler process {node.id} is alive: last heartbeat "
            f"{present.ago(report.heartbeat_age(node))}."
        )
    if report.healthy:
        shell.print(f"No job is overdue by more than {duration(report.max_overdue)}.")
    for note in report.notes():
        shell.print(shell.style.WARNING(f"Note: {note}"))
