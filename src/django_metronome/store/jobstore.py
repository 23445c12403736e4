"""
``DjangoJobStore``: APScheduler's job store contract on Django's ORM, in JSON.

The store honours every method of ``apscheduler.jobstores.base.BaseJobStore``
as APScheduler's own stores do (errors, ordering, microsecond precision), with
three differences that are the point of this package:

* job state is versioned JSON (see :mod:`django_metronome.serialization`),
  and a job that cannot be stored is refused when it is added, with an error
  that names the argument or the function at fault;
* a row that cannot be loaded is quarantined (kept, flagged, logged once),
  never deleted;
* every idempotent operation survives a dropped connection by retrying once
  on a fresh one.

``register_events(scheduler)`` records the runs of any APScheduler scheduler
into the ledger, :class:`~django_metronome.models.DjangoJobExecution`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from django import db
from django.db import IntegrityError, connections, transaction

from . import allowlist, audit
from .claims import LOAD_COLUMNS
from .db import (
    close_connection,
    database_alias,
    from_db,
    retry_on_lost_connection,
    to_db,
    utcnow,
    write_transaction,
)
from .declarations import DeclarationsMixin
from .jobs import callable_name, decode_job, encode_job
from .models import (
    DjangoJob,
    JobSource,
    format_exception,
)
from .recorder import recorder_for

__all__ = ["DeclaredElsewhere", "DeclaringScheduler", "DjangoJobStore"]

logger = logging.getLogger("django_metronome.jobstores")


@runtime_checkable
class DeclaringScheduler(Protocol):
    """
    What the store asks of the scheduler it serves: the functions it declared.

    django-metronome's schedulers keep the jobs declared in code in a
    per-process registry (their functions need no importable name). The
    store asks through this one method, never through the scheduler's
    attributes; APScheduler's own schedulers do not have it.
    """

    def declared_function(self, job_id: str) -> Callable[..., Any] | None:
        """The function this process declared for ``job_id``, or None."""


class DeclaredElsewhere:
    """Stands in for the function of a job declared in another process's code."""

    def __init__(self, job_id: str, func_ref: str) -> None:
        self.job_id = job_id
        self.func_ref = func_ref
        self.__qualname__ = self.__name__ = func_ref.rpartition(":")[2] or func_ref

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            f"Job {self.job_id!r} runs {self.func_ref}, which is declared in the code of "
            "other processes, not this one; it runs only where it is declared."
        )

    def __repr__(self) -> str:
        return f"<declared elsewhere: {self.func_ref}>"


def _store_alias(store: DjangoJobStore) -> str:
    return store.database


retry = retry_on_lost_connection(_store_alias)


