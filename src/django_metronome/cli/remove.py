"""``manage.py metronome remove JOB_ID``: remove a job, after asking; its history is kept."""

from __future__ import annotations

import argparse
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from django.core.management.base import CommandError

from ..store.jobstore import DjangoJobStore
from ..store.models import DjangoJobExecution, JobSource
from .shell import Shell, command_line

NAME = "remove"
HELP = "Remove a job. Its run history is kept."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.add_argument(
        "--yes",
        "--no-input",
        "--noinput",
        action="store_true",
        dest="yes",
        help="Remove without asking for confirmation.",
    )


def handle(shell: Shell, *, job_id: str, yes: bool, **_: Any) -> None:
    job = shell.job(job_id)
    if not yes:
        name = f" ({job.name})" if job.name else ""
        answer = shell.ask(f"Remove job {job.id!r}{name}? Its run history is kept. [y/N] ")
        if answer is None:
            raise CommandError(
                f"Job {job.id!r} was not removed: add --yes to remove it without a "
                "question (standard input is not a terminal, so none was asked)."
            )
        if answer not in ("y", "yes"):
            if shell.as_json:
                shell.print_json({"id": job.id, "removed": False, "runs_kept": None})
            else:
                shell.print("Not removed.")
            return
    try:
        with shell.acting():
            DjangoJobStore(shell.using).remove_job(job.id)
    except JobLookupError:
        raise CommandError(f"Job {job.id!r} was removed meanwhile, by someone else.") from None
    kept = DjangoJobExecution.objects.using(shell.using).filter(job_id=job.id).count()
    if shell.as_json:
        shell.print_json({"id": job.id, "removed": True, "runs_kept": kept})
        return
    shell.print(
        f"Removed job {job.id!r}. Its run history is kept ({kept} run(s)): "
        f"{command_line('history', '--job', job.id)}."
    )
    if job.source == JobSource.CODE and job.orphaned_at is None:
        shell.print(
            "It is declared in code: a scheduler process that declares it adds it again "
            "when it starts. Remove it from the code too."
        )
