"""
The audit trail: one row per change to a job, kept after the job is gone.

Who changed what, when, from where, and the values before and after (only
those that changed). Written through :func:`django_metronome.store.audit.record_change`;
pruned with the run ledger (:mod:`django_metronome.store.retention`).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .fields import AwareDateTimeField

__all__ = ["ChangeAction", "ChangeOrigin", "JobChange"]


class ChangeAction(models.TextChoices):
    """What was done to the job."""

    #: Declared in code and reconciled with its row when a scheduler started.
    DECLARED = "declared", _("declared in code")
    ADDED = "added", _("added")
    MODIFIED = "modified", _("modified")
    PAUSED = "paused", _("paused")
    RESUMED = "resumed", _("resumed")
    RUN_NOW = "run_now", _("run now")
    BACKFILLED = "backfilled", _("backfilled")
    REMOVED = "removed", _("removed")
    QUARANTINED = "quarantined", _("quarantined")


class ChangeOrigin(models.TextChoices):
    """Where the change came from."""

    ADMIN = "admin", _("admin")
    CLI = "cli", _("command line")
    API = "api", _("API")
    #: The application's code: a declaration, or a scheduler's add_job/modify_job.
    CODE = "code", _("code")
    #: A scheduler process on its own (a pause that ended, a job it could not load).
    SCHEDULER = "scheduler", _("scheduler")
    #: A change made in the database directly, seen afterwards.
    DATABASE = "database", _("database edit")


class JobChange(models.Model):
    """One change to a job: when, what, who, from where, and before/after."""

    id = models.BigAutoField(primary_key=True)
    #: The job's id, not a foreign key: the history outlives the job.
    job_id = models.CharField(_("job id"), max_length=255)
    job_name = models.CharField(_("job name"), max_length=255, blank=True, default="")
    at = AwareDateTimeField(_("when"))
    action = models.CharField(_("action"), max_length=16, choices=ChangeAction.choices)
    origin = models.CharField(_("from"), max_length=16, choices=ChangeOrigin.choices)
    actor = models.CharField(
        _("who"),
        max_length=255,
        blank=True,
        default="",
        help_text=_("The admin user, the command line's OS user, or the scheduler process."),
    )
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True, default="")

    class Meta:
        verbose_name = _("job change")
        verbose_name_plural = _("job changes")
        default_permissions = ("view",)
        indexes = [
            # A job's history, newest first.
            models.Index(fields=["job_id", "at"], name="metronome_change_job_idx"),
            # Pruning by age.
            models.Index(fields=["at", "id"], name="metronome_change_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}: {self.action} at {self.at.isoformat()}"
