"""
What a job's buttons and the job list's actions do: run now, pause, pause until, resume.

:class:`JobVerbs` does the work and says what it did, for one job or many;
:class:`JobButtons` is how it is asked for: the POST-only views behind a job's
buttons, the pause-until page, and the bulk actions of the job list. Each
checks its own permission (see :class:`.jobs.DjangoJobAdmin`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import translation
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from .. import present
from ..conf import conf
from ..store import audit
from ..store.db import database_alias, utcnow
from ..store.models import ChangeOrigin, DjangoJob
from .base import MetronomeAdmin, format_in_zone, format_instant, job_url, run_url
from .forms import PauseUntilForm, zone_choices

#: Jobs named one by one in a message; more are counted.
LINKS_IN_MESSAGE = 10


def quoted(item: Any) -> str:
    """A job's name in quotation marks: “Send the digest”."""
    return _("“{name}”").format(name=item)


def named(items: list[Any], show: Callable[[Any], str] = quoted) -> str:
    """``“a”, “b” and 3 more``: the first jobs of a message by name, the rest counted."""
    names = pgettext("list separator", ", ").join(show(item) for item in items[:LINKS_IN_MESSAGE])
    more = len(items) - LINKS_IN_MESSAGE
    if more <= 0:
        return names
    return _("{names} and {count} more").format(names=names, count=more)


def admin_acting(request: HttpRequest) -> Any:
    """Changes made inside are the admin's, by the signed-in user (the audit trail)."""
    return audit.acting(ChangeOrigin.ADMIN, request.user.get_username())


class JobPermissions(MetronomeAdmin):
    """Run, pause and resume have their own permissions, checked again on every POST."""

    #: The permission each action needs.
    action_permissions = {
        "run_now": "run",
        "pause": "pause",
        "pause_until": "pause",
        "resume": "resume",
        "delete_selected": "delete",
    }

    def _has(self, request: HttpRequest, action: str) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.{action}_{self.opts.model_name}")

    def has_run_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._has(request, "run")

    def has_pause_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._has(request, "pause")

    def has_resume_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._has(request, "resume")

    def _require(self, request: HttpRequest, permission: str) -> None:
        if not getattr(self, f"has_{permission}_permission")(request):
            raise PermissionDenied


