"""
The admin: jobs, their run ledger, the scheduler processes, and a dashboard.

Jobs are never edited as rows here: their function and JSON state are shown
read-only, and they change only through four verbs, each a POST with CSRF
protection and its own model permission:

* run now (``django_metronome.run_djangojob``): writes a *pending* ledger row
  that a running scheduler process takes within its poll interval; the request
  never runs the job, and the schedule does not move;
* pause and pause until (``pause_djangojob``);
* resume (``resume_djangojob``).

Staff without a permission see the pages but not its buttons and actions, and
a POST made without it is refused with 403. Removing a job needs the delete
permission and keeps its history. The ledger is read-only; its rows go through
retention or with the delete permission.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, F, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from . import admin_views as views
from .admin_views import (
    PauseUntilForm,
    database,
    flag,
    format_duration,
    format_in_zone,
    format_instant,
    format_seconds,
    job_url,
    relative,
    run_url,
    runs_of_job_url,
    status_badge,
    zone_choices,
)
from .conf import conf
from .models import DjangoJob, DjangoJobExecution, ExecutionStatus, JobSource, SchedulerNode
from .store import allowlist
from .store.db import from_db, utcnow

#: Admin media of every page of the app.
CSS = {"all": ["django_metronome/admin.css"]}

#: Run-now links named one by one in a message; more are counted.
LINKS_IN_MESSAGE = 10


class OnJobDatabase:
    """Read and write where the job tables live (``METRONOME["DATABASE"]`` or the routers)."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).using(database())  # type: ignore[misc]


# --- filters -------------------------------------------------------------------------


class PausedFilter(admin.SimpleListFilter):
    title = "paused"
    parameter_name = "paused"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Paused"), ("until", "Paused until a time"), ("no", "Not paused")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(next_run_time__isnull=True)
        if self.value() == "until":
            return queryset.filter(next_run_time__isnull=True, paused_until__isnull=False)
        if self.value() == "no":
            return queryset.filter(next_run_time__isnull=False)
        return queryset


class NextRunFilter(admin.SimpleListFilter):
    title = "next run"
    parameter_name = "next"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("overdue", "Overdue"), ("hour", "Within an hour"), ("day", "Within 24 hours")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = utcnow()
        if self.value() == "overdue":
            return queryset.filter(
                quarantined_at__isnull=True, next_run_time__lt=now - views.overdue_threshold()
            )
        if self.value() == "hour":
            return queryset.filter(next_run_time__lte=now + timedelta(hours=1))
        if self.value() == "day":
            return queryset.filter(next_run_time__lte=now + timedelta(days=1))
        return queryset


class FlagFilter(admin.SimpleListFilter):
    """Yes or no on whether a nullable timestamp is set."""

    field = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            return queryset.filter(**{f"{self.field}__isnull": self.value() == "no"})
        return queryset


class OrphanedFilter(FlagFilter):
    title = "orphaned"
    parameter_name = "orphaned"
    field = "orphaned_at"


class QuarantinedFilter(FlagFilter):
    title = "quarantined"
    parameter_name = "quarantined"
    field = "quarantined_at"


