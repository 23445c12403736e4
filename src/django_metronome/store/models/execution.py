"""
The run ledger: one row per (job, scheduled run time), and never two.

Its status moves only through :mod:`django_metronome.store.ledger`; the verbs
on :class:`ExecutionQuerySet` that change it are that module's, reached from
the model's manager for convenience.
"""

from __future__ import annotations

import traceback as traceback_module
from datetime import datetime
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from .fields import AwareDateTimeField
from .job import DjangoJob

__all__ = [
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "DjangoJobExecution",
    "ExecutionQuerySet",
    "ExecutionStatus",
    "format_exception",
    "format_traceback",
]


class ExecutionStatus(models.TextChoices):
    """How a fire of a job ended (or that it is still running)."""

    #: Waiting for any scheduler process to take it: asked for by hand ("run now"),
    #: or handed back by a process that died (or stopped) before starting it.
    PENDING = "pending", _("pending")
    #: Taken by a scheduler process, which will start it soon; not started yet.
    CLAIMED = "claimed", _("claimed")
    #: Started: a worker called (or is about to call, at once) the job. For a
    #: ``django.tasks`` job: being enqueued, or (once a task worker said so) running there.
    RUNNING = "running", _("running")
    #: A ``django.tasks`` job's fire, handed to its task backend; its worker has not
    #: started it yet.
    ENQUEUED = "enqueued", _("enqueued")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    MISSED = "missed", _("missed")
    SKIPPED = "skipped", _("skipped")
    INTERRUPTED = "interrupted", _("interrupted")


#: Statuses of a fire that has not ended yet.
OPEN_STATUSES = frozenset(
    {
        ExecutionStatus.PENDING,
        ExecutionStatus.CLAIMED,
        ExecutionStatus.RUNNING,
        ExecutionStatus.ENQUEUED,
    }
)

#: Statuses that count against a job's max_instances, in every process.
ACTIVE_STATUSES = frozenset({ExecutionStatus.CLAIMED, ExecutionStatus.RUNNING})

#: Statuses a fire never leaves.
FINAL_STATUSES = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.MISSED,
        ExecutionStatus.SKIPPED,
        ExecutionStatus.INTERRUPTED,
    }
)


def format_exception(exc: BaseException) -> str:
    """``"ValueError: the message"``, the exception text as the ledger keeps it."""
    return "".join(traceback_module.format_exception_only(type(exc), exc)).strip()


def format_traceback(frames: str | None, exc: BaseException | None) -> str:
    """
    A whole traceback, as Python prints it, from APScheduler's event.

    APScheduler's events carry only the formatted frames: the header and the
    exception line are added back, so the ledger reads like any traceback.
    """
    if not frames:
        return ""
    text = "Traceback (most recent call last):\n" + frames
    if exc is not None:
        text += "".join(traceback_module.format_exception_only(type(exc), exc))
    return text


class ExecutionQuerySet(models.QuerySet["DjangoJobExecution"]):
    def for_fire(self, job_id: str, run_time: datetime) -> ExecutionQuerySet:
        return self.filter(job_id=job_id, run_time=run_time)

    def running(self) -> ExecutionQuerySet:
        return self.filter(status=ExecutionStatus.RUNNING)

    def pending(self) -> ExecutionQuerySet:
        return self.filter(status=ExecutionStatus.PENDING)

    # The verbs that change the status are the ledger module's (one owner of every
    # status write); they are reached from the manager, as Django users expect.

    def request_run(self, job: DjangoJob, *, requested_by: str = "") -> DjangoJobExecution:
        """A pending, manual fire of ``job`` now: see :func:`..ledger.request_run`."""
        from ..ledger import request_run

        return request_run(self, job, requested_by=requested_by)

    def record_start(self, **fire: Any) -> bool:
        """See :func:`..ledger.record_start`."""
        from ..ledger import record_start

        return record_start(self, **fire)

    def record_outcome(self, **outcome: Any) -> None:
        """See :func:`..ledger.record_outcome`."""
        from ..ledger import record_outcome

        record_outcome(self, **outcome)


