"""
A job's page: its read-only fields, its next fire times, its last runs, and
why nobody runs it when nobody can.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import translation
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from .. import present
from ..conf import conf
from ..store.audit import job_history
from ..store.db import database_alias, utcnow
from ..store.models import DjangoJob, DjangoJobExecution, ExecutionStatus, Incident, JobChange
from ..time.zones import format_offset
from .actions import JobPermissions
from .base import (
    format_duration,
    format_in_zone,
    format_instant,
    instant_column,
    pending_too_long,
    run_url,
    runs_of_job_url,
    status_badge,
)
from .dashboard import FIRE_PREVIEW
from .forms import PauseUntilForm, zone_choices

#: Runs listed on a job's page.
RECENT_RUNS = 20
#: Changes of the job shown on its page (``manage.py metronome audit`` shows all).
RECENT_CHANGES = 20


@dataclass
class FireRow:
    at: str
    utc: str
    zone_abbr: str
    relative: str
    offset_changed: str = ""


def fire_rows(
    job: DjangoJob, now: datetime, count: int = FIRE_PREVIEW
) -> tuple[list[FireRow], str]:
    """
    The job's next fire times as rows, and an error text when its schedule cannot be read.

    A row whose UTC offset differs from the previous one says so, which shows
    DST changes.
    """
    try:
        fires = job.next_fire_times(count, now=now)
    except Exception as exc:
        return [], _("The schedule cannot be previewed: {error}").format(error=exc)
    rows: list[FireRow] = []
    previous_offset: str | None = None
    zone = present.job_zone(job)
    for fire in fires:
        local = fire.astimezone(zone)
        offset = format_offset(local.utcoffset())
        changed = ""
        if previous_offset is not None and offset != previous_offset:
            changed = _("UTC offset changes from {before} to {after}").format(
                before=previous_offset, after=offset
            )
        previous_offset = offset
        rows.append(
            FireRow(
                at=format_in_zone(fire, job.time_zone),
                utc=fire.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
                zone_abbr=local.tzname() or "",
                relative=present.relative(fire, now, translation),
                offset_changed=changed,
            )
        )
    return rows, ""


@dataclass
class ChangeRow:
    """One change of the job, as its page shows it."""

    row: JobChange
    when: str
    what: str


def change_rows(job: DjangoJob, using: str) -> list[ChangeRow]:
    return [
        ChangeRow(change, format_in_zone(change.at, job.time_zone), present.change_words(change))
        for change in job_history(job.pk, using=using, limit=RECENT_CHANGES)
    ]


@dataclass
class RunRow:
    run: DjangoJobExecution
    url: str
    badge: SafeString
    scheduled: str
    duration: str
    lateness: str
    stale: bool = False


def run_rows(runs: list[DjangoJobExecution], now: datetime) -> list[RunRow]:
    return [
        RunRow(
            run=run,
            url=run_url(run.pk),
            badge=status_badge(run.status, title=run.reason or run.exception),
            scheduled=format_instant(run.run_time),
            duration=format_duration(run.duration),
            lateness=format_duration(run.lateness),
            stale=run.status == ExecutionStatus.PENDING and pending_too_long(run, now),
        )
        for run in runs
    ]


class JobPage(JobPermissions):
    """The page of one job: read-only fields, fire times, last runs, buttons."""

    @admin.display(description=_("paused"))
    def paused(self, obj: DjangoJob) -> str:
        return str(_("yes") if obj.is_paused else _("no"))

    @admin.display(description=_("paused by, when and why"))
    def pause_note_text(self, obj: DjangoJob) -> str:
        if not obj.is_paused or obj.paused_at is None:
            return "-"
        return present.pause_words(obj, format_in_zone(obj.paused_at, obj.time_zone), translation)

    @admin.display(description=_("resumes by itself at"))
    def paused_until_text(self, obj: DjangoJob) -> str:
        return format_in_zone(obj.paused_until, obj.time_zone)

    @admin.display(description=_("state (JSON)"))
    def state_json(self, obj: DjangoJob) -> str:
        text = json.dumps(obj.state, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre class="metronome-json">{}</pre>', text)

    created = instant_column("created_at", _("created"))
    updated = instant_column("updated_at", _("updated"))
    quarantined = instant_column("quarantined_at", _("quarantined at"))
    orphaned = instant_column("orphaned_at", _("orphaned at"))

    def page_context(self, request: HttpRequest, job: DjangoJob) -> dict[str, Any]:
        now = utcnow()
        using = database_alias()
        fires, fires_error = fire_rows(job, now)
        runs = list(
            DjangoJobExecution.objects.using(using)
            .filter(job_id=job.pk)
            .order_by("-run_time", "-id")[:RECENT_RUNS]
        )
        pk = quote(job.pk)
        url = "admin:django_metronome_djangojob_{}"
        return {
            "job": job,
            "next_run_text": format_in_zone(job.next_run_time, job.time_zone),
            "next_run_relative": present.relative(job.next_run_time, now, translation),
            "paused_until_text": format_in_zone(job.paused_until, job.time_zone),
            "pause_words": self.pause_note_text(job) if job.paused_at else "",
            "changes": change_rows(job, using),
            "recent_changes": RECENT_CHANGES,
            "schedule_text": present.schedule_words(job),
            "fires": fires,
            "fires_error": fires_error,
            "runs": run_rows(runs, now),
            "runs_url": runs_of_job_url(job.pk),
            "recent_runs": RECENT_RUNS,
            "nobody_runs": present.why_nobody_runs(
                job, present.live_nodes(using, now), translation
            ),
            "can_run": self.has_run_permission(request) and not job.is_quarantined,
            "can_pause": self.has_pause_permission(request),
            "can_resume": self.has_resume_permission(request) and not job.is_quarantined,
            "run_url": reverse(url.format("run"), args=(pk,)),
            "pause_url": reverse(url.format("pause"), args=(pk,)),
            "pause_until_url": reverse(url.format("pause_until"), args=(pk,)),
            "resume_url": reverse(url.format("resume"), args=(pk,)),
            "pause_form": PauseUntilForm(
                zones=zone_choices([job.time_zone]), form_id="metronome-pause-until-form"
            ),
            "poll_interval": conf.POLL_INTERVAL,
            "can_delete": self.has_delete_permission(request, job),
            "incidents": [
                (incident, present.relative(incident.opened_at, now, translation))
                for incident in Incident.objects.using(using)
                .filter(job_id=job.pk, is_open=True)
                .order_by("opened_at")
            ],
        }

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        history = DjangoJobExecution.objects.using(database_alias()).filter(
            job_id=unquote(object_id)
        )
        context = {"history_count": history.count(), **(extra_context or {})}
        return super().delete_view(request, object_id, context)
