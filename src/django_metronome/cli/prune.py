"""``manage.py metronome prune``: delete finished runs from the ledger, by age and by count."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.management.base import CommandError

from ..conf import conf
from ..store import retention
from ..store.db import utcnow
from ..time.text import duration
from . import arguments
from .output import total_seconds
from .shell import USAGE, Shell

NAME = "prune"
HELP = "Delete finished runs from the history, by age and/or by count per job."
DESCRIPTION = (
    "Without options, applies METRONOME['HISTORY_MAX_AGE'] and "
    "['HISTORY_MAX_PER_JOB']. Running and pending runs are never deleted."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--older-than",
        type=arguments.duration,
        metavar="DURATION",
        help="Delete runs scheduled longer ago than this: 30d, 12h, 90m, 3600s, 2w, "
        "1d12h (default: METRONOME['HISTORY_MAX_AGE']).",
    )
    parser.add_argument(
        "--keep-per-job",
        type=arguments.positive,
        metavar="N",
        help="Keep only each job's N most recent runs (default: METRONOME['HISTORY_MAX_PER_JOB']).",
    )


def handle(
    shell: Shell, *, older_than: timedelta | None, keep_per_job: int | None, **_: Any
) -> None:
    if older_than is None and conf.HISTORY_MAX_AGE is not None:
        older_than = timedelta(seconds=conf.HISTORY_MAX_AGE)
    if keep_per_job is None:
        keep_per_job = conf.HISTORY_MAX_PER_JOB
    if older_than is None and keep_per_job is None:
        raise CommandError(
            "Nothing to prune by: give --older-than (e.g. 30d) and/or --keep-per-job N, "
            "or set METRONOME['HISTORY_MAX_AGE'] (seconds) or "
            "METRONOME['HISTORY_MAX_PER_JOB'] in the settings.",
            returncode=USAGE,
        )
    if keep_per_job is not None and keep_per_job < 1:
        raise CommandError(
            f"METRONOME['HISTORY_MAX_PER_JOB'] is {keep_per_job}: it must be 1 or more "
            "(or None, for no count limit).",
            returncode=USAGE,
        )
    now = utcnow()
    by_age = by_count = 0
    if older_than is not None:
        age = older_than
        by_age = until_none_left(lambda: retention.prune_older_than(shell.using, now, age))
        # The audit trail of job changes is kept for the same age.
        until_none_left(lambda: retention.prune_changes_older_than(shell.using, now, age))
    if keep_per_job is not None:
        keep = keep_per_job
        by_count = until_none_left(lambda: retention.prune_per_job(shell.using, keep))
    if shell.as_json:
        shell.print_json(
            {
                "deleted": by_age + by_count,
                "deleted_by_age": by_age,
                "deleted_by_count": by_count,
                "older_than_seconds": total_seconds(older_than),
                "keep_per_job": keep_per_job,
            }
        )
        return
    parts = []
    if older_than is not None:
        parts.append(f"{by_age} scheduled more than {duration(older_than)} ago")
    if keep_per_job is not None:
        parts.append(f"{by_count} beyond the {keep_per_job} most recent of each job")
    shell.print(
        f"Deleted {by_age + by_count} finished run(s) from the history: "
        f"{' and '.join(parts)}. Running and pending runs are never deleted."
    )


def until_none_left(step: Callable[[], int]) -> int:
    """Call a bounded pruning step again until it finds nothing more to delete."""
    total = 0
    while deleted := step():
        total += deleted
    return total