class JobVerbs(JobPermissions):
    """Run now, pause (until) and resume some jobs, and tell the user what came of it."""

    def _run_now(self, request: HttpRequest, jobs: list[DjangoJob]) -> None:
        live = present.live_nodes(database_alias())
        requested = []
        for job in jobs:
            if job.is_quarantined:
                self.message_user(
                    request,
                    format_html(
                        _("“{job}” is quarantined and cannot run: {reason}"),
                        job=job,
                        reason=job.quarantine_reason,
                    ),
                    messages.ERROR,
                )
                continue
            with admin_acting(request):
                run = job.run_now(requested_by=request.user.get_username())
            self.log_change(request, job, _("Asked for a run now (run {run}).").format(run=run.pk))
            requested.append((job, run))
        if not requested:
            return
        links = format_html_join(
            ", ",
            _('<a href="{}">run {}</a> of “{}”'),
            ((run_url(run.pk), run.pk, job) for job, run in requested[:LINKS_IN_MESSAGE]),
        )
        more = len(requested) - LINKS_IN_MESSAGE
        self.message_user(
            request,
            format_html(
                _(
                    "Run now asked for: {runs} pending. A running scheduler process takes it "
                    "within its poll interval ({seconds} s); the schedule does not move."
                ),
                runs=links
                if more <= 0
                else format_html(_("{names} and {count} more"), names=links, count=more),
                seconds=f"{conf.POLL_INTERVAL:g}",
            ),
            messages.SUCCESS,
        )
        for job, _run in requested:
            reason = present.why_nobody_runs(job, live, translation)
            if reason:
                self.message_user(
                    request, _("“{job}”: {reason}").format(job=job, reason=reason), messages.WARNING
                )
                if not live:
                    break  # the same for every job: say it once

    def _pause(self, request: HttpRequest, jobs: list[DjangoJob], until: Any = None) -> None:
        if not jobs:
            return
        chosen = DjangoJob.objects.using(database_alias()).filter(pk__in=[job.pk for job in jobs])
        note = str(request.POST.get("note", "")).strip()[:1000]
        with admin_acting(request):
            chosen.pause(until, note=note)
        for job in jobs:
            if until is None:
                self.log_change(request, job, _("Paused."))
            else:
                self.log_change(
                    request,
                    job,
                    _("Paused until {when}.").format(when=format_in_zone(until, job.time_zone)),
                )
        if until is None:
            text = _("Paused {jobs}: no fire until resumed.").format(jobs=named(jobs))
        else:
            one_zone = len({job.time_zone for job in jobs}) == 1
            when = format_in_zone(until, jobs[0].time_zone) if one_zone else format_instant(until)
            text = _("Paused {jobs} until {when}; resumed by the scheduler then.").format(
                jobs=named(jobs), when=when
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
                    _("“{job}” is quarantined and cannot be resumed: {reason}").format(
                        job=job, reason=job.quarantine_reason
                    ),
                    messages.ERROR,
                )
                continue
            with admin_acting(request):
                upcoming = job.resume(now)
            if upcoming is None:
                ended.append(job)
                continue
            text = format_in_zone(upcoming, job.time_zone)
            self.log_change(request, job, _("Resumed; next run {when}.").format(when=text))
            resumed.append((job, text))
        if resumed:
            listed = named(
                resumed,
                lambda item: _("“{job}” (next run {when})").format(job=item[0], when=item[1]),
            )
            self.message_user(request, _("Resumed {jobs}.").format(jobs=listed), messages.SUCCESS)
        if ended:
            self.message_user(
                request,
                _(
                    "No fire is left in the schedule of {jobs}: left paused. Remove the job if "
                    "it is no longer wanted."
                ).format(jobs=pgettext("list separator", ", ").join(map(quoted, ended))),
                messages.WARNING,
            )
        if not_paused:
            self.message_user(
                request,
                _("Not paused, left as they were: {jobs}").format(
                    jobs=pgettext("list separator", ", ").join(map(quoted, not_paused))
                ),
                messages.INFO,
            )


class JobButtons(JobVerbs):
    """The views behind a job's buttons, the pause-until page, and the bulk actions."""

    def _job_or_redirect(self, request: HttpRequest, object_id: str) -> DjangoJob | HttpResponse:
        job = self.get_object(request, unquote(object_id))
        if job is None:
            self.message_user(
                request,
                _("There is no job with the id “{id}”: it may have been removed.").format(
                    id=unquote(object_id)
                ),
                messages.WARNING,
            )
            return HttpResponseRedirect(reverse("admin:django_metronome_djangojob_changelist"))
        return job

    def _button(
        self,
        request: HttpRequest,
        object_id: str,
        permission: str,
        verb: Callable[[HttpRequest, list[DjangoJob]], None],
    ) -> HttpResponse:
        """A POST of one of a job's buttons: check, find the job, do it, back to its page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._require(request, permission)
        job = self._job_or_redirect(request, object_id)
        if isinstance(job, HttpResponse):
            return job
        verb(request, [job])
        return HttpResponseRedirect(job_url(job.pk))

    def run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._button(request, object_id, "run", self._run_now)

    def pause_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._button(request, object_id, "pause", self._pause)

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._button(request, object_id, "resume", self._resume)

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
            "title": _("Pause until a date and time"),
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

    @admin.action(permissions=["run"], description=gettext_lazy("Run the selected jobs now"))
    def run_now(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._run_now(request, list(queryset.order_by("id")))

    @admin.action(permissions=["pause"], description=gettext_lazy("Pause the selected jobs"))
    def pause(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._pause(request, list(queryset.order_by("id")))

    @admin.action(permissions=["pause"], description=gettext_lazy("Pause the selected jobs until…"))
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

    @admin.action(permissions=["resume"], description=gettext_lazy("Resume the selected jobs"))
    def resume(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._resume(request, list(queryset.order_by("id")))