class DjangoJobExecution(models.Model):
    """
    The run ledger: one row per (job, scheduled run time), and never two.

    The unique key is what makes a second dispatch of the same fire
    impossible, in every process and on every machine. Rows keep the job's id
    (not a cascading foreign key), so history outlives the job.
    """

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(
        DjangoJob,
        verbose_name=_("job"),
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        # The unique key (job, run time) serves every lookup by job: each index
        # more is written at every fire.
        db_index=False,
        related_name="executions",
        help_text=_("The job's id; kept after the job is removed."),
    )
    job_name = models.CharField(_("job name"), max_length=255, blank=True, default="")
    run_time = AwareDateTimeField(_("scheduled run time"))
    # Indexed as the first column of metronome_exec_status_idx (status, run time).
    status = models.CharField(_("status"), max_length=16, choices=ExecutionStatus.choices)
    node = models.CharField(
        _("scheduler process"), max_length=255, blank=True, default="", db_index=True
    )
    claimed_at = AwareDateTimeField(_("claimed at"), null=True, blank=True)
    started_at = AwareDateTimeField(_("started at"), null=True, blank=True)
    finished_at = AwareDateTimeField(_("finished at"), null=True, blank=True)
    duration = models.DurationField(
        _("duration"), null=True, blank=True, help_text=_("How long the job itself ran.")
    )
    lateness = models.DurationField(
        _("lateness"),
        null=True,
        blank=True,
        help_text=_("How long after its scheduled time the run started (or was given up)."),
    )
    reason = models.TextField(
        _("reason"), blank=True, default="", help_text=_("Why a fire was skipped or missed.")
    )
    manual = models.BooleanField(
        _("run by hand"),
        default=False,
        help_text=_("Asked for with 'run now', outside the job's schedule."),
    )
    exception = models.TextField(_("exception"), blank=True, default="")
    traceback = models.TextField(_("traceback"), blank=True, default="")
    # Nullable without defaults: added by ALTER TABLE, without rebuilding SQLite's table.
    nominal_time = AwareDateTimeField(
        _("nominal run time"),
        null=True,
        blank=True,
        help_text=_(
            "The schedule's own time of a jittered fire (docs/schedules.md); empty when it "
            "is the scheduled run time."
        ),
    )
    backfilled = models.BooleanField(
        _("backfilled"),
        null=True,
        blank=True,
        help_text=_("Run by a backfill of a past range of the schedule; empty when not."),
    )
    # Where a django.tasks job's fire went (docs/tasks.md). Nullable without a default:
    # added by ALTER TABLE on every database, without rebuilding SQLite's table.
    task_backend = models.CharField(  # noqa: DJ001  (NULL: not a task fire)
        _("task backend"), max_length=64, null=True, blank=True
    )
    task_queue = models.CharField(  # noqa: DJ001
        _("task queue"), max_length=64, null=True, blank=True
    )
    task_result_id = models.CharField(  # noqa: DJ001
        _("task result id"), max_length=255, null=True, blank=True, db_index=True
    )
    task_worker = models.CharField(  # noqa: DJ001
        _("task worker"), max_length=255, null=True, blank=True
    )

    objects = ExecutionQuerySet.as_manager()

    class Meta:
        verbose_name = _("job execution")
        verbose_name_plural = _("job executions")
        constraints = [
            models.UniqueConstraint(fields=["job", "run_time"], name="metronome_one_run_per_fire"),
        ]
        indexes = [
            # The ledger newest first (the admin's list and its pages, read by key from
            # the index alone; the dashboard's latest runs), and pruning by age.
            models.Index(fields=["run_time", "id"], name="metronome_exec_time_idx"),
            # Runs of one status in a time window: the dashboard's counts and
            # failures, pending run-now requests, the ledger filtered by status.
            models.Index(fields=["status", "run_time"], name="metronome_exec_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} at {self.run_time.isoformat()} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES
