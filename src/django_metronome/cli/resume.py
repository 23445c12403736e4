"""``manage.py metronome resume JOB_ID``: a paused job fires again, from its next fire time."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError
from django.db import DatabaseError

from .. import present
from ..store.models import format_exception
from .output import job_data, shown
from .shell import Shell, command_line

NAME = "resume"
HELP = "Resume a paused job at the next fire time of its schedule."
DESCRIPTION = "Fires it missed while paused are not run."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB_ID")


def handle(shell: Shell, *, job_id: str, **_: Any) -> None:
    job = shell.job(job_id)
    zone = present.job_zone(job)
    if not job.is_paused:
        if shell.as_json:
            shell.print_json(job_data(job))
        else:
            shell.print(
                f"Job {job.id!r} is not paused; its next run is at "
                f"{shown(job.next_run_time, zone)}."
            )
        return
    try:
        with shell.acting():
            upcoming = job.resume()
    except DatabaseError:
        raise
    except Exception as exc:
        raise CommandError(
            f"Job {job.id!r} cannot be resumed: its schedule cannot be read "
            f"({format_exception(exc)})."
        ) from exc
    if upcoming is None:
        raise CommandError(
            f"Job {job.id!r} was not resumed: its schedule has ended, so it has no fire "
            "left and stays paused. Remove it with "
            f"{command_line('remove', job.id)} if it is no longer wanted."
        )
    if shell.as_json:
        shell.print_json(job_data(job))
    else:
        shell.print(f"Resumed job {job.id!r}: next run at {shown(upcoming, zone)}.")
