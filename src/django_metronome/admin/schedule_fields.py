"""
A job page's fields for its schedule's policies: the catch-up window and the run limit.

* **Catch-up window** is APScheduler's ``misfire_grace_time``: how late a fire
  may still start. The field names it both ways, and counts the fires the
  window dropped (the job's *missed* rows in the run history).
* **Run limit** is ``max_runs``: how many successful fires of the job there
  were out of how many it may have, and *finished* once it reached them (its
  row and history are kept; it does not fire again).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import present
from ..store.limits import finished_runs, max_runs
from ..store.models import DjangoJob, DjangoJobExecution, ExecutionStatus
from .base import MetronomeAdmin


def _trigger(job: DjangoJob) -> Any:
    try:
        return job.trigger()
    except Exception:
        return None  # a row this release cannot read: its page says so elsewhere


class ScheduleFields(MetronomeAdmin):
    """``catch_up_window`` and ``run_limit``, read-only fields of a job's page."""

    @admin.display(description=gettext_lazy("catch-up window (misfire_grace_time)"))
    def catch_up_window(self, obj: DjangoJob) -> str:
        grace = obj.state.get("misfire_grace_time") if isinstance(obj.state, dict) else None
        dropped = (
            DjangoJobExecution.objects.using(obj._state.db or "default")
            .filter(job_id=obj.pk, status=ExecutionStatus.MISSED)
            .count()
        )
        window = _("no limit") if grace is None else present.length(grace)
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
