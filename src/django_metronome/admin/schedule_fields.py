"""
A job page's fields for its schedule's policies: the catch-up window and the run limit.

* **Catch-up window** is APScheduler's ``misfire_grace_time``: how late a fire
  may still start. The field names it both ways, and counts the fires the
  window dropped (the job's *missed* rows in the run history).
* **Overlapping fires** is the overlap policy (``overlap=``, or what
  ``max_instances`` alone means): what a fire due while one runs does.
* **Run limit** is ``max_runs``: how many successful fires of the job there
  were out of how many it may have, and *finished* once it reached them (its
  row and history are kept; it does not fire again).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import present
from ..store.limits import finished_runs, max_runs
from ..store.models import DjangoJob, DjangoJobExecution, ExecutionStatus
from .base import MetronomeAdmin, format_in_zone


def _trigger(job: DjangoJob) -> Any:
    try:
        return job.trigger()
    except Exception:
        return None  # a row this release cannot read: its page says so elsewhere


class ScheduleFields(MetronomeAdmin):
    """A job page's read-only policy fields: catch-up window, overlapping fires, run limit."""

    @admin.display(description=gettext_lazy("overlapping fires (overlap)"))
    def overlapping_fires(self, obj: DjangoJob) -> str:
        return present.overlap_words(obj, words=translation)

    @admin.display(description=gettext_lazy("catch-up window (misfire_grace_time)"))
    def catch_up_window(self, obj: DjangoJob) -> str:
        grace = obj.state.get("misfire_grace_time") if isinstance(obj.state, dict) else None
        dropped = (
            DjangoJobExecution.objects.using(obj._state.db or "default")
            .filter(job_id=obj.pk, status=ExecutionStatus.MISSED)
            .count()
        )
        window = _("no limit") if grace is None else present.length(grace, words=translation)
        return ngettext(
            "%(window)s · %(count)d fire dropped as missed",
            "%(window)s · %(count)d fires dropped as missed",
            dropped,
        ) % {"window": window, "count": dropped}

    @admin.display(description=gettext_lazy("run limit (max_runs)"))
    def run_limit(self, obj: DjangoJob) -> str:
        limit = max_runs(_trigger(obj))
        if limit is None:
            return _("none")
        succeeded, _open = finished_runs(obj._state.db or "default", [obj.pk])
        done = succeeded[obj.pk]
        if done >= limit:
            return ngettext(
                "finished: %(done)d of %(limit)d successful run",
                "finished: %(done)d of %(limit)d successful runs",
                limit,
            ) % {"done": done, "limit": limit}
        return ngettext(
            "%(done)d of %(limit)d successful run",
            "%(done)d of %(limit)d successful runs",
            limit,
        ) % {"done": done, "limit": limit}


class RunScheduleFields(MetronomeAdmin):
    """
    A run's page: the nominal time of a jittered fire, and whether a backfill ran it.

    Shown only for such runs, in a fieldset of their own before the last one.
    """

    run_schedule_fieldset: Any = (
        gettext_lazy("Schedule"),
        {"fields": ["nominal_time_text", "backfilled_text"]},
    )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and (obj.nominal_time is not None or obj.backfilled):
            fieldsets.insert(-1, self.run_schedule_fieldset)
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*super().get_readonly_fields(request, obj), "nominal_time_text", "backfilled_text"]

    @admin.display(description=gettext_lazy("nominal run time"))
    def nominal_time_text(self, obj: DjangoJobExecution) -> str:
        # Not jittered: the nominal time is the scheduled time itself.
        nominal = obj.nominal_time if obj.nominal_time is not None else obj.run_time
        return format_in_zone(nominal, obj_zone(obj))

    @admin.display(description=gettext_lazy("backfilled"))
    def backfilled_text(self, obj: DjangoJobExecution) -> str:
        return _("yes") if obj.backfilled else _("no")


def obj_zone(run: DjangoJobExecution) -> str | None:
    """The zone of a run's job, if it still exists; else UTC."""
    job = DjangoJob.objects.using(run._state.db or "default").filter(pk=run.job_id).first()
    return job.time_zone if job is not None else None
