"""
Jobs declared in code, upserted at every start: the half of ``DjangoJobStore``
that keeps restarts and other processes from resetting or multiplying them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError
from django.db import IntegrityError

from ..time.codecs import decode_trigger, trigger_timezone
from . import audit
from .db import (
    from_db,
    retry_on_lost_connection,
    utcnow,
    write_transaction,
)

__all__ = ["DeclarationsMixin"]


def _same_but_start(stored: dict[str, Any], declared: dict[str, Any]) -> bool:
    """Two interval triggers (maybe wrapped alike) that differ at most in their start date."""
    old = _without_interval_start(stored.get("trigger"))
    return old is not None and old == _without_interval_start(declared.get("trigger"))


def _without_interval_start(trigger: Any) -> Any:
    """A trigger's JSON with its interval's start cleared (inside wrappers); None without one."""
    if not isinstance(trigger, dict):
        return None
    if trigger.get("type") == "interval":
        return {**trigger, "start_date": None}
    inner = _without_interval_start(trigger.get("trigger"))
    return None if inner is None else {**trigger, "trigger": inner}


#: Retried once on a new connection, as every other store operation.
retry = retry_on_lost_connection(lambda store: store.database)


class DeclarationsMixin:
    """``DjangoJobStore.declare_job``: upsert a declaration, keeping what it should."""

    if TYPE_CHECKING:  # given by DjangoJobStore

        @property
        def database(self) -> str: ...

        @property
        def jobs(self) -> Any: ...

        def _row(self, job: Job) -> dict[str, Any]: ...

        def _replace_ended(self, job_id: str, row: dict[str, Any]) -> bool: ...

    @retry
    def declare_job(
        self,
        job: Job,
        *,
        may_replace: bool,
        keep_next_run_time: bool,
        floating_start: bool = False,
    ) -> str:
        """
        Upsert a job declared in code, as a process does at every start.

        An unchanged declaration keeps the stored next run time and paused
        state (so restarts and other processes neither reset nor multiply it);
        a changed one updates the row, and its next run time too only when
        the trigger changed (or ``keep_next_run_time`` is False because the
        caller gave one explicitly). A declaration that differs from the row
        raises ``ConflictingIdError`` unless ``may_replace``.

        ``floating_start`` says that the job's interval trigger took its start
        from the moment it was built (APScheduler's default): such a trigger
        counts as unchanged when only that start differs, so that redeploying
        does not re-anchor the schedule.

        Return ``"added"``, ``"unchanged"`` or ``"updated"``; ``job.next_run_time``
        is set to what is stored.
        """
        row = self._row(job)
        try:
            return self._declare(job, row, may_replace, keep_next_run_time, floating_start)
        except IntegrityError:
            # Another process inserted the same declaration between our read and
            # our insert (there was no row to lock yet): now there is one.
            return self._declare(job, row, may_replace, keep_next_run_time, floating_start)

    def _declare(
        self,
        job: Job,
        row: dict[str, Any],
        may_replace: bool,
        keep_next_run_time: bool,
        floating_start: bool,
    ) -> str:
        with write_transaction(self.database):
            stored = (
                self.jobs.select_for_update()
                .filter(pk=job.id)
                .values("name", "source", "func_ref", "state", "next_run_time", "quarantined_at")
                .first()
            )
            if stored is None:
                if not self._replace_ended(job.id, row):
                    self.jobs.create(id=job.id, **row)
                self._audit(job.id, None, row)
                return "added"
            if floating_start and _same_but_start(stored["state"], row["state"]):
                row["state"]["trigger"] = stored["state"]["trigger"]
                job.trigger = decode_trigger(stored["state"]["trigger"])
            same = {key: stored[key] == row[key] for key in ("name", "source", "func_ref", "state")}
            if all(same.values()) and stored["quarantined_at"] is None:
                job.next_run_time = self._stored_time(job, stored["next_run_time"])
                return "unchanged"
            if not may_replace and not all(same.values()):
                raise ConflictingIdError(job.id)
            trigger_changed = stored["state"].get("trigger") != row["state"].get("trigger")
            if keep_next_run_time and not trigger_changed:
                row["next_run_time"] = stored["next_run_time"]
                job.next_run_time = self._stored_time(job, stored["next_run_time"])
            self.jobs.filter(pk=job.id).update(
                **row, quarantined_at=None, quarantine_reason="", updated_at=utcnow()
            )
            self._audit(job.id, stored, row)
            return "updated"

    def _audit(self, job_id: str, stored: dict[str, Any] | None, row: dict[str, Any]) -> None:
        """
        A declaration that added or changed the row: in the audit trail, by this
        process; after the edit made in the database directly that it undoes, if any.
        """
        # One instant for both rows: the trail orders by time, then by insertion, and
        # two readings of the clock (the database's, by a measured offset that the
        # heart may re-measure in between) need not be in order.
        now = utcnow()
        if stored is not None:
            audit.record_database_edit(
                job_id, audit.snapshot(stored), job_name=row["name"], using=self.database, at=now
            )
        audit.record_change(
            job_id,
            "declared",
            origin="code",
            actor=audit.process_actor(),
            before=None if stored is None else audit.snapshot(stored),
            after=audit.snapshot(row),
            job_name=row["name"],
            using=self.database,
            at=now,
        )

    @staticmethod
    def _stored_time(job: Job, value: datetime | None) -> datetime | None:
        tz = trigger_timezone(job.trigger)
        stored = from_db(value)
        return stored.astimezone(tz) if stored is not None and tz is not None else stored
