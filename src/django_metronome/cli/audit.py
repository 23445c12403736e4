"""``manage.py metronome audit JOB_ID``: a job's changes, newest first (the audit trail)."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from .. import present
from ..store.audit import job_history
from ..store.models import DjangoJob, JobChange
from ..time.zones import zone_or_utc
from .arguments import positive
from .output import iso, shown, table
from .shell import Shell

NAME = "audit"
HELP = "Show a job's changes, newest first: who, when, from where, and what changed."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.add_argument(
        "--limit",
        type=positive,
        default=50,
        help="Show at most this many changes (default: 50).",
    )
    parser.epilog = (
        "A removed job's history stays: give its id. Times are shown in the job's own "
        "zone (UTC once it is removed)."
    )


def change_data(change: JobChange, zone: Any) -> dict[str, Any]:
    """A change as ``--json`` shows it."""
    return {
        "id": change.id,
        "job_id": change.job_id,
        "job_name": change.job_name,
        "at": iso(change.at, zone),
        "action": change.action,
        "origin": change.origin,
        "actor": change.actor,
        "note": change.note,
        "before": change.before,
        "after": change.after,
    }


def handle(shell: Shell, *, job_id: str, limit: int, **_options: Any) -> None:
    job = DjangoJob.objects.using(shell.using).filter(pk=job_id).first()
    zone = present.job_zone(job) if job is not None else zone_or_utc("UTC")
    changes = list(job_history(job_id, using=shell.using, limit=limit))
    if job is None and not changes:
        shell.job(job_id)  # the error naming close ids
        raise CommandError(f"There is no job with the id {job_id!r}, and no change of one.")
    if shell.as_json:
        shell.print_json([change_data(change, zone) for change in changes])
        return
    if not changes:
        shell.print(_("No change of job {job} is recorded.").format(job=repr(job_id)))
        return
    headers = [
        _("When"),
        _("Action"),
        pgettext("where a change came from", "From"),
        _("Who"),
        _("What changed"),
        _("Note"),
    ]
    rows = [
        [
            shown(change.at, zone),
            str(change.get_action_display()),
            str(change.get_origin_display()),
            change.actor or "-",
            present.one_line(present.change_words(change), 100) or "-",
            present.one_line(change.note, 60) or "-",
        ]
        for change in changes
    ]
    shell.print(_("Changes of job {job}, newest first:").format(job=repr(job_id)))
    shell.print(table(headers, rows))
