"""The scheduler processes table: who is running, known by its heartbeat."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .fields import AwareDateTimeField

__all__ = ["SchedulerNode", "SchedulerNodeQuerySet"]


class SchedulerNodeQuerySet(models.QuerySet["SchedulerNode"]):
    def alive(self, now: datetime, timeout: timedelta) -> SchedulerNodeQuerySet:
        return self.filter(Q(stopped_at__isnull=True), last_heartbeat__gte=now - timeout)


class SchedulerNode(models.Model):
    """A running scheduler process, known by its heartbeat."""

    id = models.CharField(_("identity"), max_length=255, primary_key=True)
    hostname = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("process id"))
    started_at = AwareDateTimeField(_("started at"))
    last_heartbeat = AwareDateTimeField(_("last heartbeat"), db_index=True)
    stopped_at = AwareDateTimeField(_("stopped at"), null=True, blank=True)
    clock_offset = models.FloatField(
        _("clock offset"),
        null=True,
        blank=True,
        help_text=_(
            "Seconds the database's clock was ahead of this process's at its last "
            "heartbeat (negative: behind). The process schedules by the database's clock."
        ),
    )
    declared = models.JSONField(
        _("declared jobs"),
        default=list,
        blank=True,
        help_text=_("Ids of the jobs this process declared in code."),
    )

    objects = SchedulerNodeQuerySet.as_manager()

    class Meta:
        verbose_name = _("scheduler process")
        verbose_name_plural = _("scheduler processes")

    def __str__(self) -> str:
        return self.id
