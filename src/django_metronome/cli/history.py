"""``manage.py metronome history``: runs from the ledger, newest first, filtered."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from typing import Any

from django.core.management.base import CommandError

from ..conf import conf
from ..store.db import to_db
from ..store.models import DjangoJob, DjangoJobExecution, ExecutionStatus
from ..time.zones import zone_or_utc
from .arguments import aware, moment, positive
from .output import run_data, runs_table
from .shell import USAGE, Shell

NAME = "history"
HELP = "List runs from the ledger, newest first."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--job", action="append", metavar="JOB_ID", help="Only this job's runs (repeatable)."
    )
    parser.add_argument(
        "--status",
        action="append",
        choices=ExecutionStatus.values,
        metavar="STATUS",
        help=f"Only runs with this status (repeatable): {', '.join(ExecutionStatus.values)}.",
    )
    parser.add_argument(
        "--since",
        type=moment,
        metavar="DATETIME",
        help="Only runs scheduled at or after this ISO 8601 time.",
    )
    parser.add_argument(
        "--until",
        type=moment,
        metavar="DATETIME",
        help="Only runs scheduled before this ISO 8601 time.",
    )
    parser.add_argument(
        "--limit",
        type=positive,
        default=50,
        help="Show at most this many runs (default: 50).",
    )
    parser.epilog = (
        "Times without an offset are read in METRONOME['TIME_ZONE'] (by default "
        "TIME_ZONE). Times are shown in each job's own zone (UTC for removed jobs)."
    )


def zones_of(using: str, job_ids: Iterable[str]) -> dict[str, tzinfo]:
    """The zones of the jobs that still exist among ``job_ids``."""
    rows = DjangoJob.objects.using(using).filter(pk__in=set(job_ids)).values_list("id", "state")
    return {
        job_id: zone_or_utc(state.get("timezone") if isinstance(state, dict) else None)
        for job_id, state in rows
    }


def handle(
    shell: Shell,
    *,
    job: list[str] | None,
    status: list[str] | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    **_: Any,
) -> None:
    runs = DjangoJobExecution.objects.using(shell.using).all()
    if job:
        runs = runs.filter(job_id__in=job)
    if status:
        runs = runs.filter(status__in=status)
    default_zone = zone_or_utc(conf.TIME_ZONE)
    since = None if since is None else aware(since, default_zone)
    until = None if until is None else aware(until, default_zone)
    if since is not None and until is not None and since >= until:
        raise CommandError(
            f"--since {since.isoformat()} is not before --until {until.isoformat()}.",
            returncode=USAGE,
        )
    if since is not None:
        runs = runs.filter(run_time__gte=to_db(since))
    if until is not None:
        runs = runs.filter(run_time__lt=to_db(until))
    found = list(runs.order_by("-run_time", "-id")[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    zones = zones_of(shell.using, {run.job_id for run in found})
    if shell.as_json:
        shell.print_json({"runs": [run_data(run, zones.get(run.job_id, UTC)) for run in found]})
        return
    if not found:
        shell.print("No runs.")
        return
    shell.print(runs_table(found, zones))
    shell.print(
        f"{len(found)} run(s), newest first"
        + (" (there are more: raise --limit)" if more else "")
        + ". Times are in each job's own zone (UTC for removed jobs)."
    )
