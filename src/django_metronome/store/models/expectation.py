"""What a job is expected to do: the dead-man's switch, one row per job."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .fields import AwareDateTimeField, JobIdField

__all__ = ["Expectation"]


class Expectation(models.Model):
    """
    A job's expectation: a successful run at least every ``every`` seconds,
    and/or no more than ``max_failures`` failed fires in a row.

    Kept apart from the job's row so that a job declared in code, re-declared
    at every start, keeps it, and a job can be expected before any scheduler
    has stored it. Written through :func:`django_metronome.alerts.expect`.
    """

    job_id = JobIdField(_("job id"), max_length=255, primary_key=True)
    every = models.FloatField(
        _("succeeds at least every"),
        null=True,
        blank=True,
        help_text=_("Seconds within which a successful run is expected (empty: not checked)."),
    )
    max_failures = models.PositiveIntegerField(
        _("most failures in a row"),
        null=True,
        blank=True,
        help_text=_("Failed fires in a row allowed before an incident opens (empty: not checked)."),
    )
    since = AwareDateTimeField(
        _("expected since"),
        help_text=_("When the expectation was set: the first deadline counts from here."),
    )

    class Meta:
        verbose_name = _("expectation")
        verbose_name_plural = _("expectations")

    def __str__(self) -> str:
        return self.job_id
