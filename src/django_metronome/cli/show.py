"""``manage.py metronome show JOB_ID``: one job, its next fire times and its last runs."""

from __future__ import annotations

import argparse
from datetime import datetime, tzinfo
from typing import Any

from django.utils import translation

from .. import present
from ..store.db import from_db, utcnow
from ..store.models import DjangoJob, DjangoJobExecution, format_exception
from ..time.preview import MAX_PREVIEW
from .arguments import preview_count, run_count
from .output import iso, job_data, run_data, runs_table, shown, state_words, to_json
from .shell import Shell

NAME = "show"
HELP = "Show one job: its function, state, next fire times and last runs."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.add_argument(
        "--count",
        type=preview_count,
        default=10,
        help=f"How many next fire times to show, 0 to {MAX_PREVIEW} (default: 10).",
    )
    parser.add_argument(
        "--runs",
        type=run_count,
        default=10,
        help="How many of its last runs to show (default: 10).",
    )


def handle(shell: Shell, *, job_id: str, count: int, runs: int, **_: Any) -> None:
    job = shell.job(job_id)
    zone = present.job_zone(job)
    start = utcnow()
    pause_ends = from_db(job.paused_until)
    if pause_ends is not None and pause_ends > start:
        start = pause_ends  # the preview starts where the job will: when its pause ends
    preview_error = ""
    try:
        fires = [fire.astimezone(zone) for fire in job.next_fire_times(count, now=start)]
    except Exception as exc:
        fires, preview_error = [], format_exception(exc)
    recent = list(
        DjangoJobExecution.objects.using(shell.using)
        .filter(job_id=job.id)
        .order_by("-run_time", "-id")[: max(runs, 1)]
    )
    if shell.as_json:
        data = job_data(job, recent[0] if recent else None)
        data.update(
            created_at=iso(job.created_at, zone),
            updated_at=iso(job.updated_at, zone),
            stored_state=job.state,
            next_fire_times=[fire.isoformat() for fire in fires],
            preview_error=preview_error or None,
            recent_runs=[run_data(run, zone) for run in recent[:runs]],
        )
        shell.print_json(data)
        return
    _print_fields(shell, job, zone)
    shell.print()
    _print_fires(shell, job, fires, count, preview_error)
    shell.print()
    shell.print("Stored state (JSON):")
    for line in to_json(job.state).splitlines():
        shell.print(f"  {line}")
    if runs:
        shell.print()
        if recent:
            shell.print(f"Last runs, newest first (times in {job.time_zone}):")
            shell.print(runs_table(recent[:runs], {job.id: zone}))
        else:
            shell.print("No runs yet.")


def _print_fields(shell: Shell, job: DjangoJob, zone: tzinfo) -> None:
    fields = [
        ("Job", job.id),
        ("Name", job.name or "-"),
        ("Function", job.func_ref),
        ("Source", str(job.get_source_display())),
        ("Schedule", present.schedule_words(job)),
        ("Time zone", job.time_zone),
        ("State", state_words(job)),
        ("Next run", shown(job.next_run_time, zone)),
        ("Overlap", present.overlap_words(job, words=translation)),
    ]
    if job.is_paused and job.paused_at is not None:
        fields.append(("Paused", present.pause_words(job, shown(job.paused_at, zone))))
    if job.is_quarantined:
        fields.append(
            ("Quarantined", f"since {shown(job.quarantined_at, zone)}: {job.quarantine_reason}")
        )
    if job.orphaned_at is not None:
        fields.append(
            (
                "Orphaned",
                f"since {shown(job.orphaned_at, zone)}: declared in code, and no "
                "running scheduler process declares it, so it does not run",
            )
        )
    fields += [
        ("Created", shown(job.created_at, zone)),
        ("Updated", shown(job.updated_at, zone)),
    ]
    label_width = max(len(label) for label, _ in fields)
    for label, value in fields:
        shell.print(f"{label.ljust(label_width)}  {value}")


def _print_fires(
    shell: Shell, job: DjangoJob, fires: list[datetime], count: int, preview_error: str
) -> None:
    if preview_error:
        shell.print(f"Next fire times: cannot be computed ({preview_error}).")
        return
    if not count:
        return
    if job.paused_until is not None:
        heading = f"Next {len(fires)} fire times, after the pause ends"
    elif job.is_paused:
        heading = f"Next {len(fires)} fire times by its schedule, once it is resumed"
    else:
        heading = f"Next {len(fires)} fire times"
    shell.print(f"{heading} ({job.time_zone}):" if fires else "No fire time left.")
    for fire in fires:
        shell.print(f"  {fire.isoformat(sep=' ', timespec='seconds')}")
