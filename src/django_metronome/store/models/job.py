"""
The jobs table: one row per job, what to call, with what, and when next.

A job owns its state transitions: it is paused, resumed, quarantined and
ended only through the verbs here (and the claim, which advances it).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from ..db import to_db, utcnow
from .fields import AwareDateTimeField, JobIdField

__all__ = ["DjangoJob", "JobManager", "JobQuerySet", "JobSource", "LiveJobManager"]


class JobQuerySet(models.QuerySet["DjangoJob"]):
    def loadable(self) -> JobQuerySet:
        """Jobs that are not quarantined."""
        return self.filter(quarantined_at__isnull=True)

    def quarantined(self) -> JobQuerySet:
        return self.filter(quarantined_at__isnull=False)

    def due(self, now: datetime) -> JobQuerySet:
        """Loadable jobs whose next run time is at or before ``now``, earliest first."""
        return self.loadable().filter(next_run_time__lte=now).order_by("next_run_time", "id")

    def runnable_by(self, declared: Iterable[str]) -> JobQuerySet:
        """
        Jobs a process can run: any added at run time, and those declared in code
        whose ids are in ``declared`` (the process's registry).
        """
        declared = list(declared)
        runnable = Q(source=JobSource.RUNTIME)
        if declared:
            runnable |= Q(source=JobSource.CODE, pk__in=declared)
        return self.filter(runnable)

    def in_run_order(self) -> JobQuerySet:
        """Earliest next run first, paused jobs last, ties broken by id."""
        return self.order_by(F("next_run_time").asc(nulls_last=True), "id")

    def pause(self, until: datetime | None = None, *, note: str = "", by: str = "") -> int:
        """
        Pause these jobs (no fire until resumed); with ``until``, they resume then.

        ``note`` says why, ``by`` who (by default, who acts: see
        :func:`..audit.acting`); both are shown until the job is resumed. Each
        job's pause is in the audit trail. Running schedulers see it at their
        next look at the database.
        """
        from ..audit import current_actor, record_changes

        now = utcnow()
        by = by or current_actor()[1]
        jobs = list(self.values_list("id", "name"))
        paused = self.update(
            next_run_time=None,
            paused_until=to_db(until),
            paused_at=now,
            paused_by=by or None,
            pause_note=note or None,
            updated_at=now,
        )
        until_text = None if until is None else until.isoformat()
        record_changes(jobs, "paused", note=note, after={"paused_until": until_text}, using=self.db)
        return paused

    def resume_due(self, now: datetime | None = None) -> list[str]:
        """Resume the jobs whose ``paused_until`` has come; return their ids."""
        from ..audit import acting, process_actor

        now = now or utcnow()
        due = self.filter(paused_until__lte=to_db(now), next_run_time__isnull=True)
        with acting("scheduler", process_actor()):
            return [job.id for job in due if job.resume(now) is not None]

    def quarantine(self, job_id: str, reason: str) -> bool:
        """
        Mark a job that cannot be loaded, keeping the row.

        Return True only for the call that moved it into quarantine, so that the
        reason is logged once across all processes.
        """
        from ..audit import acting, process_actor, record_change

        moved = bool(
            self.filter(pk=job_id, quarantined_at__isnull=True).update(
                quarantined_at=utcnow(), quarantine_reason=reason
            )
        )
        if moved:
            with acting("scheduler", process_actor()):
                record_change(job_id, "quarantined", note=reason, using=self.db)
        return moved


JobManager = models.Manager.from_queryset(JobQuerySet)


class LiveJobManager(JobManager):  # type: ignore[misc,valid-type]
    """
    The jobs that exist for their users: those whose schedule has not ended.

    A job whose schedule ends (a one-shot job that fired, say) keeps its row
    until its last fire has finished, so that a fire its process never
    started can still be run by another process; meanwhile it is invisible
    here, as APScheduler removes such a job.
    """

    def get_queryset(self) -> Any:
        return super().get_queryset().filter(ended_at__isnull=True)


class JobSource(models.TextChoices):
    """Where a job comes from, which decides which processes may run it."""

    #: Declared in code (before the scheduler starts, or with a function that has
    #: no importable reference): run only by processes that declared it.
    CODE = "code", _("declared in code")
    #: Added at run time with an importable function: any process may run it.
    RUNTIME = "runtime", _("added at run time")


class DjangoJob(models.Model):
    """One scheduled job: what to call, with what, and when next."""

    id = JobIdField(_("id"), max_length=255, primary_key=True)
    name = models.CharField(_("name"), max_length=255, blank=True)
    source = models.CharField(
        _("source"), max_length=16, choices=JobSource.choices, default=JobSource.RUNTIME
    )
    func_ref = models.CharField(
        _("function"),
        max_length=500,
        help_text=_("The 'module:qualname' reference of the function the job calls."),
    )
    state = models.JSONField(
        _("state"),
        default=dict,
        help_text=_("Versioned JSON: trigger, arguments, executor and run options."),
    )
    next_run_time = AwareDateTimeField(
        _("next run time"),
        null=True,
        blank=True,
        help_text=_("In UTC. Empty while the job is paused."),
    )
    ended_at = AwareDateTimeField(
        _("ended at"),
        null=True,
        blank=True,
        help_text=_(
            "Its schedule has ended; the row goes once its last fire has finished. "
            "Hidden from every list meanwhile."
        ),
    )
    quarantined_at = AwareDateTimeField(_("quarantined at"), null=True, blank=True)
    quarantine_reason = models.TextField(_("quarantine reason"), blank=True, default="")
    paused_until = AwareDateTimeField(
        _("paused until"),
        null=True,
        blank=True,
        help_text=_("A paused job resumes by itself at this time."),
    )
    # Who paused the job, when and why: shown until it is resumed (then cleared).
    # Nullable without defaults: added to the table without rebuilding it.
    paused_at = AwareDateTimeField(_("paused at"), null=True, blank=True)
    paused_by = models.CharField(  # noqa: DJ001
        _("paused by"), max_length=255, null=True, blank=True
    )
    pause_note = models.TextField(  # noqa: DJ001
        _("pause note"), null=True, blank=True, help_text=_("Why the job is paused.")
    )
    orphaned_at = AwareDateTimeField(
        _("orphaned at"),
        null=True,
        blank=True,
        help_text=_(
            "Declared in code once, but no running scheduler declares it any more: not run."
        ),
    )
    created_at = AwareDateTimeField(_("created at"), auto_now_add=True)
    updated_at = AwareDateTimeField(_("updated at"), auto_now=True)

    #: Jobs as APScheduler, the admin and the command line see them: not ended.
    objects = LiveJobManager()
    #: Every row, ended ones included: for the store's own transactions.
    all_rows = JobManager()

    class Meta:
        base_manager_name = "all_rows"
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        permissions = [
            ("run_djangojob", _("Can run a job now")),
            ("pause_djangojob", _("Can pause a job")),
            ("resume_djangojob", _("Can resume a job")),
        ]
        indexes = [
            # The due-query: WHERE next_run_time <= now ORDER BY next_run_time, id.
            models.Index(fields=["next_run_time", "id"], name="metronome_job_due_idx"),
            # The allow-list sweep: the distinct functions of run-time jobs.
            models.Index(fields=["source", "func_ref"], name="metronome_job_func_idx"),
            # The admin's search by the beginning of a name (LIKE 'text%'; on
            # PostgreSQL only an index of this operator class serves that in every
            # collation, as Django's own "_like" index does for the id).
            models.Index(
                fields=["name"], name="metronome_job_name_idx", opclasses=["varchar_pattern_ops"]
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.id

    @property
    def is_paused(self) -> bool:
        return self.next_run_time is None

    def pause(self, until: datetime | None = None, *, note: str = "", by: str = "") -> None:
        """
        Pause this job, until ``until`` if given (it then resumes by itself).

        ``note`` says why and ``by`` who: both are shown until it is resumed.
        """
        DjangoJob.objects.using(self._state.db).filter(pk=self.pk).pause(until, note=note, by=by)
        self.next_run_time, self.paused_until = None, until
        self.paused_at, self.paused_by, self.pause_note = utcnow(), by or None, note or None

    def resume(self, now: datetime | None = None) -> datetime | None:
        """
        Resume this job at the first fire of its trigger from ``now`` on.

        Return that time, or None when the schedule has ended (the job stays
        paused, so nothing is lost; remove it when it is no longer wanted).
        """
        from ...time.triggers import next_fire_time
        from ..audit import record_change

        now = now or utcnow()
        upcoming = next_fire_time(self.trigger(), None, now)
        if upcoming is None:
            return None
        before = {"paused_by": self.paused_by, "pause_note": self.pause_note}
        record_change(
            self.pk,
            "resumed",
            before={k: v for k, v in before.items() if v},
            after={"next_run_time": upcoming.isoformat()},
            job_name=self.name,
            using=self._state.db,
        )
        DjangoJob.objects.using(self._state.db).filter(pk=self.pk).update(
            next_run_time=to_db(upcoming),
            paused_until=None,
            paused_at=None,
            paused_by=None,
            pause_note=None,
            updated_at=utcnow(),
        )
        self.next_run_time, self.paused_until = upcoming, None
        self.paused_at = self.paused_by = self.pause_note = None
        return upcoming

    def run_now(self, requested_by: str = "") -> Any:
        """
        Ask the running schedulers to run this job once, now, outside its schedule.

        Return the fire's ledger row, pending until a scheduler process takes it
        (within its poll interval). The job's next run time does not move.
        """
        from ..audit import is_acting, record_change
        from .execution import DjangoJobExecution

        run = DjangoJobExecution.objects.using(self._state.db or "default").request_run(
            self, requested_by=requested_by
        )
        record_change(
            self.pk,
            "run_now",
            # Who acts (the admin's user, the OS user), else whoever the caller names.
            actor=None if is_acting() else (requested_by or None),
            after={"execution": run.pk},
            job_name=self.name,
            using=self._state.db,
        )
        return run

    @property
    def time_zone(self) -> str:
        """The job's IANA time zone, as stored in its state."""
        state = self.state if isinstance(self.state, dict) else {}
        return state.get("timezone") or "UTC"

    def trigger(self) -> Any:
        """The job's APScheduler trigger, rebuilt from its JSON state."""
        from ...time.codecs import decode_trigger

        return decode_trigger(self.state["trigger"])

    def next_fire_times(self, count: int = 10, now: datetime | None = None) -> list[datetime]:
        """
        The next ``count`` fire times by the job's trigger, DST-aware, in its zone.

        They are what the schedule says from ``now`` on (default: now), whether or
        not the job is paused.
        """
        from ...time.preview import next_fire_times

        return next_fire_times(self.trigger(), count, now)

    def describe_schedule(self) -> str:
        """The schedule in words, e.g. ``At 08:00 every day (Asia/Seoul)``."""
        from ...time.preview import describe_trigger

        try:
            return describe_trigger(self.trigger())
        except Exception:
            return "(a schedule this release cannot read)"

    @property
    def is_quarantined(self) -> bool:
        return self.quarantined_at is not None
