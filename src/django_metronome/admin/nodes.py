"""The scheduler processes in the admin: read-only, with their heartbeats and declarations."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from ..store import nodes as node_store
from ..store.db import database_alias, utcnow
from ..store.models import SchedulerNode
from .base import MetronomeAdmin, instant_column
from .dashboard import heartbeat_age

#: What the list and a process's page both show.
COLUMNS = ["id", "hostname", "pid", "started", "heartbeat", "alive", "stopped"]


@admin.register(SchedulerNode)
class SchedulerNodeAdmin(MetronomeAdmin):
    list_display = [*COLUMNS, "declared_count"]
    ordering = ["-last_heartbeat"]
    show_full_result_count = False
    readonly_fields = ["started", "heartbeat", "alive", "stopped", "declared_list"]
    fields = [*COLUMNS, "declared_list"]
    change_list_template = "admin/django_metronome/schedulernode/change_list.html"

    started = instant_column("started_at", _("started"), ordering="started_at")
    stopped = instant_column("stopped_at", _("stopped"), ordering="stopped_at")

    @admin.display(description=_("last heartbeat"), ordering="-last_heartbeat")
    def heartbeat(self, obj: SchedulerNode) -> str:
        return heartbeat_age(obj, utcnow())

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # Alive as everywhere (store.nodes.live), in the page's own query.
        live = node_store.live(database_alias()).filter(pk=OuterRef("pk"))
        return super().get_queryset(request).annotate(is_alive=Exists(live))

    @admin.display(description=_("alive"), boolean=True)
    def alive(self, obj: SchedulerNode) -> bool:
        alive = getattr(obj, "is_alive", None)
        if alive is None:
            alive = node_store.live(database_alias()).filter(pk=obj.pk).exists()
        return bool(alive)

    @admin.display(description=_("jobs declared"))
    def declared_count(self, obj: SchedulerNode) -> int:
        return len(obj.declared or [])

    @admin.display(description=_("jobs declared in code"))
    def declared_list(self, obj: SchedulerNode) -> str:
        return format_html_join(
            "", "<code>{}</code><br>", ((job_id,) for job_id in obj.declared or [])
        )
