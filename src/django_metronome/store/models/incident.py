"""Incidents: an expectation that broke, open until the condition clears."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .fields import AwareDateTimeField, JobIdField

__all__ = ["Incident", "IncidentKind"]


class IncidentKind(models.TextChoices):
    """Which expectation broke."""

    #: No successful run within the job's ``every``.
    OVERDUE = "overdue", _("no recent success")
    #: More failed fires in a row than the job's ``max_failures``.
    FAILING = "failing", _("failing")
    #: No scheduler process alive.
    NO_SCHEDULER = "no_scheduler", _("no scheduler alive")


class Incident(models.Model):
    """
    A broken expectation, open until its condition clears.

    ``is_open`` is True while open and NULL once resolved: the unique key on
    (job id, kind, is_open) lets the database hold at most one open incident
    per job and kind (NULLs never collide), however many processes evaluate
    at once. ``job_id`` is empty for the incidents of no job ("no scheduler").
    """

    job_id = JobIdField(_("job id"), max_length=255, blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=IncidentKind.choices)
    is_open = models.BooleanField(_("open"), null=True, default=True)
    opened_at = AwareDateTimeField(_("opened at"))
    resolved_at = AwareDateTimeField(_("resolved at"), null=True, blank=True)
    detail = models.TextField(_("detail"), blank=True, default="")

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        constraints = [
            models.UniqueConstraint(
                fields=["job_id", "kind", "is_open"], name="metronome_incident_open_uniq"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_kind_display()}: {self.job_id}"
            if self.job_id
            else str(self.get_kind_display())
        )
