"""
``manage.py metronome health``: a liveness probe, exit 0 if healthy, else 1.

Healthy means: at least one scheduler process not stopped (on this host, with
``--this-host``) has heart-beaten recently, and no job that should run (not
paused, quarantined or orphaned) is overdue. :func:`health_report` finds out,
at a time passed in, so that it can be tested without a clock; it is
django-health-check's plugin's too (:mod:`django_metronome.observe.health`).
"""

from __future__ import annotations

import argparse
import socket
from typing import Any

from django.core.management.base import CommandError

from .. import present
from ..conf import conf
from ..observe.health import HealthReport, health_report
from ..store.db import utcnow
from ..time.text import duration
from .arguments import seconds
from .shell import Shell

NAME = "health"
HELP = "Check the scheduler for a liveness probe: exit 0 if healthy, else 1."
DESCRIPTION = (
    "Healthy: at least one scheduler process has heart-beaten recently, and no job "
    "that should run (not paused, quarantined or orphaned) is overdue."
)


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
