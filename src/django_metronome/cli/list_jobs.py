"""
``manage.py metronome list``: the jobs, their schedule, next run, state and last outcome.

The jobs are read and printed in chunks of :data:`CHUNK`, each chunk one
short query that continues where the last one stopped (the due index read
from a key, never an ``OFFSET``): a million jobs print in constant memory,
and ``--limit`` stops after the first few.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

from django.db.models import OuterRef, Q, Subquery

from .. import present
from ..store.models import DjangoJob, DjangoJobExecution
from .arguments import positive
from .output import StreamedTable, job_data, shown, state_words
from .shell import Shell

NAME = "list"
HELP = "List the jobs: schedule, time zone, next run, state, last outcome."

#: Jobs read per query.
CHUNK = 1000


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
    parser.add_argument(
        "--limit",
        type=positive,
        metavar="N",
        help="Show only the first N jobs in run order (default: every job, printed as read).",
    )


def with_last_run(jobs: Any) -> Any:
    """Annotate each job with the id of its most recent ledger row (``last_run_id``)."""
    latest = (
        DjangoJobExecution.objects.filter(job_id=OuterRef("pk"))
        .order_by("-run_time", "-id")
        .values("id")[:1]
    )
    return jobs.annotate(last_run_id=Subquery(latest))


def chunks_in_run_order(jobs: Any, size: int = CHUNK) -> Iterator[list[Any]]:
    """
    ``jobs`` in run order (earliest next run first, paused last, ties by id), in
    lists of at most ``size``; each list one query that starts after the last
    job of the one before (a keyset, on the due index).
    """
    scheduled = jobs.filter(next_run_time__isnull=False)
    after: Any = None
    while True:
        part = scheduled
        if after is not None:
            when = after.next_run_time
            part = part.filter(next_run_time__gte=when).filter(
                Q(next_run_time__gt=when) | Q(pk__gt=after.pk)
            )
        rows = list(with_last_run(part).order_by("next_run_time", "id")[:size])
        if rows:
            yield rows
        if len(rows) < size:
            break
        after = rows[-1]
    paused = jobs.filter(next_run_time__isnull=True)
    last_id: str | None = None
    while True:
        part = paused if last_id is None else paused.filter(pk__gt=last_id)
        rows = list(with_last_run(part).order_by("id")[:size])
        if rows:
            yield rows
        if len(rows) < size:
            break
        last_id = rows[-1].pk


def jobs_to_show(jobs: Any, limit: int | None) -> Iterator[list[Any]]:
    """The chunks of :func:`chunks_in_run_order`, cut after ``limit`` jobs."""
    left = limit
    size = CHUNK if limit is None else min(CHUNK, limit)
    for rows in chunks_in_run_order(jobs, size):
        if left is not None:
            rows = rows[:left]
            left -= len(rows)
        yield rows
        if left == 0:
            return


def handle(
    shell: Shell,
    *,
    paused: bool,
    orphaned: bool,
    quarantined: bool,
    search: str | None,
    limit: int | None = None,
    **_: Any,
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
    printer = JsonPrinter(shell) if shell.as_json else TextPrinter(shell)
    shown_count = 0
    for rows in jobs_to_show(jobs, limit):
        last_runs = (
            DjangoJobExecution.objects.using(shell.using)
            .only("id", "run_time", "status")
            .in_bulk([job.last_run_id for job in rows if job.last_run_id is not None])
        )
        printer.chunk(rows, last_runs)
        shown_count += len(rows)
    more = limit is not None and shown_count == limit and jobs_after(jobs, limit)
    printer.end(shown_count, more, filtered=bool(paused or orphaned or quarantined or search))


def jobs_after(jobs: Any, limit: int) -> bool:
    """Whether there are more than ``limit`` jobs (reads at most ``limit + 1`` keys)."""
    return jobs.order_by().values("pk")[limit : limit + 1].exists()


class TextPrinter:
    """The jobs as a table, printed chunk by chunk."""

    headers = ["ID", "NAME", "SCHEDULE", "TIME ZONE", "NEXT RUN", "STATE", "LAST OUTCOME"]

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.table = StreamedTable(self.headers)

    def chunk(self, jobs: list[Any], last_runs: dict[Any, DjangoJobExecution]) -> None:
        rows = []
        for job in jobs:
            last = last_runs.get(job.last_run_id)
            rows.append(
                [
                    job.id,
                    job.name or "-",
                    present.schedule_words(job),
                    job.time_zone,
                    shown(job.next_run_time, present.job_zone(job)),
                    state_words(job),
                    last.status if last is not None else "-",
                ]
            )
        self.shell.print("\n".join(self.table.lines(rows)))

    def end(self, count: int, more: bool, *, filtered: bool) -> None:
        if not count:
            self.shell.print("No job matches." if filtered else "No jobs.")
        elif more:
            self.shell.print(
                f"The first {count} job(s) in run order; there are more: raise --limit."
            )


class JsonPrinter:
    """``{"jobs": [...]}``, written job by job: the same text as one ``json.dumps``."""

    def __init__(self, shell: Shell) -> None:
        self.out = shell.stdout
        self.count = 0

    def chunk(self, jobs: list[Any], last_runs: dict[Any, DjangoJobExecution]) -> None:
        pieces = []
        for job in jobs:
            text = json.dumps(
                job_data(job, last_runs.get(job.last_run_id)), indent=2, ensure_ascii=False
            )
            opening = '{\n  "jobs": [\n' if self.count == 0 else ",\n"
            pieces.append(opening + "\n".join("    " + line for line in text.splitlines()))
            self.count += 1
        if pieces:
            self.out.write("".join(pieces), style_func=str, ending="")

    def end(self, count: int, more: bool, *, filtered: bool) -> None:
        self.out.write("\n  ]\n}" if self.count else '{\n  "jobs": []\n}', style_func=str)
