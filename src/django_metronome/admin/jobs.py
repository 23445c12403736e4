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
from django.db import connections
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils import translation
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .. import present
from ..store import audit
from ..store.db import database_alias, utcnow
from ..store.models import DjangoJob, DjangoJobExecution, JobSource
from . import dashboard
from .actions import JobButtons, admin_acting
from .backfill import BackfillAction
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
from .paging import KeyReader
from .schedule_fields import ScheduleFields


@admin.register(DjangoJob)
class DjangoJobAdmin(JobButtons, BackfillAction, ScheduleFields, JobPage):
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
    # Only what an index answers (see get_search_results): the beginning of an id
    # or a name, or a whole function reference.
    search_fields = ["^id", "^name", "=func_ref"]
    search_help_text = _(
        "Search by the beginning of a job's id or name, or by its whole function (module:qualname)."
    )
    ordering = [F("next_run_time").asc(nulls_last=True), "id"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    actions = ["run_now", "pause", "pause_until", "resume", "backfill"]
    action_permissions = {**JobButtons.action_permissions, "backfill": "run"}
    fieldsets = [
        (None, {"fields": ["id", "name", "source", "func_ref"]}),
        (
            _("Schedule"),
            {
                "fields": [
                    "schedule",
                    "zone",
                    "next_run",
                    "paused",
                    "pause_note_text",
                    "paused_until_text",
                    "catch_up_window",
                    "overlapping_fires",
                    "run_limit",
                ]
            },
        ),
        (_("State"), {"fields": ["state_json"]}),
        (
            _("Book-keeping"),
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
        "catch_up_window",
        "overlapping_fires",
        "run_limit",
        "schedule",
        "zone",
        "next_run",
        "paused",
        "pause_note_text",
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

    def delete_model(self, request: HttpRequest, obj: DjangoJob) -> None:
        with admin_acting(request):
            audit.record_change(
                obj.pk,
                "removed",
                before=audit.snapshot(vars(obj)),
                job_name=obj.name,
                using=obj._state.db,
            )
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with admin_acting(request):
            audit.record_changes(queryset.values_list("id", "name"), "removed", using=queryset.db)
        super().delete_queryset(request, queryset)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        """
        Jobs whose id or name begins with the text, or whose function it is.

        Each part is answered by an index, however many jobs there are: on
        PostgreSQL the prefix is compared exactly (a ``LIKE 'text%'`` the
        ``varchar_pattern_ops`` indexes serve), elsewhere in the column's own
        collation (MariaDB's ids are exact, its names in any case).
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        exact = connections[queryset.db].vendor == "postgresql"
        prefix = "startswith" if exact else "istartswith"
        match = Q(**{f"id__{prefix}": term}) | Q(**{f"name__{prefix}": term})
        if ":" in term:
            # The (source, func_ref) index, through both of its sources.
            match |= Q(source__in=JobSource.values, func_ref=term)
        return queryset.filter(match), False

    def page_keys(
        self, request: HttpRequest, queryset: QuerySet[Any], filtered: bool
    ) -> KeyReader | None:
        if request.GET.get("o"):
            return None  # sorted by a column: read from the list itself
        if not filtered:
            # Every job: from the due index alone (ended jobs, hidden, are then
            # among the keys and left out of the page, a row fewer).
            return run_order_keys(DjangoJob.all_rows.using(database_alias()))
        return run_order_keys(queryset)

    @admin.display(description=_("job"), ordering="id")
    def job(self, obj: DjangoJob) -> str:
        name = format_html('<span class="metronome-name">{}</span>', obj.name or obj.pk)
        if obj.name and obj.name != obj.pk:
            return format_html('{}<br><code class="metronome-id">{}</code>', name, obj.pk)
        return name

    @admin.display(description=_("schedule"))
    def schedule(self, obj: DjangoJob) -> str:
        return present.schedule_words(obj)

    @admin.display(description=_("time zone"))
    def zone(self, obj: DjangoJob) -> str:
        return obj.time_zone

    @admin.display(description=_("next run"), ordering="next_run_time")
    def next_run(self, obj: DjangoJob) -> str:
        if obj.next_run_time is None:
            return format_html(
                '<span class="metronome-muted">{}</span>',
                present.state_label(present.PAUSED, translation),
            )
        return format_html(
            '<span class="metronome-time" title="{}">{}</span>',
            present.relative(obj.next_run_time, utcnow(), translation),
            format_in_zone(obj.next_run_time, obj.time_zone),
        )

    @admin.display(description=_("last run"))
    def last_outcome(self, obj: DjangoJob) -> str:
        status = getattr(obj, "last_status", None)
        run_id = getattr(obj, "last_run_id", None)
        return status_badge(status, run_url(run_id) if run_id else None)

    @admin.display(description=_("state"))
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


def run_order_keys(jobs: QuerySet[Any]) -> KeyReader:
    """
    The keys of a page of ``jobs`` in run order (earliest next run first,
    paused last, then by id), each part in the due index's own order.

    Run order puts NULL last, which MySQL and MariaDB can only do by sorting
    every row: so the jobs with a next run are read first, and the paused ones
    after them, each part a range of the due index ``(next_run_time, id)``.
    """

    def read(bottom: int, top: int) -> list[Any]:
        timed = jobs.order_by().filter(next_run_time__isnull=False)
        keys = list(timed.order_by("next_run_time", "id").values_list("pk", flat=True)[bottom:top])
        missing = top - bottom - len(keys)
        if not missing:
            return keys
        # Past the jobs with a next run: how many there are, to skip them.
        scheduled = bottom + len(keys) if keys else timed.count()
        start = max(bottom - scheduled, 0)
        paused = jobs.order_by().filter(next_run_time__isnull=True).order_by("id")
        return keys + list(paused.values_list("pk", flat=True)[start : start + missing])

    return read
