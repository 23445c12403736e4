"""
Read-only admin pages for jobs and their run history.

Jobs change through the scheduler API (or the actions that the admin issue
adds), never by editing a row's JSON by hand.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from .models import DjangoJob, DjangoJobExecution, SchedulerNode


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DjangoJob)
class DjangoJobAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "next_run_time", "quarantine_reason"]
    search_fields = ["id", "name", "func_ref"]
    ordering = ["next_run_time", "id"]


@admin.register(DjangoJobExecution)
class DjangoJobExecutionAdmin(ReadOnlyAdmin):
    list_display = ["job_id", "job_name", "run_time", "status", "duration", "lateness", "node"]
    list_filter = ["status"]
    search_fields = ["job__id", "job_name"]
    ordering = ["-run_time"]
    readonly_fields = ["formatted_traceback"]

    @admin.display(description="traceback")
    def formatted_traceback(self, obj: DjangoJobExecution) -> str:
        return format_html("<pre>{}</pre>", obj.traceback)


@admin.register(SchedulerNode)
class SchedulerNodeAdmin(ReadOnlyAdmin):
    list_display = ["id", "hostname", "pid", "started_at", "last_heartbeat", "stopped_at"]
