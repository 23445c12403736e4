"""
``manage.py metronome backfill JOB_ID --from DATETIME --to DATETIME [--overlap ...] [--dry-run]``.

Runs every fire of the job in the range, as if the scheduler had been up: one
pending ledger row per fire, marked backfilled, which the scheduler processes
run oldest first (see :mod:`django_metronome.store.backfill`). Fires that
already have a ledger row are not run again. ``--dry-run`` lists the fires
without writing anything.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from django.core.management.base import CommandError

from .. import present
from ..store.backfill import BACKFILL_OVERLAPS, MAX_BACKFILL, BackfillRefused, backfill
from .arguments import aware, moment
from .output import shown
from .run import requester
from .shell import USAGE, Shell, command_line

NAME = "backfill"
HELP = "Run every fire of a job in a past range, as if the scheduler had been up."
DESCRIPTION = (
    "Each fire of the job from --from to --to (both included) becomes a pending run, "
    "with its scheduled time, that the scheduler processes run oldest first. A fire "
    "that already has a ledger row (it ran, was missed, or was backfilled) is not run "
    f"again. At most {MAX_BACKFILL} fires; --to may not be in the future."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB_ID")
    for flag, what in (("--from", "first"), ("--to", "last")):
        parser.add_argument(
            flag,
            dest="start" if flag == "--from" else "end",
            type=moment,
            required=True,
            metavar="DATETIME",
            help=f"The {what} instant of the range (included), ISO 8601, e.g. "
            "2026-12-01T09:00+01:00. A time without an offset is read in the job's own "
            "time zone.",
        )
    parser.add_argument(
        "--overlap",
        choices=BACKFILL_OVERLAPS,
        default="buffer_all",
        help="What a backfilled fire does while the job runs another: buffer_all (the "
        "default) waits its turn, in order; skip is skipped (and recorded); allow_all runs "
        "at once, whatever the job's max_instances.",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="List the fires, and which already have a ledger row; write nothing.",
    )


def handle(
    shell: Shell,
    *,
    job_id: str,
    start: datetime,
    end: datetime,
    dry_run: bool,
    overlap: str = "buffer_all",
    **_: Any,
) -> None:
    job = shell.job(job_id)
    zone = present.job_zone(job)
    try:
        with shell.acting():
            result = backfill(
                job,
                aware(start, zone),
                aware(end, zone),
                dry_run=dry_run,
                overlap=overlap,
                requested_by=requester(),
                using=shell.using,
            )
    except BackfillRefused as exc:
        raise CommandError(str(exc), returncode=USAGE) from None
    recorded = set(result.recorded)
    if shell.as_json:
        shell.print_json(
            {
                "job_id": job.id,
                "dry_run": dry_run,
                "fires": [fire.isoformat() for fire in result.fires],
                "written": [fire.isoformat() for fire in result.written],
                "already_recorded": [fire.isoformat() for fire in result.recorded],
            }
        )
        return
    if not result.fires:
        shell.print(f"Job {job.id!r} has no fire in that range: nothing to backfill.")
        return
    for fire in result.fires:
        note = "  (already in the ledger: not run again)" if fire in recorded else ""
        shell.print(f"  {shown(fire, zone)}{note}")
    new = len(result.fires) - len(result.recorded)
    if dry_run:
        shell.print(
            f"Dry run: {new} of these {len(result.fires)} fires of job {job.id!r} would run. "
            "Nothing was written."
        )
        return
    shell.print(
        f"Backfilled job {job.id!r}: {len(result.written)} fire(s) wait for a scheduler "
        f"process, {len(result.recorded)} already had a ledger row. Follow them with "
        f"{command_line('history', '--job', job.id)}."
    )
