"""
Importing the jobs and run history of a django-apscheduler database, once.

``manage.py import_django_apscheduler`` is built on this package, the only
place in django-metronome that reads pickle (in :mod:`.unpickle`):
django-apscheduler (0.7 and earlier) keeps each job as the pickle of
APScheduler's ``Job.__getstate__()`` in ``django_apscheduler_djangojob.job_state``,
and its runs in
``django_apscheduler_djangojobexecution``. Both tables are read with raw SQL
(the ``django_apscheduler`` app need not be installed) and never changed.

**Reading pickle can run code.** A pickle is a small program, and a crafted
one calls any function it names while it is being read. The states are read
with an unpickler that loads only what an APScheduler job state is made of
(APScheduler's trigger classes, datetimes, time zones and plain values) and
refuses anything else, so a row naming ``os.system`` is listed as not
importable instead of being run. That narrows the risk; it does not remove it
(a bug in any of those classes' unpickling would be reachable). Only import a
database you trust, such as your own project's.

Each job is rebuilt from its state and stored by :class:`DjangoJobStore` as
versioned JSON, as a job added at run time: its function must be importable
and allowed (:mod:`django_metronome.allowlist`), its arguments must be JSON,
and its trigger must have a codec. A job that fails any of these is reported
with the reason and left where it was.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.jobstores.base import ConflictingIdError
from django.conf import settings
from django.db import connections
from django.utils.dateparse import parse_datetime

from ..exceptions import ForbiddenFunction, SerializationError
from ..models import DjangoJob, DjangoJobExecution, ExecutionStatus, JobSource
from ..store.allowlist import resolve as resolve_allowed
from ..store.db import from_db, to_db
from ..store.jobs import MetronomeJob, encode_job
from ..store.jobstore import DjangoJobStore
from .unpickle import NotImportable, load_job_state, without_job_prefix

__all__ = [
    "JOB_TABLE",
    "RUN_TABLE",
    "ImportReport",
    "JobOutcome",
    "LegacyImport",
    "NotImportable",
    "load_job_state",
]

JOB_TABLE = "django_apscheduler_djangojob"
RUN_TABLE = "django_apscheduler_djangojobexecution"

#: The "scheduler process" of imported runs, in the ledger.
IMPORTED_NODE = "django-apscheduler (imported)"

#: Runs read and written per round trip.
BATCH_SIZE = 1000

#: django-apscheduler's run statuses, and ours.
STATUSES = {
    "Executed": ExecutionStatus.SUCCEEDED,
    "Error!": ExecutionStatus.FAILED,
    "Missed!": ExecutionStatus.MISSED,
    "Max instances!": ExecutionStatus.SKIPPED,
    "Started execution": ExecutionStatus.INTERRUPTED,
}

_IMPORTED = "(Imported from django-apscheduler.)"
REASONS = {
    ExecutionStatus.MISSED: (
        "django-apscheduler recorded this fire as missed: it was due longer ago than "
        f"the job's misfire grace time allows. {_IMPORTED}"
    ),
    ExecutionStatus.SKIPPED: (
        "django-apscheduler skipped this fire: the job already had its maximum number "
        f"of instances running. {_IMPORTED}"
    ),
    ExecutionStatus.INTERRUPTED: (
        "django-apscheduler recorded only the start of this run, and the import found "
        "it unfinished: the process running it may have died, or its outcome was "
        f"never written. {_IMPORTED}"
    ),
}


# --- the report --------------------------------------------------------------------


@dataclass
class JobOutcome:
    """What the import did with one legacy job."""

    job_id: str
    #: ``imported``, ``replaced``, ``present`` (already in django-metronome),
    #: ``declared`` (declared in code here; left alone) or ``failed``.
    action: str
    detail: str = ""
    func_ref: str = ""
    next_run_time: datetime | None = None


@dataclass
class ImportReport:
    dry_run: bool
    jobs: list[JobOutcome] = field(default_factory=list)
    #: New ledger rows, by status.
    runs_added: Counter[str] = field(default_factory=Counter)
    #: Legacy runs whose fire was already in the ledger (an earlier import).
    runs_present: int = 0
    #: Legacy statuses this import did not know (kept as interrupted), by text.
    unknown_statuses: Counter[str] = field(default_factory=Counter)

    def count(self, action: str) -> int:
        return sum(1 for outcome in self.jobs if outcome.action == action)

    @property
    def failed(self) -> list[JobOutcome]:
        return [outcome for outcome in self.jobs if outcome.action == "failed"]


# --- the import --------------------------------------------------------------------


class LegacyImport:
    """
    One import of a django-apscheduler database.

    :param source: the database alias holding the ``django_apscheduler_*`` tables.
    :param replace: overwrite jobs already in django-metronome (those declared in
        code excepted: code owns them).
    :param dry_run: read and check everything, write nothing.
    """

    def __init__(self, source: str, *, replace: bool = False, dry_run: bool = False) -> None:
        self.source = source
        self.replace = replace
        self.dry_run = dry_run
        self.store = DjangoJobStore()
        self.store.start(None, "default")  # type: ignore[arg-type]
        #: Where django-metronome's tables are.
        self.target = self.store.database
        self._names: dict[str, str] = {}

    # -- reading the legacy tables ---------------------------------------------------

    def missing_tables(self) -> list[str]:
        connection = connections[self.source]
        with connection.cursor() as cursor:
            present = set(connection.introspection.table_names(cursor))
        return [table for table in (JOB_TABLE, RUN_TABLE) if table not in present]

    def _query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        connection = connections[self.source]
        with connection.cursor() as cursor:
            cursor.execute(sql, params or [])
            return list(cursor.fetchall())

    def read_jobs(self) -> list[tuple[str, bytes]]:
        quote = connections[self.source].ops.quote_name
        rows = self._query(f"SELECT id, job_state FROM {quote(JOB_TABLE)} ORDER BY id")  # noqa: S608
        return [(job_id, bytes(state) if state is not None else b"") for job_id, state in rows]

    def count(self, table: str) -> int:
        quote = connections[self.source].ops.quote_name
        return int(self._query(f"SELECT COUNT(*) FROM {quote(table)}")[0][0])  # noqa: S608

    def read_runs(self) -> Iterator[list[tuple[Any, ...]]]:
        """The legacy runs in batches, by id (keyset paging: flat memory on any size)."""
        quote = connections[self.source].ops.quote_name
        sql = (
            "SELECT id, job_id, status, run_time, duration, finished, exception, traceback "  # noqa: S608
            f"FROM {quote(RUN_TABLE)} WHERE id > %s ORDER BY id LIMIT {BATCH_SIZE}"
        )
        last = -1
        while rows := self._query(sql, [last]):
            yield rows
            last = rows[-1][0]

    def _aware(self, value: Any) -> datetime | None:
        """A datetime read by raw SQL, as an aware UTC datetime, whatever the backend."""
        if value is None:
            return None
        if isinstance(value, str):
            parsed = parse_datetime(value)
            if parsed is None:
                raise ValueError(f"{value!r} is not a datetime")
            value = parsed
        if value.tzinfo is None:
            # Naive values are in the connection's zone (UTC by default) with USE_TZ,
            # in TIME_ZONE without it: what Django itself would assume.
            zone = connections[self.source].timezone or ZoneInfo(settings.TIME_ZONE)
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)

    # -- jobs --------------------------------------------------------------------------

    def rebuild(self, job_id: str, data: bytes) -> MetronomeJob:
        """The legacy job as a django-metronome job; raise NotImportable with the reason."""
        state = load_job_state(data)
        self._names[job_id] = state.get("name") or ""
        func_ref = state["func"]
        try:
            func = resolve_allowed(job_id, func_ref)
        except ForbiddenFunction as exc:
            if exc.why:
                raise NotImportable(f"its function {func_ref} is refused: {exc.why}") from None
            module = func_ref.partition(":")[0]
            raise NotImportable(
                f"its function {func_ref} is not in an installed app, the project's package "
                f"or METRONOME['ALLOWED_MODULES'] (add {module!r} there if it is your code)"
            ) from None
        except LookupError as exc:
            cause = exc.__cause__ or exc
            raise NotImportable(
                f"its function {func_ref} cannot be imported: {type(cause).__name__}: {cause}"
            ) from None
        job = MetronomeJob.__new__(MetronomeJob)
        job._scheduler = None
        job._jobstore_alias = None
        job.id = job_id
        job.name = state.get("name") or func_ref.rpartition(":")[2]
        job.func_ref = func_ref
        job.func = func
        job.misfire_policy = None
        job.overlap = None
        try:
            job.trigger = state["trigger"]
            job.executor = state.get("executor") or "default"
            job.args = tuple(state.get("args") or ())
            job.kwargs = dict(state.get("kwargs") or {})
            job.misfire_grace_time = state.get("misfire_grace_time")
            job.coalesce = bool(state.get("coalesce", True))
            job.max_instances = int(state.get("max_instances") or 1)
            next_run_time = state.get("next_run_time")
        except (KeyError, TypeError, ValueError) as exc:
            raise NotImportable(f"its pickled state is incomplete: {exc!r}") from None
        if isinstance(next_run_time, datetime) and next_run_time.tzinfo is None:
            next_run_time = next_run_time.replace(tzinfo=ZoneInfo(settings.TIME_ZONE))
        job.next_run_time = next_run_time
        try:
            encode_job(job)  # the arguments are JSON, the trigger has a codec
        except SerializationError as exc:
            raise NotImportable(without_job_prefix(str(exc), job_id)) from None
        return job

    def import_job(self, job_id: str, data: bytes) -> JobOutcome:
        try:
            job = self.rebuild(job_id, data)
        except NotImportable as exc:
            return JobOutcome(job_id, "failed", str(exc))
        outcome = JobOutcome(job_id, "", func_ref=job.func_ref, next_run_time=job.next_run_time)
        existing = (
            DjangoJob.objects.using(self.target)
            .filter(pk=job_id)
            .values("source", "func_ref", "state", "name")
            .first()
        )
        try:
            if existing is None:
                outcome.action = "imported"
                if not self.dry_run:
                    self.store.add_job(job)
            elif existing["source"] == JobSource.CODE:
                outcome.action = "declared"
                outcome.detail = "declared in your code under this id: left as it is"
            elif self.replace:
                outcome.action = "replaced"
                if not self.dry_run:
                    self.store.update_job(job)
            else:
                func_ref, state = encode_job(job)
                same = (existing["func_ref"], existing["state"], existing["name"]) == (
                    func_ref,
                    state,
                    job.name,
                )
                outcome.action = "present"
                outcome.detail = (
                    "already in django-metronome"
                    if same
                    else "already in django-metronome, and different: --replace overwrites it"
                )
        except ConflictingIdError:
            outcome.action = "present"
            outcome.detail = "added to django-metronome meanwhile, by another process"
        except (SerializationError, PermissionError) as exc:
            return JobOutcome(job_id, "failed", str(exc))
        return outcome

    # -- history -----------------------------------------------------------------------

    def execution(self, row: tuple[Any, ...]) -> DjangoJobExecution:
        """One legacy run as an (unsaved) ledger row."""
        _, job_id, text, run_time, duration, finished, exception, traceback = row
        status = STATUSES.get(text)
        seconds = None if duration is None else timedelta(seconds=float(duration))
        fields: dict[str, Any] = {
            "job_id": job_id,
            "job_name": self._names.get(job_id, ""),
            "run_time": to_db(self._aware(run_time)),
            "node": IMPORTED_NODE,
            "finished_at": (
                None if finished is None else to_db(datetime.fromtimestamp(float(finished), UTC))
            ),
        }
        if status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED):
            # django-apscheduler measured from the scheduled time: lateness included.
            fields["duration"] = seconds
            if status == ExecutionStatus.FAILED:
                fields["exception"] = exception or ""
                fields["traceback"] = traceback or ""
        elif status in (ExecutionStatus.MISSED, ExecutionStatus.SKIPPED):
            # Measured from the scheduled time to when the fire was given up.
            fields["lateness"] = seconds
            fields["reason"] = REASONS[status]
        elif status == ExecutionStatus.INTERRUPTED:
            fields["reason"] = REASONS[status]
        else:
            status = ExecutionStatus.INTERRUPTED
            fields["reason"] = (
                f"django-apscheduler recorded the status {text!r}, which the import does not "
                f"know; kept as interrupted. {_IMPORTED}"
            )
            fields["exception"] = exception or ""
            fields["traceback"] = traceback or ""
        return DjangoJobExecution(status=status, **fields)

    def import_runs(self, rows: list[tuple[Any, ...]], report: ImportReport) -> None:
        by_job: dict[str, list[DjangoJobExecution]] = defaultdict(list)
        for row in rows:
            if row[2] not in STATUSES:
                report.unknown_statuses[str(row[2])] += 1
            run = self.execution(row)
            by_job[run.job_id].append(run)
        ledger = DjangoJobExecution.objects.using(self.target)
        new: list[DjangoJobExecution] = []
        for job_id, runs in by_job.items():
            # The ledger's key is (job, scheduled time): a fire already there (an
            # earlier import, or the same fire run since) is not added again.
            present = {
                from_db(value)
                for value in ledger.filter(
                    job_id=job_id, run_time__in=[run.run_time for run in runs]
                ).values_list("run_time", flat=True)
            }
            for run in runs:
                key = from_db(run.run_time)
                if key in present:
                    report.runs_present += 1
                else:
                    present.add(key)
                    new.append(run)
        if new and not self.dry_run:
            ledger.bulk_create(new, ignore_conflicts=True)
        report.runs_added.update(run.status for run in new)

    # -- all of it ---------------------------------------------------------------------

    def run(self) -> ImportReport:
        report = ImportReport(dry_run=self.dry_run)
        for job_id, data in self.read_jobs():
            report.jobs.append(self.import_job(job_id, data))
        for rows in self.read_runs():
            self.import_runs(rows, report)
        return report
