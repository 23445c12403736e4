"""
The run ledger in the admin: read-only rows, newest first, and a pending run's
page saying why it still waits.

Rows go through retention, or with the delete permission.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.utils import translation
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .. import present
from ..conf import conf
from ..store.db import database_alias, from_db, utcnow
from ..store.models import DjangoJob, DjangoJobExecution, ExecutionStatus
from .base import (
    MetronomeAdmin,
    format_duration,
    instant_column,
    job_url,
    pending_too_long,
    status_badge,
)
from .filters import JobIdFilter, NodeFilter, RunTimeFilter, TaskBackendFilter
from .schedule_fields import RunScheduleFields


@admin.register(DjangoJobExecution)
class DjangoJobExecutionAdmin(RunScheduleFields, MetronomeAdmin):
    list_display = [
        "run",
        "status_badge",
        "job_link",
        "scheduled",
        "lateness_text",
        "duration_text",
        "node_text",
        "task_text",
        "manual",
    ]
    list_display_links = ["run"]
    list_filter = ["status", JobIdFilter, RunTimeFilter, "manual", NodeFilter, TaskBackendFilter]
    ordering = ["-run_time", "-id"]
    # Sortable only by what an index orders (run, job, scheduled time): sorting a
    # million rows by their status or duration would read them all.
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "job_link",
                    "job_name",
                    "status_badge",
                    "manual",
                    "scheduled",
                    "scheduled_utc",
                    "reason",
                ]
            },
        ),
        (
            pgettext_lazy("fieldset", "Run"),
            {
                "fields": [
                    "node",
                    "claimed",
                    "started",
                    "finished",
                    "duration_text",
                    "lateness_text",
                ]
            },
        ),
        (_("Failure"), {"fields": ["exception_text", "traceback_text"]}),
    ]
    #: Where a django.tasks job's fire went (docs/tasks.md): shown for such fires only.
    task_fieldset: Any = (
        pgettext_lazy("fieldset", "Task"),
        {"fields": ["task_backend", "task_queue", "task_result_id", "task_worker"]},
    )
    readonly_fields = [
        "job_link",
        "status_badge",
        "scheduled",
        "scheduled_utc",
        "claimed",
        "started",
        "finished",
        "duration_text",
        "lateness_text",
        "exception_text",
        "traceback_text",
    ]
    change_list_template = "admin/django_metronome/djangojobexecution/change_list.html"
    change_form_template = "admin/django_metronome/djangojobexecution/change_form.html"

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and obj.task_backend:
            fieldsets.insert(-1, self.task_fieldset)
        return fieldsets

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # No join on jobs (a removed job's rows would vanish from an inner join):
        # whether the job still exists is one primary-key probe per row of the page.
        jobs = DjangoJob.objects.using(database_alias()).filter(pk=OuterRef("job_id"))
        return super().get_queryset(request).annotate(job_exists=Exists(jobs))

    @admin.display(description=_("run"), ordering="id")
    def run(self, obj: DjangoJobExecution) -> str:
        return f"#{obj.pk}"

    @admin.display(description=_("status"))
    def status_badge(self, obj: DjangoJobExecution) -> str:
        return status_badge(obj.status, title=obj.reason or obj.exception)

    @admin.display(description=_("job"), ordering="job_id")
    def job_link(self, obj: DjangoJobExecution) -> str:
        label = format_html('<code class="metronome-id">{}</code>', obj.job_id)
        if obj.job_name and obj.job_name != obj.job_id:
            label = format_html("{} {}", obj.job_name, label)
        exists = getattr(obj, "job_exists", None)
        if exists is None:
            exists = DjangoJob.objects.using(database_alias()).filter(pk=obj.job_id).exists()
        if exists:
            return format_html('<a href="{}">{}</a>', job_url(obj.job_id), label)
        return format_html('{} <span class="metronome-muted">(removed)</span>', label)

    @admin.display(description=_("scheduled (UTC)"))
    def scheduled_utc(self, obj: DjangoJobExecution) -> str:
        value = from_db(obj.run_time)
        return value.isoformat(sep=" ") if value else ""

    @admin.display(description=_("lateness"))
    def lateness_text(self, obj: DjangoJobExecution) -> str:
        return format_duration(obj.lateness)

    @admin.display(description=_("duration"))
    def duration_text(self, obj: DjangoJobExecution) -> str:
        return format_duration(obj.duration)

    @admin.display(description=_("process"))
    def node_text(self, obj: DjangoJobExecution) -> str:
        return obj.node

    @admin.display(description=_("task"))
    def task_text(self, obj: DjangoJobExecution) -> str:
        """Where a task job's fire went (backend/queue, then the worker); blank for the others."""
        if not obj.task_backend:
            return ""
        where = f"{obj.task_backend}/{obj.task_queue}" if obj.task_queue else obj.task_backend
        label = format_html(
            '<code class="metronome-id" title="{}">{}</code>', obj.task_result_id or "", where
        )
        if not obj.task_worker:
            return label
        return format_html('{}<br><span class="metronome-muted">{}</span>', label, obj.task_worker)

    scheduled = instant_column("run_time", _("scheduled"), ordering="run_time")
    claimed = instant_column("claimed_at", _("claimed"))
    started = instant_column("started_at", _("started"))
    finished = instant_column("finished_at", _("finished"))

    @admin.display(description=_("exception"))
    def exception_text(self, obj: DjangoJobExecution) -> str:
        if not obj.exception:
            return ""
        return format_html('<pre class="metronome-pre">{}</pre>', obj.exception)

    @admin.display(description=_("traceback"))
    def traceback_text(self, obj: DjangoJobExecution) -> str:
        if not obj.traceback:
            return ""
        return format_html('<pre class="metronome-pre metronome-traceback">{}</pre>', obj.traceback)

    def page_context(self, request: HttpRequest, run: DjangoJobExecution) -> dict[str, Any]:
        """A pending run's page says how long it has waited, and why if nobody can take it."""
        if run.status != ExecutionStatus.PENDING:
            return {}
        now = utcnow()
        job = DjangoJob.objects.using(database_alias()).filter(pk=run.job_id).first()
        waited = (now - from_db(run.run_time)).total_seconds()
        reason = ""
        if job is not None:
            reason = present.why_nobody_runs(
                job, present.live_nodes(database_alias(), now), translation
            )
        return {
            "pending_for": format_duration(max(waited, 0.0)),
            "pending_stale": pending_too_long(run, now),
            "pending_reason": reason,
            "poll_interval": conf.POLL_INTERVAL,
            "run_now_timeout": conf.RUN_NOW_TIMEOUT,
        }