class DjangoJobStore(DeclarationsMixin, BaseJobStore):
    """
    Keep APScheduler jobs in the Django database.

    :param database: the database alias; by default ``METRONOME["DATABASE"]``,
        then whatever Django's routers choose for writes to ``DjangoJob``.
    """

    def __init__(self, database: str | None = None) -> None:
        super().__init__()
        self._database = database

    @property
    def database(self) -> str:
        return database_alias(self._database)

    @property
    def jobs(self):  # type: ignore[no-untyped-def]
        """The ``DjangoJob`` manager on this store's database."""
        return DjangoJob.objects.using(self.database)

    # -- reading ---------------------------------------------------------------

    @retry
    def lookup_job(self, job_id: str) -> Job | None:
        rows = self.jobs.loadable().filter(pk=job_id).values_list(*LOAD_COLUMNS)
        jobs = self.load_rows(rows)
        return jobs[0] if jobs else None

    @retry
    def get_due_jobs(self, now: datetime) -> list[Job]:
        rows = self.jobs.due(to_db(now)).values_list(*LOAD_COLUMNS)
        return self.load_rows(rows)

    @retry
    def get_next_run_time(self) -> datetime | None:
        value = (
            self.jobs.loadable()
            .filter(next_run_time__isnull=False)
            .order_by("next_run_time")
            .values_list("next_run_time", flat=True)
            .first()
        )
        return from_db(value)

    @retry
    def get_all_jobs(self) -> list[Job]:
        rows = self.jobs.loadable().in_run_order().values_list(*LOAD_COLUMNS)
        return self.load_rows(rows)

    # -- writing ---------------------------------------------------------------

    def add_job(self, job: Job) -> None:
        row = self._row(job)  # refuses what cannot be stored, before any query
        self._add_row(job.id, row)
        audit.record_change(
            job.id, "added", after=audit.snapshot(row), job_name=row["name"], using=self.database
        )

    @retry
    def _add_row(self, job_id: str, row: dict[str, Any]) -> None:
        try:
            with transaction.atomic(using=self.database):
                self.jobs.create(id=job_id, **row)
        except IntegrityError:
            if self._replace_ended(job_id, row):
                return
            # A retry after a lost commit acknowledgement finds its own row:
            # that is success, not a conflict.
            existing = self.jobs.filter(pk=job_id).values("pk", *row).first()
            # The id is compared too: a collation may call two different ids equal.
            if existing is not None and existing.pop("pk") == job_id and existing == row:
                return
            raise ConflictingIdError(job_id) from None

    def _replace_ended(self, job_id: str, row: dict[str, Any]) -> bool:
        """
        Take over the row of a job whose schedule ended (a one-shot job that fired
        and whose fire has not finished yet): for its users the job is gone, and
        the id is free again. Return False if there is no such row.
        """
        with write_transaction(self.database):
            ended = (
                DjangoJob.all_rows.using(self.database)
                .select_for_update()
                .filter(pk=job_id, ended_at__isnull=False)
            )
            if not ended.exists():
                return False
            ended.update(
                **row,
                ended_at=None,
                quarantined_at=None,
                quarantine_reason="",
                orphaned_at=None,
                paused_until=None,
                updated_at=utcnow(),
            )
        return True

    @retry
    def update_job(self, job: Job) -> None:
        row = self._row(job)
        before = self.jobs.filter(pk=job.id).values(*audit.SNAPSHOT_COLUMNS).first()
        if before is None:
            raise JobLookupError(job.id)
        pausing = before["next_run_time"] is not None and row["next_run_time"] is None
        resuming = before["next_run_time"] is None and row["next_run_time"] is not None
        pause: dict[str, Any] = {}
        if pausing:
            pause = {"paused_at": utcnow(), "paused_by": audit.current_actor()[1]}
        elif resuming:
            pause = {"paused_at": None, "paused_by": None, "pause_note": None}
        updated = self.jobs.filter(pk=job.id).update(
            **row, **pause, quarantined_at=None, quarantine_reason="", updated_at=utcnow()
        )
        if not updated:
            raise JobLookupError(job.id)
        action = "paused" if pausing else "resumed" if resuming else "modified"
        audit.record_change(
            job.id,
            action,
            before=audit.snapshot(before),
            after=audit.snapshot(row),
            job_name=row["name"],
            using=self.database,
        )

    def remove_job(self, job_id: str) -> None:
        try:
            # Read for the audit trail, inside the retry: the first statement is the
            # one that finds a dropped connection.
            before = self.jobs.filter(pk=job_id).values(*audit.SNAPSHOT_COLUMNS).first()
            deleted, _ = self.jobs.filter(pk=job_id).delete()
        except (db.OperationalError, db.InterfaceError) as exc:
            if connections[self.database].in_atomic_block:
                raise
            logger.warning(
                "Database error removing job %r (%s); retrying once on a new connection.",
                job_id,
                exc,
            )
            close_connection(self.database)
            # The first DELETE may have committed before the connection dropped: a
            # retry that finds nothing is that success, not a missing job.
            before = self.jobs.filter(pk=job_id).values(*audit.SNAPSHOT_COLUMNS).first()
            self.jobs.filter(pk=job_id).delete()
        else:
            if not deleted:
                raise JobLookupError(job_id)
        if before is not None:
            audit.record_change(
                job_id,
                "removed",
                before=audit.snapshot(before),
                job_name=before["name"],
                using=self.database,
            )

    @retry
    def remove_all_jobs(self) -> None:
        audit.record_changes(self.jobs.values_list("id", "name"), "removed", using=self.database)
        self.jobs.all().delete()

    @retry
    def shutdown(self) -> None:
        """Nothing to release: connections belong to Django and to each thread."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} (database={self.database!r})>"

    # -- internals -------------------------------------------------------------

    def _declared(self, job_id: str) -> Callable[..., Any] | None:
        """The function this process declared in code for ``job_id`` (our schedulers only)."""
        scheduler = self._scheduler
        if isinstance(scheduler, DeclaringScheduler):
            return scheduler.declared_function(job_id)
        return None

    def _row(self, job: Job) -> dict[str, Any]:
        declared_ref: str | None = None
        if isinstance(job.func, DeclaredElsewhere):
            # Changed (paused, say) by a process that did not declare it: stays declared.
            declared_ref = job.func.func_ref
        elif self._declared(job.id) is not None:
            declared_ref = callable_name(job.func)
        func_ref, state = encode_job(job, func_ref=declared_ref)
        if declared_ref is None:
            allowlist.check_allowed(job.id, func_ref)
        return {
            "name": job.name or "",
            "source": JobSource.RUNTIME if declared_ref is None else JobSource.CODE,
            "func_ref": func_ref,
            "state": state,
            "next_run_time": to_db(job.next_run_time),
        }

    def resolve_func(
        self,
        job_id: str,
        func_ref: str,
        source: str,
        imported: dict[str, Callable[..., Any]] | None = None,
    ) -> Callable[..., Any]:
        """
        Find the function a stored job calls.

        A job declared in code runs the function this process declared for it;
        a process that did not declare it gets a stand-in that refuses to run
        (it never claims such jobs). A job added at run time is imported.
        """
        if source == JobSource.CODE:
            return self._declared(job_id) or DeclaredElsewhere(job_id, func_ref)
        if imported is None:
            # Resolved by the allow-list itself: the module is checked before the
            # import, and the object reached must be defined there under that name.
            return allowlist.resolve(job_id, func_ref)
        # Many rows of a batch usually call the same function: check and import it once.
        func = imported.get(func_ref)
        if func is None:
            func = imported[func_ref] = allowlist.resolve(job_id, func_ref)
        return func

    def load_rows(self, rows: Iterable[tuple[Any, ...]]) -> list[Job]:
        """Turn job rows into jobs, quarantining those that cannot be loaded."""
        jobs = []
        recorder = recorder_for(self._scheduler)
        imported: dict[str, Callable[..., Any]] = {}
        for job_id, name, func_ref, state, next_run_time, source in rows:
            try:
                job = decode_job(
                    job_id=job_id,
                    name=name,
                    func_ref=func_ref,
                    state=state,
                    next_run_time=from_db(next_run_time),
                    resolve_func=functools.partial(
                        self.resolve_func, job_id, source=source, imported=imported
                    ),
                )
            except Exception as exc:
                self._quarantine(job_id, exc)
                continue
            job._scheduler = self._scheduler
            job._jobstore_alias = self._alias
            if recorder is not None:
                job.func = recorder.clock.wrap(job.id, job.func)
                # APScheduler removes a finished job before its events arrive.
                recorder.names[job.id] = job.name
            jobs.append(job)
        return jobs

    def _quarantine(self, job_id: str, exc: Exception) -> None:
        reason = format_exception(exc)
        if self.jobs.quarantine(job_id, reason):
            logger.error(
                "Job %r cannot be loaded and is quarantined (kept, not run): %s. Fix the "
                "cause, then re-add or update the job to release it.",
                job_id,
                reason,
            )
