"""
``manage.py metronome run JOB_ID``: ask the scheduler processes to run a job once, now.

The request is a pending ledger row that whichever process can run the job
takes within its poll interval; ``--wait`` watches that row for its outcome.
"""

from __future__ import annotations

import argparse
import getpass
import socket
import time
from datetime import tzinfo
from typing import Any

from django.core.management.base import CommandError

from .. import present
from ..conf import conf
from ..store.models import DjangoJob, DjangoJobExecution, ExecutionStatus
from ..time.text import duration
from .arguments import seconds
from .output import run_data
from .shell import NO_OUTCOME, Shell, command_line

NAME = "run"
HELP = "Ask the scheduler processes to run a job once, now."
DESCRIPTION = (
    "The request goes through the database: whichever scheduler process can run "
    "the job takes it within its poll interval. The job's schedule does not move."
)

#: Seconds between two looks at a run's ledger row while waiting for its outcome.
WAIT_POLL = 0.1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.add_argument(
        "--wait",
        action="store_true",
        help="Wait for the outcome and print it; exit 1 unless the run succeeded, "
        "3 if it has no outcome within the timeout.",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="How long --wait waits (default: APSCHEDULER_RUN_NOW_TIMEOUT, 15).",
    )


def requester() -> str:
    """Who asks for a run from here: ``command line (user@host)``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):
        user = "unknown user"
    return f"command line ({user}@{socket.gethostname()})"


def handle(shell: Shell, *, job_id: str, wait: bool, timeout: float | None, **_: Any) -> None:
    job = shell.job(job_id)
    if job.is_quarantined:
        raise CommandError(
            f"Job {job.id!r} is quarantined ({present.one_line(job.quarantine_reason, 200)}), "
            "so no scheduler process would run it. Fix the cause, or remove the job with "
            f"{command_line('remove', job.id)}."
        )
    if job.orphaned_at is not None:
        raise CommandError(
            f"Job {job.id!r} is orphaned: it is declared in code, and no running scheduler "
            "process declares it, so none would run it. Deploy the code that declares it, "
            f"or remove the job with {command_line('remove', job.id)}."
        )
    zone = present.job_zone(job)
    with shell.acting():
        run = job.run_now(requested_by=requester())
    if not shell.as_json:
        shell.print(
            f"Asked for a run of job {job.id!r} now: ledger row {run.id}, pending until a "
            "scheduler process takes it. The job's schedule does not move."
        )
    if not wait:
        if shell.as_json:
            shell.print_json(run_data(run, zone))
        else:
            shell.print(
                f"Follow it with {command_line('history', '--job', job.id)}, or ask with --wait."
            )
        return
    timeout = conf.RUN_NOW_TIMEOUT if timeout is None else timeout
    if not shell.as_json:
        shell.print(f"Waiting up to {duration(timeout)} for its outcome...")
    run = wait_for_outcome(shell.using, run, timeout)
    report_outcome(shell, job, run, zone, timeout)


def wait_for_outcome(using: str, run: DjangoJobExecution, timeout: float) -> DjangoJobExecution:
    """The run's ledger row once it has an outcome, or as it is after ``timeout`` seconds."""
    ledger = DjangoJobExecution.objects.using(using)
    deadline = time.monotonic() + timeout
    while True:
        current = ledger.filter(pk=run.pk).first()
        if current is None:
            raise CommandError(
                f"Ledger row {run.pk} is gone: it was deleted before its outcome was seen."
            )
        left = deadline - time.monotonic()
        if current.is_final or left <= 0:
            return current
        time.sleep(min(WAIT_POLL, left))


def report_outcome(
    shell: Shell, job: DjangoJob, run: DjangoJobExecution, zone: tzinfo, timeout: float
) -> None:
    """Print the run's outcome; a CommandError unless it succeeded."""
    what = f"Run {run.id} of job {job.id!r}"
    if shell.as_json:
        shell.print_json(run_data(run, zone))
    if run.status == ExecutionStatus.SUCCEEDED:
        if not shell.as_json:
            shell.print(
                shell.style.SUCCESS(f"{what} succeeded (it ran for {duration(run.duration)}).")
            )
        return
    if run.status == ExecutionStatus.PENDING:
        raise CommandError(
            f"{what} is still pending after {duration(timeout)}. {why_pending(shell, job)} "
            "The request stays in the ledger: a scheduler process runs it when it takes it.",
            returncode=NO_OUTCOME,
        )
    if run.task_result_id and run.status in (ExecutionStatus.ENQUEUED, ExecutionStatus.RUNNING):
        where = f"task worker {run.task_worker}" if run.task_worker else "its task queue"
        raise CommandError(
            f"{what} was enqueued on task backend {run.task_backend!r} (queue "
            f"{run.task_queue!r}) as task {run.task_result_id}, and is {run.status} in "
            f"{where} after {duration(timeout)}; it goes on. Its outcome will be in "
            f"{command_line('history', '--job', job.id)}.",
            returncode=NO_OUTCOME,
        )
    if run.status == ExecutionStatus.RUNNING:
        raise CommandError(
            f"{what} is still running after {duration(timeout)}, in scheduler process "
            f"{run.node}; it goes on. Its outcome will be in "
            f"{command_line('history', '--job', job.id)}.",
            returncode=NO_OUTCOME,
        )
    detail = run.exception or run.reason
    if not shell.as_json:
        shell.print(f"{what} {run.status}: {detail}" if detail else f"{what} {run.status}.")
        if run.traceback:
            traceback = run.traceback.rstrip()
            if not traceback.startswith("Traceback"):
                traceback = f"Traceback (most recent call last):\n{traceback}\n{detail}"
            shell.print(traceback)
    raise CommandError(
        f"{what} {run.status}" + (f": {present.one_line(detail, 200)}" if detail else ".")
    )


def why_pending(shell: Shell, job: DjangoJob) -> str:
    """Why nobody has taken the job's run: none can (the admin's words), or all are busy."""
    live = present.live_nodes(shell.using)
    return present.why_nobody_runs(job, live) or (
        "A live scheduler process can run it, but none has taken it yet: they may be busy."
    )
