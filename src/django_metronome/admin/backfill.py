"""
The job list's "Backfill…" action: every fire of one job in a past range, after a
confirmation page that lists the fires.

Three steps, each a POST of the action with the "run" permission: the range
(from, to, read in the job's zone), the list of its fires (a dry run: which
would run, which already have a ledger row), and the backfill itself
(:func:`django_metronome.store.backfill.backfill`). Nothing is written before
the last step.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import present
from ..store.backfill import MAX_BACKFILL, BackfillRefused, backfill
from ..store.db import database_alias
from ..store.models import DjangoJob
from .actions import admin_acting
from .base import MetronomeAdmin, format_in_zone

TEMPLATE = "admin/django_metronome/djangojob/backfill.html"


def _in_zone(value: datetime, zone: tzinfo) -> datetime:
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value
    return value.replace(tzinfo=zone)


class BackfillForm(forms.Form):
    """The range of a backfill, both ends included, read in the job's time zone."""

    start = forms.CharField(
        label=gettext_lazy("From"),
        help_text=gettext_lazy("ISO 8601, e.g. 2026-12-01 09:00, in the job's time zone."),
    )
    end = forms.CharField(
        label=gettext_lazy("To"),
        help_text=gettext_lazy("Included. Not in the future: later fires are the scheduler's."),
    )

    def __init__(self, *args: Any, zone: tzinfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone = zone

    def _moment(self, name: str) -> datetime:
        text = self.cleaned_data[name].strip()
        try:
            return _in_zone(datetime.fromisoformat(text), self.zone)
        except ValueError:
            raise forms.ValidationError(
                _("“%(value)s” is not a date and time: write e.g. 2026-12-01 09:00."),
                params={"value": text},
            ) from None

    def clean_start(self) -> datetime:
        return self._moment("start")

    def clean_end(self) -> datetime:
        return self._moment("end")


class BackfillAction(MetronomeAdmin):
    """The "Backfill…" action of the job list (see the module)."""

    @admin.action(
        permissions=["run"], description=gettext_lazy("Backfill the selected job over a range…")
    )
    def backfill(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        jobs = list(queryset[:2])
        if len(jobs) != 1:
            self.message_user(
                request,
                _("Select exactly one job to backfill: each job has its own fires."),
                messages.WARNING,
            )
            return None
        job: DjangoJob = jobs[0]
        zone = present.job_zone(job)
        step = request.POST.get("backfill_step", "")
        form = BackfillForm(request.POST if step else None, zone=zone)
        if not form.is_valid():
            return self._backfill_page(request, job, form, zone)
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        listed = f"{start.isoformat()}|{end.isoformat()}"
        if step == "apply" and request.POST.get("listed_range") != listed:
            step = "preview"  # the range changed since its fires were listed: list them again
        using = database_alias()
        try:
            with admin_acting(request):
                result = backfill(
                    job,
                    start,
                    end,
                    dry_run=step != "apply",
                    requested_by=_("the admin ({user})").format(user=request.user),
                    using=using,
                )
        except BackfillRefused as exc:
            form.add_error(None, str(exc))
            return self._backfill_page(request, job, form, zone)
        if step != "apply":
            return self._backfill_page(request, job, form, zone, result=result, listed=listed)
        self.message_user(
            request,
            ngettext(
                "Backfill of “%(job)s”: %(count)d fire waits for a scheduler process "
                "(%(recorded)d already had a ledger row).",
                "Backfill of “%(job)s”: %(count)d fires wait for a scheduler process "
                "(%(recorded)d already had a ledger row).",
                len(result.written),
            )
            % {"job": job, "count": len(result.written), "recorded": len(result.recorded)},
            messages.SUCCESS,
        )
        return None

    def _backfill_page(
        self,
        request: HttpRequest,
        job: DjangoJob,
        form: BackfillForm,
        zone: tzinfo,
        result: Any = None,
        listed: str = "",
    ) -> TemplateResponse:
        recorded = set(result.recorded) if result is not None else set()
        fires = (
            [(format_in_zone(fire, job.time_zone), fire in recorded) for fire in result.fires]
            if result is not None
            else []
        )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Backfill a job"),
            "opts": self.opts,
            "job": job,
            "form": form,
            "zone": getattr(zone, "key", str(zone)),
            "fires": fires,
            "new_count": len(fires) - len(recorded),
            "previewed": result is not None,
            "listed_range": listed,
            "maximum": MAX_BACKFILL,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, TEMPLATE, context)
