"""``manage.py metronome pause JOB_ID [--until DATETIME] [--note TEXT]``: stop a job firing."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from django.core.management.base import CommandError

from .. import present
from ..store.db import utcnow
from .arguments import aware, moment
from .output import job_data, shown
from .shell import USAGE, Shell, command_line

NAME = "pause"
HELP = "Pause a job: it does not fire until it is resumed."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.add_argument(
        "--until",
        type=moment,
        metavar="DATETIME",
        help="Resume by itself at this ISO 8601 date and time, e.g. "
        "2026-12-01T09:00+01:00. A time without an offset is read in the job's own "
        "time zone.",
    )
    parser.add_argument(
        "--note",
        default="",
        metavar="TEXT",
        help="Why it is paused: shown, with who paused it and when, until it is resumed.",
    )


def handle(shell: Shell, *, job_id: str, until: datetime | None, note: str = "", **_: Any) -> None:
    job = shell.job(job_id)
    zone = present.job_zone(job)
    if until is not None:
        until = aware(until, zone)
        if until <= utcnow():
            raise CommandError(
                f"--until {until.isoformat()} is not in the future. Leave --until out to "
                "pause with no end, or resume the job with "
                f"{command_line('resume', job.id)}.",
                returncode=USAGE,
            )
    was_paused = job.is_paused
    with shell.acting():
        job.pause(until, note=note)
    if shell.as_json:
        shell.print_json(job_data(job))
    elif until is not None:
        shell.print(
            f"Paused job {job.id!r} until {shown(until, zone)} ({job.time_zone}); "
            "it resumes by itself then."
        )
    else:
        again = " (it was paused already)" if was_paused else ""
        shell.print(
            f"Paused job {job.id!r}{again}: it does not fire until "
            f"{command_line('resume', job.id)}."
        )