class LastOutcomeFilter(admin.SimpleListFilter):
    title = "last outcome"
    parameter_name = "last"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [*ExecutionStatus.choices, ("never", "never run")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "never":
            return queryset.filter(last_status__isnull=True)
        if value in ExecutionStatus.values:
            return queryset.filter(last_status=value)
        return queryset


class ExactTextFilter(admin.SimpleListFilter):
    """
    A text box matching one column exactly, so the filter uses its index.

    It lists no values: on a large ledger, listing the distinct values of a
    column would read the whole table on every page.
    """

    template = "admin/django_metronome/text_filter.html"
    field = ""
    placeholder = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return []

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset

    def choices(self, changelist: Any) -> Any:
        others = {
            key: values
            for key, values in changelist.filter_params.items()
            if key != self.parameter_name
        }
        yield {
            "name": self.parameter_name,
            "value": self.value() or "",
            "placeholder": self.placeholder,
            "hidden": [(key, value) for key, values in others.items() for value in values],
            "clear_url": changelist.get_query_string(remove=[self.parameter_name]),
        }


class JobIdFilter(ExactTextFilter):
    title = "job"
    parameter_name = "job"
    field = "job_id"
    placeholder = "a job's id"


class NodeFilter(ExactTextFilter):
    title = "scheduler process"
    parameter_name = "node"
    field = "node"
    placeholder = "host:pid:tag"


class RunTimeFilter(admin.SimpleListFilter):
    title = "scheduled time"
    parameter_name = "when"
    windows = {
        "1h": ("Last hour", timedelta(hours=1)),
        "24h": ("Last 24 hours", timedelta(hours=24)),
        "7d": ("Last 7 days", timedelta(days=7)),
        "30d": ("Last 30 days", timedelta(days=30)),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            *((key, label) for key, (label, _) in self.windows.items()),
            ("older", "Older than 30 days"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value in self.windows:
            return queryset.filter(run_time__gte=utcnow() - self.windows[value][1])
        if value == "older":
            return queryset.filter(run_time__lt=utcnow() - timedelta(days=30))
        return queryset


# --- jobs ----------------------------------------------------------------------------


@admin.register(DjangoJob)
class DjangoJobAdmin(OnJobDatabase, admin.ModelAdmin):
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

    class Media:
        css = CSS

    # -- permissions ------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _has(self, request: HttpRequest, action: str) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.{action}_{self.opts.model_name}")

    def has_run_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._has(request, "run")

    def has_pause_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._has(request, "pause")

    def has_resume_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._has(request, "resume")

    #: The permission each action needs, checked again on every POST.
    action_permissions = {
        "run_now": "run",
        "pause": "pause",
        "pause_until": "pause",
        "resume": "resume",
        "delete_selected": "delete",
    }

    def _require(self, request: HttpRequest, permission: str) -> None:
        if not getattr(self, f"has_{permission}_permission")(request):
            raise PermissionDenied

    # -- the list ---------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # The latest ledger row of each job, in the page's own query (the
        # (job, -run_time) index makes each lookup one index probe).
        latest = DjangoJobExecution.objects.using(database()).filter(job_id=OuterRef("pk"))
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
            return format_html('<span class="metronome-muted">{}</span>', "paused")
        return format_html(
            '<span class="metronome-time" title="{}">{}</span>',
            relative(obj.next_run_time, utcnow()),
            format_in_zone(obj.next_run_time, obj.time_zone),
        )

    @admin.display(description="last run")
    def last_outcome(self, obj: DjangoJob) -> str:
        status = getattr(obj, "last_status", None)
        run_id = getattr(obj, "last_run_id", None)
        return status_badge(status, run_url(run_id) if run_id else None)

    @admin.display(description="state")
    def job_state(self, obj: DjangoJob) -> str:
        flags = []
        if obj.is_quarantined:
            flags.append(flag("quarantined", "quarantined", obj.quarantine_reason))
        elif obj.source == JobSource.RUNTIME:
            # A row edited by hand shows at once; the schedulers quarantine it too.
            refused = allowlist.refusal(obj.id, obj.func_ref)
            if refused is not None:
                flags.append(flag("quarantined", "refused", refused))
        if obj.orphaned_at is not None:
            flags.append(
                flag("orphaned", "orphaned", "Declared in code by no running scheduler process.")
            )
        if obj.next_run_time is None:
            if obj.paused_until is not None:
                until = format_in_zone(obj.paused_until, obj.time_zone)
                flags.append(
                    format_html(
                        '{} <span class="metronome-until">until {}</span>',
                        flag("paused", "paused"),
                        until,
                    )
                )
            else:
                flags.append(flag("paused", "paused"))
        if not flags:
            flags.append(flag("active", "active"))
        return format_html_join(" ", "{}", ((item,) for item in flags))

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if request.method == "POST":
            # A crafted POST of an action the user may not take is refused outright
            # (Django itself would only say "No action selected").
            for name in set(request.POST.getlist("action")):
                if name in self.action_permissions:
                    self._require(request, self.action_permissions[name])
        now = utcnow()
        context = {
            "dashboard_url": reverse("admin:django_metronome_dashboard"),
            "live_count": len(views.live_nodes(now)),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    # -- a job's page -----------------------------------------------------------------

    @admin.display(description="paused")
    def paused(self, obj: DjangoJob) -> str:
        return "yes" if obj.is_paused else "no"

    @admin.display(description="resumes by itself at")
    def paused_until_text(self, obj: DjangoJob) -> str:
        return format_in_zone(obj.paused_until, obj.time_zone)

    @admin.display(description="state (JSON)")
    def state_json(self, obj: DjangoJob) -> str:
        text = json.dumps(obj.state, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre class="metronome-json">{}</pre>', text)

    @admin.display(description="created")
    def created(self, obj: DjangoJob) -> str:
        return format_instant(obj.created_at)

    @admin.display(description="updated")
    def updated(self, obj: DjangoJob) -> str:
        return format_instant(obj.updated_at)

    @admin.display(description="quarantined at")
    def quarantined(self, obj: DjangoJob) -> str:
        return format_instant(obj.quarantined_at)

    @admin.display(description="orphaned at")
    def orphaned(self, obj: DjangoJob) -> str:
        return format_instant(obj.orphaned_at)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: DjangoJob | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(self._job_page_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _job_page_context(self, request: HttpRequest, job: DjangoJob) -> dict[str, Any]:
        now = utcnow()
        fires, fires_error = views.fire_rows(job, now)
        runs = list(
            DjangoJobExecution.objects.using(database())
            .filter(job_id=job.pk)
            .order_by("-run_time", "-id")[: views.RECENT_RUNS]
        )
        nodes = views.live_nodes(now)
        pk = quote(job.pk)
        return {
            "job": job,
            "next_run_text": format_in_zone(job.next_run_time, job.time_zone),
            "next_run_relative": relative(job.next_run_time, now),
            "paused_until_text": format_in_zone(job.paused_until, job.time_zone),
            "schedule_text": job.describe_schedule(),
            "fires": fires,
            "fires_error": fires_error,
            "runs": views.run_rows(runs, now),
            "runs_url": runs_of_job_url(job.pk),
            "recent_runs": views.RECENT_RUNS,
            "nobody_runs": views.why_nobody_runs(job, nodes),
            "can_run": self.has_run_permission(request) and not job.is_quarantined,
            "can_pause": self.has_pause_permission(request),
            "can_resume": self.has_resume_permission(request) and not job.is_quarantined,
            "run_url": reverse("admin:django_metronome_djangojob_run", args=(pk,)),
            "pause_url": reverse("admin:django_metronome_djangojob_pause", args=(pk,)),
            "pause_until_url": reverse("admin:django_metronome_djangojob_pause_until", args=(pk,)),
            "resume_url": reverse("admin:django_metronome_djangojob_resume", args=(pk,)),
            "dashboard_url": reverse("admin:django_metronome_dashboard"),
            "pause_form": PauseUntilForm(
                zones=zone_choices([job.time_zone]), form_id="metronome-pause-until-form"
            ),
            "poll_interval": conf.POLL_INTERVAL,
            "can_delete": self.has_delete_permission(request, job),
        }

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        history = DjangoJobExecution.objects.using(database()).filter(job_id=unquote(object_id))
        context = {"history_count": history.count(), **(extra_context or {})}
        return super().delete_view(request, object_id, context)

    # -- the buttons of a job's page ---------------------------------------------------

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

    def _job_or_redirect(
        self, request: HttpRequest, object_id: str
    ) -> DjangoJob | HttpResponseRedirect:
        job = self.get_object(request, unquote(object_id))
        if job is None:
            self.message_user(
                request,
                f"There is no job with the id “{unquote(object_id)}”: it may have been removed.",
                messages.WARNING,
            )
            return HttpResponseRedirect(reverse("admin:django_metronome_djangojob_changelist"))
        return job

    def run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._require(request, "run")
        job = self._job_or_redirect(request, object_id)
        if isinstance(job, HttpResponse):
            return job
        self._run_now(request, [job])
        return HttpResponseRedirect(job_url(job.pk))

    def pause_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._require(request, "pause")
        job = self._job_or_redirect(request, object_id)
        if isinstance(job, HttpResponse):
            return job
        self._pause(request, [job], None)
        return HttpResponseRedirect(job_url(job.pk))

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._require(request, "resume")
        job = self._job_or_redirect(request, object_id)
        if isinstance(job, HttpResponse):
            return job
        self._resume(request, [job])
        return HttpResponseRedirect(job_url(job.pk))

    def pause_until_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._require(request, "pause")
        job = self._job_or_redirect(request, object_id)
        if isinstance(job, HttpResponse):
            return job
        zones = zone_choices([job.time_zone])
        form = PauseUntilForm(request.POST if request.method == "POST" else None, zones=zones)
        if request.method == "POST" and form.is_valid():
            self._pause(request, [job], form.cleaned_data["until"])
            return HttpResponseRedirect(job_url(job.pk))
        return self._pause_until_page(request, form, [job], action_url=request.path)

    def _pause_until_page(
        self,
        request: HttpRequest,
        form: PauseUntilForm,
        jobs: list[DjangoJob],
        action_url: str = "",
        bulk: bool = False,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Pause until a date and time",
            "opts": self.opts,
            "form": form,
            "jobs": jobs[: LINKS_IN_MESSAGE * 5],
            "more": max(0, len(jobs) - LINKS_IN_MESSAGE * 5),
            "job_count": len(jobs),
            "bulk": bulk,
            "action_url": action_url,
            "selected": [job.pk for job in jobs],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "job_page": job_url(jobs[0].pk) if len(jobs) == 1 else None,
        }
        return TemplateResponse(
            request, "admin/django_metronome/djangojob/pause_until.html", context
        )

    # -- bulk actions ---------------------------------------------------------------------

    @admin.action(permissions=["run"], description="Run the selected jobs now")
    def run_now(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._run_now(request, list(queryset.order_by("id")))

    @admin.action(permissions=["pause"], description="Pause the selected jobs")
    def pause(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._pause(request, list(queryset.order_by("id")), None)

    @admin.action(permissions=["pause"], description="Pause the selected jobs until…")
    def pause_until(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        jobs = list(queryset.order_by("id"))
        zones = sorted({job.time_zone for job in jobs})
        form = PauseUntilForm(
            request.POST if "apply" in request.POST else None,
            zones=zone_choices(zones, job_first=len(zones) == 1),
        )
        if form.is_bound and form.is_valid():
            self._pause(request, jobs, form.cleaned_data["until"])
            return None
        return self._pause_until_page(request, form, jobs, bulk=True)

    @admin.action(permissions=["resume"], description="Resume the selected jobs")
    def resume(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._resume(request, list(queryset.order_by("id")))

    # -- what the buttons and actions do -------------------------------------------------

    def _run_now(self, request: HttpRequest, jobs: list[DjangoJob]) -> None:
        nodes = views.live_nodes(utcnow())
        requested = []
        for job in jobs:
            if job.is_quarantined:
                self.message_user(
                    request,
                    format_html(
                        "“{}” is quarantined and cannot run: {}", job, job.quarantine_reason
                    ),
                    messages.ERROR,
                )
                continue
            run = job.run_now(requested_by=request.user.get_username())
            self.log_change(request, job, f"Asked for a run now (run {run.pk}).")
            requested.append((job, run))
        if not requested:
            return
        links = format_html_join(
            ", ",
            '<a href="{}">run {}</a> of “{}”',
            ((run_url(run.pk), run.pk, job) for job, run in requested[:LINKS_IN_MESSAGE]),
        )
        more = len(requested) - LINKS_IN_MESSAGE
        self.message_user(
            request,
            format_html(
                "Run now asked for: {}{} pending. A running scheduler process takes it "
                "within its poll interval ({} s); the schedule does not move.",
                links,
                f" and {more} more" if more > 0 else "",
                f"{conf.POLL_INTERVAL:g}",
            ),
            messages.SUCCESS,
        )
        for job, _ in requested:
            reason = views.why_nobody_runs(job, nodes)
            if reason:
                self.message_user(request, f"“{job}”: {reason}", messages.WARNING)
                if not nodes:
                    break  # the same for every job: say it once

    def _pause(self, request: HttpRequest, jobs: list[DjangoJob], until: Any) -> None:
        if not jobs:
            return
        DjangoJob.objects.using(database()).filter(pk__in=[job.pk for job in jobs]).pause(until)
        for job in jobs:
            if until is None:
                self.log_change(request, job, "Paused.")
            else:
                text = format_in_zone(until, job.time_zone)
                self.log_change(request, job, f"Paused until {text}.")
        names = ", ".join(f"“{job}”" for job in jobs[:LINKS_IN_MESSAGE])
        more = f" and {len(jobs) - LINKS_IN_MESSAGE} more" if len(jobs) > LINKS_IN_MESSAGE else ""
        if until is None:
            text = f"Paused {names}{more}: no fire until resumed."
        elif len({job.time_zone for job in jobs}) == 1:
            when = format_in_zone(until, jobs[0].time_zone)
            text = f"Paused {names}{more} until {when}; resumed by the scheduler then."
        else:
            text = (
                f"Paused {names}{more} until {format_instant(until)}; "
                "resumed by the scheduler then."
            )
        self.message_user(request, text, messages.SUCCESS)

    def _resume(self, request: HttpRequest, jobs: list[DjangoJob]) -> None:
        now = utcnow()
        resumed, ended, not_paused = [], [], []
        for job in jobs:
            if not job.is_paused:
                not_paused.append(job)
                continue
            if job.is_quarantined:
                self.message_user(
                    request,
                    f"“{job}” is quarantined and cannot be resumed: {job.quarantine_reason}",
                    messages.ERROR,
                )
                continue
            upcoming = job.resume(now)
            if upcoming is None:
                ended.append(job)
                continue
            text = format_in_zone(upcoming, job.time_zone)
            self.log_change(request, job, f"Resumed; next run {text}.")
            resumed.append((job, text))
        if resumed:
            self.message_user(
                request,
                "Resumed "
                + ", ".join(
                    f"“{job}” (next run {text})" for job, text in resumed[:LINKS_IN_MESSAGE]
                )
                + (
                    f" and {len(resumed) - LINKS_IN_MESSAGE} more"
                    if len(resumed) > LINKS_IN_MESSAGE
                    else ""
                )
                + ".",
                messages.SUCCESS,
            )
        if ended:
            self.message_user(
                request,
                "No fire is left in the schedule of "
                + ", ".join(f"“{job}”" for job in ended)
                + ": left paused. Remove the job if it is no longer wanted.",
                messages.WARNING,
            )
        if not_paused:
            self.message_user(
                request,
                "Not paused, left as they were: " + ", ".join(f"“{job}”" for job in not_paused),
                messages.INFO,
            )

    # -- the dashboard ---------------------------------------------------------------------

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            **views.dashboard_context(),
            "title": "Scheduler dashboard",
            "opts": self.opts,
            "jobs_url": reverse("admin:django_metronome_djangojob_changelist"),
            "ledger_url": reverse("admin:django_metronome_djangojobexecution_changelist"),
            "nodes_url": reverse("admin:django_metronome_schedulernode_changelist"),
            "failed_url": reverse("admin:django_metronome_djangojobexecution_changelist")
            + "?"
            + urlencode({"status": ExecutionStatus.FAILED, "when": "24h"}),
            "overdue_url": reverse("admin:django_metronome_djangojob_changelist")
            + "?"
            + urlencode({"next": "overdue"}),
            "pending_url": reverse("admin:django_metronome_djangojobexecution_changelist")
            + "?"
            + urlencode({"status": ExecutionStatus.PENDING}),
        }
        return TemplateResponse(request, "admin/django_metronome/dashboard.html", context)


# --- the ledger -------------------------------------------------------------------------


@admin.register(DjangoJobExecution)
class DjangoJobExecutionAdmin(OnJobDatabase, admin.ModelAdmin):
    list_display = [
        "run",
        "status_badge",
        "job_link",
        "scheduled",
        "lateness_text",
        "duration_text",
        "node_text",
        "manual",
    ]
    list_display_links = ["run"]
    list_filter = ["status", JobIdFilter, RunTimeFilter, "manual", NodeFilter]
    ordering = ["-run_time", "-id"]
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
            "Run",
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
        ("Failure", {"fields": ["exception_text", "traceback_text"]}),
    ]
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

    class Media:
        css = CSS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # No join on jobs (a removed job's rows would vanish from an inner join):
        # whether the job still exists is one primary-key probe per row of the page.
        jobs = DjangoJob.objects.using(database()).filter(pk=OuterRef("job_id"))
        return super().get_queryset(request).annotate(job_exists=Exists(jobs))

    @admin.display(description="run", ordering="id")
    def run(self, obj: DjangoJobExecution) -> str:
        return f"#{obj.pk}"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: DjangoJobExecution) -> str:
        return status_badge(obj.status, title=obj.reason or obj.exception)

    @admin.display(description="job", ordering="job_id")
    def job_link(self, obj: DjangoJobExecution) -> str:
        label = format_html('<code class="metronome-id">{}</code>', obj.job_id)
        if obj.job_name and obj.job_name != obj.job_id:
            label = format_html("{} {}", obj.job_name, label)
        exists = getattr(obj, "job_exists", None)
        if exists is None:
            exists = DjangoJob.objects.using(database()).filter(pk=obj.job_id).exists()
        if exists:
            return format_html('<a href="{}">{}</a>', job_url(obj.job_id), label)
        return format_html('{} <span class="metronome-muted">(removed)</span>', label)

    @admin.display(description="scheduled", ordering="run_time")
    def scheduled(self, obj: DjangoJobExecution) -> str:
        return format_instant(obj.run_time)

    @admin.display(description="scheduled (UTC)")
    def scheduled_utc(self, obj: DjangoJobExecution) -> str:
        value = from_db(obj.run_time)
        return value.isoformat(sep=" ") if value else ""

    @admin.display(description="lateness", ordering="lateness")
    def lateness_text(self, obj: DjangoJobExecution) -> str:
        return format_duration(obj.lateness)

    @admin.display(description="duration", ordering="duration")
    def duration_text(self, obj: DjangoJobExecution) -> str:
        return format_duration(obj.duration)

    @admin.display(description="process", ordering="node")
    def node_text(self, obj: DjangoJobExecution) -> str:
        return obj.node

    @admin.display(description="claimed")
    def claimed(self, obj: DjangoJobExecution) -> str:
        return format_instant(obj.claimed_at)

    @admin.display(description="started")
    def started(self, obj: DjangoJobExecution) -> str:
        return format_instant(obj.started_at)

    @admin.display(description="finished")
    def finished(self, obj: DjangoJobExecution) -> str:
        return format_instant(obj.finished_at)

    @admin.display(description="exception")
    def exception_text(self, obj: DjangoJobExecution) -> str:
        if not obj.exception:
            return ""
        return format_html('<pre class="metronome-pre">{}</pre>', obj.exception)

    @admin.display(description="traceback")
    def traceback_text(self, obj: DjangoJobExecution) -> str:
        if not obj.traceback:
            return ""
        return format_html('<pre class="metronome-pre metronome-traceback">{}</pre>', obj.traceback)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        context = {"dashboard_url": reverse("admin:django_metronome_dashboard")}
        return super().changelist_view(request, {**context, **(extra_context or {})})

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: DjangoJobExecution | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.status == ExecutionStatus.PENDING:
            now = utcnow()
            job = DjangoJob.objects.using(database()).filter(pk=obj.job_id).first()
            waited = (now - from_db(obj.run_time)).total_seconds()  # type: ignore[operator]
            context.update(
                pending_for=format_seconds(max(waited, 0.0)),
                pending_stale=views.pending_too_long(obj, now),
                pending_reason=views.why_nobody_runs(job, views.live_nodes(now)) if job else "",
                poll_interval=conf.POLL_INTERVAL,
                run_now_timeout=conf.RUN_NOW_TIMEOUT,
            )
        context["dashboard_url"] = reverse("admin:django_metronome_dashboard")
        return super().render_change_form(request, context, add, change, form_url, obj)


# --- scheduler processes --------------------------------------------------------------


@admin.register(SchedulerNode)
class SchedulerNodeAdmin(OnJobDatabase, admin.ModelAdmin):
    list_display = [
        "id",
        "hostname",
        "pid",
        "started",
        "heartbeat",
        "alive",
        "stopped",
        "declared_count",
    ]
    ordering = ["-last_heartbeat"]
    show_full_result_count = False
    readonly_fields = ["started", "heartbeat", "alive", "stopped", "declared_list"]
    fields = [
        "id",
        "hostname",
        "pid",
        "started",
        "heartbeat",
        "alive",
        "stopped",
        "declared_list",
    ]
    change_list_template = "admin/django_metronome/schedulernode/change_list.html"

    class Media:
        css = CSS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="started", ordering="started_at")
    def started(self, obj: SchedulerNode) -> str:
        return format_instant(obj.started_at)

    @admin.display(description="last heartbeat", ordering="-last_heartbeat")
    def heartbeat(self, obj: SchedulerNode) -> str:
        return views.heartbeat_age(obj, utcnow())

    @admin.display(description="alive", boolean=True)
    def alive(self, obj: SchedulerNode) -> bool:
        age = (utcnow() - from_db(obj.last_heartbeat)).total_seconds()  # type: ignore[operator]
        return obj.stopped_at is None and age <= conf.DEAD_AFTER

    @admin.display(description="stopped", ordering="stopped_at")
    def stopped(self, obj: SchedulerNode) -> str:
        return format_instant(obj.stopped_at)

    @admin.display(description="jobs declared")
    def declared_count(self, obj: SchedulerNode) -> int:
        return len(obj.declared or [])

    @admin.display(description="jobs declared in code")
    def declared_list(self, obj: SchedulerNode) -> str:
        return format_html_join(
            "", "<code>{}</code><br>", ((job_id,) for job_id in obj.declared or [])
        )

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        context = {"dashboard_url": reverse("admin:django_metronome_dashboard")}
        return super().changelist_view(request, {**context, **(extra_context or {})})
