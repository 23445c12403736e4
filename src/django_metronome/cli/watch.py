"""``manage.py metronome watch``: evaluate the expectations now, notify, list open incidents."""

from __future__ import annotations

import argparse
from typing import Any

from django.utils.translation import gettext as _

from ..alerts import evaluate
from ..store.db import utcnow
from ..store.models import Incident
from .shell import Shell

NAME = "watch"
HELP = "Evaluate the jobs' expectations now, send the notifications, list the open incidents."
DESCRIPTION = (
    "Schedulers evaluate every METRONOME['WATCH_INTERVAL'] themselves; run this from cron or "
    "a Kubernetes CronJob as well so that 'no scheduler alive' is noticed when none runs."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def handle(shell: Shell, **_options: Any) -> None:
    changes = evaluate(shell.using)
    now = utcnow()
    incidents = list(
        Incident.objects.using(shell.using).filter(is_open=True).order_by("opened_at", "id")
    )
    if shell.as_json:
        shell.print_json(
            {
                "opened": [incident.pk for incident in changes.opened],
                "resolved": [incident.pk for incident in changes.resolved],
                "open": [
                    {
                        "id": incident.pk,
                        "job_id": incident.job_id or None,
                        "kind": incident.kind,
                        "detail": incident.detail,
                        "opened_at": incident.opened_at.isoformat(),
                        "open_seconds": round((now - incident.opened_at).total_seconds(), 3),
                    }
                    for incident in incidents
                ],
            }
        )
        return
    shell.print(
        _("Opened %(opened)d incident(s), resolved %(resolved)d.")
        % {"opened": len(changes.opened), "resolved": len(changes.resolved)}
    )
    if not incidents:
        shell.print(_("No open incident."))
    for incident in incidents:
        shell.print(f"{incident.opened_at.isoformat()}  {incident}: {incident.detail}")
