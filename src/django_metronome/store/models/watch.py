"""The watch's turn: which process evaluates the expectations, and when it last did."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .fields import AwareDateTimeField

__all__ = ["WatchTurn"]


class WatchTurn(models.Model):
    """
    The one row (``id`` 1) that decides who evaluates the expectations.

    A process takes its turn with one conditional ``UPDATE`` (only if the last
    evaluation is older than ``WATCH_INTERVAL``): the database lets exactly one
    process through per interval, as it lets one process claim a fire.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    evaluated_at = AwareDateTimeField(_("evaluated at"))
    evaluated_by = models.CharField(_("evaluated by"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("watch turn")
        verbose_name_plural = _("watch turns")
        default_permissions = ()

    def __str__(self) -> str:
        return f"watch turn {self.evaluated_at}"
