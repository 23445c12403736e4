"""
The three tables: jobs, the run ledger, and the scheduler processes.

Models own their state transitions: the ledger's status changes only through
the verbs on :class:`ExecutionQuerySet` and :class:`DjangoJobExecution`, and a
job is quarantined only through :meth:`JobQuerySet.quarantine`.
"""

from __future__ import annotations

import traceback as traceback_module
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from .util import from_db, to_db, utcnow


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

    def pause(self, until: datetime | None = None) -> int:
        """
        Pause these jobs (no fire until resumed); with ``until``, they resume then.

        Running schedulers see it at their next look at the database.
        """
        return self.update(next_run_time=None, paused_until=to_db(until), updated_at=utcnow())

    def resume_due(self, now: datetime | None = None) -> list[str]:
        """Resume the jobs whose ``paused_until`` has come; return their ids."""
        now = now or utcnow()
        due = self.filter(paused_until__lte=to_db(now), next_run_time__isnull=True)
        return [job.id for job in due if job.resume(now) is not None]

    def quarantine(self, job_id: str, reason: str) -> bool:
        """
        Mark a job that cannot be loaded, keeping the row.

        Return True only for the call that moved it into quarantine, so that the
        reason is logged once across all processes.
        """
        return bool(
            self.filter(pk=job_id, quarantined_at__isnull=True).update(
                quarantined_at=utcnow(), quarantine_reason=reason
            )
        )


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


class AwareDateTimeField(models.DateTimeField):
    """
    A datetime that is aware on both sides of the ORM, whatever ``USE_TZ`` says.

    The package works in aware datetimes (APScheduler does). With
    ``USE_TZ=True`` this is Django's own DateTimeField. With ``USE_TZ=False``
    Django stores naive wall times in ``TIME_ZONE``: aware values are
    converted to that on the way in, and naive values read back are taken to be
    in ``TIME_ZONE`` and returned in UTC. (Within the repeated hour of a DST
    change such a wall time names two instants; the first is taken. That is
    the cost of ``USE_TZ=False``.)
    """

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if isinstance(value, datetime) and value.tzinfo is not None and not settings.USE_TZ:
            return to_db(value)
        return value

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return from_db(value) if isinstance(value, datetime) else value


class JobIdField(models.CharField):
    """
    A job id, compared exactly on every database.

    MySQL's and MariaDB's default collations are case- and accent-insensitive
    and ignore trailing spaces: "Report", "report" and "rapport" would be one
    key. There the column gets a binary collation (which the ledger's
    ``job_id`` copies, as a foreign key takes its target's collation).
    """

    def db_parameters(self, connection: Any) -> dict[str, Any]:
        params = super().db_parameters(connection)
        if connection.vendor == "mysql" and not self.db_collation:
            if connection.mysql_is_mariadb:
                params["collation"] = "utf8mb4_nopad_bin"
            elif connection.mysql_version >= (8, 0, 17):
                params["collation"] = "utf8mb4_0900_bin"
            else:
                params["collation"] = "utf8mb4_bin"
        return params


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
        ]

    def __str__(self) -> str:
        return self.name or self.id

    @property
    def is_paused(self) -> bool:
        return self.next_run_time is None

    def pause(self, until: datetime | None = None) -> None:
        """Pause this job, until ``until`` if given (it then resumes by itself)."""
        DjangoJob.objects.using(self._state.db).filter(pk=self.pk).pause(until)
        self.next_run_time, self.paused_until = None, until

    def resume(self, now: datetime | None = None) -> datetime | None:
        """
        Resume this job at the first fire of its trigger from ``now`` on.

        Return that time, or None when the schedule has ended (the job stays
        paused, so nothing is lost; remove it when it is no longer wanted).
        """
        from .triggers import next_fire_time

        now = now or utcnow()
        upcoming = next_fire_time(self.trigger(), None, now)
        if upcoming is None:
            return None
        DjangoJob.objects.using(self._state.db).filter(pk=self.pk).update(
            next_run_time=to_db(upcoming), paused_until=None, updated_at=utcnow()
        )
        self.next_run_time, self.paused_until = upcoming, None
        return upcoming

    def run_now(self, requested_by: str = "") -> DjangoJobExecution:
        """
        Ask the running schedulers to run this job once, now, outside its schedule.

        Return the fire's ledger row, pending until a scheduler process takes it
        (within its poll interval). The job's next run time does not move.
        """
        return DjangoJobExecution.objects.using(self._state.db or "default").request_run(
            self, requested_by=requested_by
        )

    @property
    def time_zone(self) -> str:
        """The job's IANA time zone, as stored in its state."""
        state = self.state if isinstance(self.state, dict) else {}
        return state.get("timezone") or "UTC"

    def trigger(self) -> Any:
        """The job's APScheduler trigger, rebuilt from its JSON state."""
        from .serialization import decode_trigger

        return decode_trigger(self.state["trigger"])

    def next_fire_times(self, count: int = 10, now: datetime | None = None) -> list[datetime]:
        """
        The next ``count`` fire times by the job's trigger, DST-aware, in its zone.

        They are what the schedule says from ``now`` on (default: now), whether or
        not the job is paused.
        """
        from .preview import next_fire_times

        return next_fire_times(self.trigger(), count, now)

    def describe_schedule(self) -> str:
        """The schedule in words, e.g. ``At 08:00 every day (Asia/Seoul)``."""
        from .preview import describe_trigger

        try:
            return describe_trigger(self.trigger())
        except Exception:
            return "(a schedule this release cannot read)"

    @property
    def is_quarantined(self) -> bool:
        return self.quarantined_at is not None


