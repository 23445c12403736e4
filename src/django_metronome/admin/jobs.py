"""
The jobs in the admin: their list, and (through its mixins) a job's page,
its buttons, the bulk actions and the dashboard's address.

Jobs are never edited as rows here: their function and JSON state are shown
read-only, and they change only through four verbs, each a POST with CSRF
protection and its own model permission (:mod:`.actions`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.html import format_html

from .. import present
from ..store.db import database_alias, utcnow
from ..store.models import DjangoJob, DjangoJobExecution
from . import dashboard
from .actions import JobButtons
from .base import (
    format_in_zone,
    run_url,
    state_flags,
    status_badge,
)
from .filters import (
    LastOutcomeFilter,
    NextRunFilter,
    OrphanedFilter,
    PausedFilter,
    QuarantinedFilter,
)
from .job_page import JobPage


@admin.register(DjangoJob)
class DjangoJobAdmin(JobButtons, JobPage):
    # No time zone column: the schedule in words ends with the zone, and the next run
    # has its offset; so the list fits 1,400 px with the navigation sidebar open.
    list_display = ["job", "schedule", "next_run", "last_outcome", "job_state"]
    list_filter = [
        NextRunFilter,
        PausedFilter,
        "source",
        OrphanedFilter,
        QuarantinedFilter,
        LastOutcomeFilter,
    ]
    search_fields = ["id", "name", "func_ref"]
    search_help_text = "Search by id, name or function."
    ordering = [F("next_run_time").asc(nulls_last=True), "id"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    actions = ["run_now", "pause", "pause_until", "resume"]
    fieldsets = [
        (None, {"fields": ["id", "name", "source", "func_ref"]}),
        (
            "Schedule",
            {"fields": ["schedule", "zone", "next_run", "paused", "paused_until_text"]},
        ),
        ("State", {"fields": ["state_json"]}),
        (
            "Book-keeping",
            {
                "classes": ["collapse"],
                "fields": [
                    "created",
                    "updated",
                    "quarantined",
                    "quarantine_reason",
                    "orphaned",
                ],
            },
        ),
    ]
    readonly_fields = [
        "schedule",
        "zone",
        "next_run",
        "paused",
        "paused_until_text",
        "state_json",
        "created",
        "updated",
        "quarantined",
        "orphaned",
    ]
    change_list_template = "admin/django_metronome/djangojob/change_list.html"
    change_form_template = "admin/django_metronome/djangojob/change_form.html"
    delete_confirmation_template = "admin/django_metronome/djangojob/delete_confirmation.html"
    delete_selected_confirmation_template = (
        "admin/django_metronome/djangojob/delete_selected_confirmation.html"
    )

    # -- the list ---------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # The latest ledger row of each job, in the page's own query (the
        # (job, -run_time) index makes each lookup one index probe).
        latest = DjangoJobExecution.objects.using(database_alias()).filter(job_id=OuterRef("pk"))
        latest = latest.order_by("-run_time", "-id")
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_status=Subquery(latest.values("status")[:1]),
                last_run_id=Subquery(latest.values("id")[:1]),
            )
        )

    @admin.display(description="job", ordering="id")
    def job(self, obj: DjangoJob) -> str:
        name = format_html('<span class="metronome-name">{}</span>', obj.name or obj.pk)
        if obj.name and obj.name != obj.pk:
            return format_html('{}<br><code class="metronome-id">{}</code>', name, obj.pk)
        return name

    @admin.display(description="schedule")
    def schedule(self, obj: DjangoJob) -> str:
        return obj.describe_schedule()

    @admin.display(description="time zone")
    def zone(self, obj: DjangoJob) -> str:
        return obj.time_zone

    @admin.display(description="next run", ordering="next_run_time")
    def next_run(self, obj: DjangoJob) -> str:
        if obj.next_run_time is None:
            return format_html('<span class="metronome-muted">{}</span>', present.PAUSED)
        return format_html(
            '<span class="metronome-time" title="{}">{}</span>',
            present.relative(obj.next_run_time, utcnow()),
            format_in_zone(obj.next_run_time, obj.time_zone),
        )

    @admin.display(description="last run")
    def last_outcome(self, obj: DjangoJob) -> str:
        status = getattr(obj, "last_status", None)
        run_id = getattr(obj, "last_run_id", None)
        return status_badge(status, run_url(run_id) if run_id else None)

    @admin.display(description="state")
    def job_state(self, obj: DjangoJob) -> str:
        return state_flags(obj)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if request.method == "POST":
            # A crafted POST of an action the user may not take is refused outright
            # (Django itself would only say "No action selected").
            for name in set(request.POST.getlist("action")):
                if name in self.action_permissions:
                    self._require(request, self.action_permissions[name])
        context = {"live_count": len(present.live_nodes(database_alias())), **(extra_context or {})}
        return super().changelist_view(request, context)

    # -- the addresses of the dashboard and of a job's buttons -----------------------------

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("dashboard/", wrap(self.dashboard_view), name="django_metronome_dashboard"),
            path("<path:object_id>/run/", wrap(self.run_view), name=f"{info}_run"),
            path("<path:object_id>/pause/", wrap(self.pause_view), name=f"{info}_pause"),
            path(
                "<path:object_id>/pause-until/",
                wrap(self.pause_until_view),
                name=f"{info}_pause_until",
            ),
            path("<path:object_id>/resume/", wrap(self.resume_view), name=f"{info}_resume"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        return dashboard.dashboard_view(self, request)
