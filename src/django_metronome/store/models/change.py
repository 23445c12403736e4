"""
The change marker: one row whose counter moves whenever what is due may have changed.

On SQLite and MariaDB/MySQL the database's own triggers (installed by migration
0003) add one to ``version`` when a job is added, paused, resumed, moved
earlier or removed, and when a "run now" request or a handed-back fire waits
in the ledger: an idle scheduler reads this one row instead of the job table
(see :mod:`django_metronome.store.changes`). On PostgreSQL the triggers send a
notification instead, and the row stays as it is.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["ChangeMarker"]


class ChangeMarker(models.Model):
    """The one row (``id`` 1) whose ``version`` every change of what is due moves."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.BigIntegerField(_("version"), default=0)

    class Meta:
        verbose_name = _("change marker")
        verbose_name_plural = _("change markers")
        default_permissions = ()

    def __str__(self) -> str:
        return f"change marker {self.version}"
