"""``manage.py metronome list``: the jobs, their schedule, next run, state and last outcome."""

from __future__ import annotations

import argparse
from typing import Any

from django.db.models import OuterRef, Q, Subquery

from .. import present
from ..store.models import DjangoJob, DjangoJobExecution
from .output import job_data, shown, state_words, table
from .shell import Shell

NAME = "list"
HELP = "List the jobs: schedule, time zone, next run, state, last outcome."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--paused", action="store_true", help="Only paused jobs.")
    parser.add_argument(
        "--orphaned",
        action="store_true",
        help="Only jobs declared in code that no running scheduler process declares.",
    )
    parser.add_argument(
        "--quarantined", action="store_true", help="Only jobs that cannot be loaded."
    )
    parser.add_argument(
        "--search",
        metavar="TEXT",
        help="Only jobs whose id, name or function contains TEXT (in any case).",
    )


def with_last_run(jobs: Any) -> Any:
    """Annotate each job with the id of its most recent ledger row (``last_run_id``)."""
    latest = (
        DjangoJobExecution.objects.filter(job_id=OuterRef("pk"))
        .order_by("-run_time", "-id")
        .values("id")[:1]
    )
    return jobs.annotate(last_run_id=Subquery(latest))


def handle(
    shell: Shell, *, paused: bool, orphaned: bool, quarantined: bool, search: str | None, **_: Any
) -> None:
    jobs = DjangoJob.objects.using(shell.using).all()
    if paused:
        jobs = jobs.filter(next_run_time__isnull=True)
    if orphaned:
        jobs = jobs.filter(orphaned_at__isnull=False)
    if quarantined:
        jobs = jobs.quarantined()
    if search:
        jobs = jobs.filter(
            Q(id__icontains=search) | Q(name__icontains=search) | Q(func_ref__icontains=search)
        )
    found = list(with_last_run(jobs).in_run_order())
    last_runs = (
        DjangoJobExecution.objects.using(shell.using)
        .only("id", "run_time", "status")
        .in_bulk([job.last_run_id for job in found if job.last_run_id is not None])
    )
    if shell.as_json:
        shell.print_json({"jobs": [job_data(job, last_runs.get(job.last_run_id)) for job in found]})
        return
    if not found:
        filtered = paused or orphaned or quarantined or search
        shell.print("No job matches." if filtered else "No jobs.")
        return
    rows = []
    for job in found:
        last = last_runs.get(job.last_run_id)
        rows.append(
            [
                job.id,
                job.name or "-",
                job.describe_schedule(),
                job.time_zone,
                shown(job.next_run_time, present.job_zone(job)),
                state_words(job),
                last.status if last is not None else "-",
            ]
        )
    headers = ["ID", "NAME", "SCHEDULE", "TIME ZONE", "NEXT RUN", "STATE", "LAST OUTCOME"]
    shell.print(table(headers, rows))
