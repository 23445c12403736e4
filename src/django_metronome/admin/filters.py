"""
The list filters of the admin's pages.

Every filter here is bounded on a large ledger: none lists the distinct values
of a column (that would read the whole table on every page); a text box
matching one indexed column exactly stands in for those.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ..store import taskfires
from ..store.db import utcnow
from ..store.models import ExecutionStatus
from .base import overdue_threshold


class PausedFilter(admin.SimpleListFilter):
    title = _("paused")
    parameter_name = "paused"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Paused")), ("until", _("Paused until a time")), ("no", _("Not paused"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(next_run_time__isnull=True)
        if self.value() == "until":
            return queryset.filter(next_run_time__isnull=True, paused_until__isnull=False)
        if self.value() == "no":
            return queryset.filter(next_run_time__isnull=False)
        return queryset


class NextRunFilter(admin.SimpleListFilter):
    title = _("next run")
    parameter_name = "next"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("overdue", _("Overdue")),
            ("hour", _("Within an hour")),
            ("day", _("Within 24 hours")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = utcnow()
        if self.value() == "overdue":
            return queryset.filter(
                quarantined_at__isnull=True, next_run_time__lt=now - overdue_threshold()
            )
        if self.value() == "hour":
            return queryset.filter(next_run_time__lte=now + timedelta(hours=1))
        if self.value() == "day":
            return queryset.filter(next_run_time__lte=now + timedelta(days=1))
        return queryset


class FlagFilter(admin.SimpleListFilter):
    """Yes or no on whether a nullable timestamp is set."""

    field = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            return queryset.filter(**{f"{self.field}__isnull": self.value() == "no"})
        return queryset


class OrphanedFilter(FlagFilter):
    title = _("orphaned")
    parameter_name = "orphaned"
    field = "orphaned_at"


class QuarantinedFilter(FlagFilter):
    title = _("quarantined")
    parameter_name = "quarantined"
    field = "quarantined_at"


class LastOutcomeFilter(admin.SimpleListFilter):
    title = _("last outcome")
    parameter_name = "last"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [*ExecutionStatus.choices, ("never", _("never run"))]

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
    placeholder: Any = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
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
    title = _("job")
    parameter_name = "job"
    field = "job_id"
    placeholder = _("a job's id")


class NodeFilter(ExactTextFilter):
    title = _("scheduler process")
    parameter_name = "node"
    field = "node"
    placeholder = "host:pid:tag"


class RunTimeFilter(admin.SimpleListFilter):
    title = _("scheduled time")
    parameter_name = "when"
    windows = {
        "1h": (_("Last hour"), timedelta(hours=1)),
        "24h": (_("Last 24 hours"), timedelta(hours=24)),
        "7d": (_("Last 7 days"), timedelta(days=7)),
        "30d": (_("Last 30 days"), timedelta(days=30)),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            *((key, label) for key, (label, _) in self.windows.items()),
            ("older", _("Older than 30 days")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value in self.windows:
            return queryset.filter(run_time__gte=utcnow() - self.windows[value][1])
        if value == "older":
            return queryset.filter(run_time__lt=utcnow() - timedelta(days=30))
        return queryset


class TaskBackendFilter(admin.SimpleListFilter):
    """
    Where fires went: a task backend of ``settings.TASKS`` (its aliases, not the
    ledger's distinct values), or nowhere (run in the scheduler). Shown only where a
    task framework is installed.
    """

    title = _("task backend")
    parameter_name = "task"
    #: The choice of the fires run in the scheduler (no alias is spelt so).
    NONE = "-"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        if taskfires.framework() is None:
            return []
        aliases = list(getattr(settings, "TASKS", None) or {"default": {}})
        none = (self.NONE, _("None: run in the scheduler"))
        return [none, *((alias, alias) for alias in aliases)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == self.NONE:
            return queryset.filter(task_backend__isnull=True)
        if value:
            return queryset.filter(task_backend=value)
        return queryset