class ExecutionStatus(models.TextChoices):
    """How a fire of a job ended (or that it is still running)."""

    #: Waiting for any scheduler process to take it: asked for by hand ("run now"),
    #: or handed back by a process that died (or stopped) before starting it.
    PENDING = "pending", _("pending")
    #: Taken by a scheduler process, which will start it soon; not started yet.
    CLAIMED = "claimed", _("claimed")
    #: Started: a worker called (or is about to call, at once) the job.
    RUNNING = "running", _("running")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    MISSED = "missed", _("missed")
    SKIPPED = "skipped", _("skipped")
    INTERRUPTED = "interrupted", _("interrupted")


#: Statuses of a fire that has not ended yet.
OPEN_STATUSES = frozenset(
    {ExecutionStatus.PENDING, ExecutionStatus.CLAIMED, ExecutionStatus.RUNNING}
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

    def request_run(self, job: DjangoJob, *, requested_by: str = "") -> DjangoJobExecution:
        """A pending, manual fire of ``job`` at the current time (see ``DjangoJob.run_now``)."""
        now = utcnow()
        reason = "Run now" + (f", asked for by {requested_by}." if requested_by else ".")
        return self.create(
            job_id=job.pk,
            job_name=job.name,
            run_time=to_db(now),
            status=ExecutionStatus.PENDING,
            manual=True,
            reason=reason,
        )

    def record_start(
        self,
        *,
        job_id: str,
        run_time: datetime,
        node: str,
        job_name: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        """
        Write the ledger row of a fire being dispatched, if there is none yet.

        Return False when the fire already has a row: it was dispatched before,
        or its outcome arrived first (events are not ordered). Datetimes are aware.
        """
        run_time, now = to_db(run_time), to_db(now or utcnow())
        # Read before the transaction: on SQLite, a read inside it followed by the
        # insert would need a lock upgrade, which fails at once under contention.
        name = self._job_name(job_id) if job_name is None else job_name
        try:
            with transaction.atomic(using=self.db):
                self.create(
                    job_id=job_id,
                    job_name=name,
                    run_time=run_time,
                    status=ExecutionStatus.RUNNING,
                    node=node,
                    claimed_at=now,
                    started_at=now,
                    lateness=now - run_time,
                )
        except IntegrityError:
            return False
        return True

    def record_outcome(
        self,
        *,
        job_id: str,
        run_time: datetime,
        status: ExecutionStatus,
        node: str = "",
        job_name: str | None = None,
        now: datetime | None = None,
        started_at: datetime | None = None,
        exception: str = "",
        traceback: str = "",
        reason: str = "",
    ) -> None:
        """
        Move a fire to a final status, creating its row if the start was never seen.

        ``now`` is when it ended; ``started_at``, when known, is when the job
        itself began, which makes the duration exact. A final status is never
        overwritten: the first outcome recorded wins. Datetimes are aware.
        """
        run_time, now, started_at = to_db(run_time), to_db(now or utcnow()), to_db(started_at)
        fields: dict[str, Any] = {
            "status": status,
            "finished_at": now,
            "exception": exception,
            "traceback": traceback,
            "reason": reason,
        }
        if started_at is not None:
            fields.update(
                started_at=started_at, duration=now - started_at, lateness=started_at - run_time
            )
        elif status == ExecutionStatus.MISSED:
            fields["lateness"] = now - run_time
        open_rows = self.for_fire(job_id, run_time).exclude(status__in=FINAL_STATUSES)
        if self._finish(open_rows, fields):
            return
        name = self._job_name(job_id) if job_name is None else job_name
        try:
            with transaction.atomic(using=self.db):
                # Without a start time the start stays unknown rather than made up.
                self.create(job_id=job_id, job_name=name, run_time=run_time, node=node, **fields)
        except IntegrityError:
            # The start arrived meanwhile: finish that row instead.
            self._finish(open_rows, fields)

    def _job_name(self, job_id: str) -> str:
        """The job's name, for a row that must stay readable after the job is gone."""
        names = DjangoJob.objects.using(self.db).filter(pk=job_id).values_list("name", flat=True)
        return names.first() or ""

    @staticmethod
    def _finish(rows: ExecutionQuerySet, fields: dict[str, Any]) -> bool:
        if "duration" in fields:
            return bool(rows.update(**fields))
        # Only the start is known: the duration runs from it to the end.
        end = fields["finished_at"]
        updated = rows.filter(started_at__isnull=False).update(
            duration=end - F("started_at"), **fields
        )
        updated += rows.filter(started_at__isnull=True).update(**fields)
        return bool(updated)


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
        related_name="executions",
        help_text=_("The job's id; kept after the job is removed."),
    )
    job_name = models.CharField(_("job name"), max_length=255, blank=True, default="")
    run_time = AwareDateTimeField(_("scheduled run time"))
    status = models.CharField(
        _("status"), max_length=16, choices=ExecutionStatus.choices, db_index=True
    )
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

    objects = ExecutionQuerySet.as_manager()

    class Meta:
        verbose_name = _("job execution")
        verbose_name_plural = _("job executions")
        constraints = [
            models.UniqueConstraint(fields=["job", "run_time"], name="metronome_one_run_per_fire"),
        ]
        indexes = [
            models.Index(fields=["run_time"], name="metronome_exec_run_time_idx"),
            models.Index(fields=["job", "-run_time"], name="metronome_exec_job_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} at {self.run_time.isoformat()} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


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
