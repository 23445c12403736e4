"""
The loop's turn: look, claim what this process can start soon, dispatch; back off on errors.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from apscheduler.job import Job
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING
from django.db import OperationalError

from ..conf import conf
from ..store import claims, ledger, pending
from ..store.db import close_connection, utcnow
from ..time.clock import clock
from ..time.firing import FirePlan, plan_fires
from ..time.triggers import next_fire_time, seek_function
from .dispatch import runs_fires
from .heart import sync_clock
from .outcomes import MAX_BACKOFF
from .parts import SchedulerParts

logger = logging.getLogger("django_metronome.scheduler")


class CycleMixin(SchedulerParts):
    """The claim half of the claim/dispatch/record cycle (see docs/architecture.md)."""

    def _process_jobs(self) -> float | None:
        """One turn of the loop: claim and dispatch what is due; return the seconds to wait."""
        if self.state != STATE_RUNNING:  # type: ignore[attr-defined]
            return None if self.state == STATE_PAUSED else 0  # type: ignore[attr-defined]
        try:
            if self._failures:
                self._recover_lost_claims()
            wait = self._claim_and_dispatch()
        except Exception as exc:
            self._failures += 1
            close_connection(self.database)
            if self._failures == 1 and isinstance(exc, OperationalError):
                # Most often a connection the server dropped (a restart, an idle
                # timeout, a kill): try again at once, on a new one.
                logger.warning("Database error in the scheduler loop (%s); retrying now.", exc)
                return 0
            wait = min(MAX_BACKOFF, 0.1 * 2**self._failures)
            logger.exception(
                "Scheduler loop error (%d in a row); retrying in %.1f s.", self._failures, wait
            )
            return wait
        if self._failures:
            logger.warning("Scheduler loop recovered after %d error(s).", self._failures)
            self._failures = 0
        return wait

    def _recover_lost_claims(self) -> None:
        """
        After a failed turn: hand back what this process claimed but does not hold.

        A claim whose COMMIT reached the server but whose answer was lost with the
        connection left its fires claimed by this process, which never got them:
        they would wait forever, as this process is alive. Handed back (pending),
        they run once, here or elsewhere.
        """
        held = [fire.execution_id for fire in list(self._inflight.values())]
        count = ledger.hand_back_unheld(self.database, self.identity, held, utcnow())
        if count:
            logger.warning(
                "%d fire(s) claimed by this process in a transaction whose answer was lost "
                "are handed back, to run once.",
                count,
            )

    def _capacity(self) -> int:
        """How many fires to claim now: what the default executor can start soon."""
        executor = self._executors.get("default")  # type: ignore[attr-defined]
        if runs_fires(executor):
            return min(conf.BATCH_SIZE, executor.capacity())
        return conf.BATCH_SIZE

    def _claim_and_dispatch(self) -> float:
        using, poll = self.database, conf.POLL_INTERVAL
        if conf.CLOCK != "local" and (not clock.measured or clock.jumped()):
            # Never claim by a clock that has not been checked against the database's.
            sync_clock(using)
        declared = list(self._metronome_registry)
        store = self._jobstores["default"]  # type: ignore[attr-defined]
        room = self._capacity()
        if room and pending.has_manual_fires(using):
            batch = pending.claim_manual_fires(
                using=using,
                node=self.identity,
                now=utcnow(),
                limit=room,
                declared=declared,
                load=store.load_rows,
            )
            self._dispatch(batch)
            room = self._capacity()
        next_due = claims.next_due_time(using=using, declared=declared)
        now = utcnow()
        while next_due is not None and next_due <= now and self.state == STATE_RUNNING:  # type: ignore[attr-defined]
            if room <= 0:
                # Busy: the pool wakes the loop when a worker comes free.
                return poll
            batch = claims.claim_due_fires(
                using=using,
                node=self.identity,
                now=now,
                limit=room,
                declared=declared,
                load=store.load_rows,
                plan=self._plan,
            )
            self._dispatch(batch)
            if not batch.full:
                if not batch.claimed and not batch.missed and not batch.skipped:
                    # Due, but locked by other processes claiming them right now.
                    return min(poll, 0.05)
                next_due = claims.next_due_time(using=using, declared=declared)
            now = utcnow()
            room = self._capacity()
        if next_due is None:
            return poll
        return max(0.0, min(poll, (next_due - utcnow()).total_seconds()))

    def _plan(self, job: Job, now: datetime) -> FirePlan:
        trigger = job.trigger
        grace = job.misfire_grace_time
        return plan_fires(
            lambda previous, at: next_fire_time(trigger, previous, at),
            job.next_run_time,
            now,
            policy=getattr(job, "misfire_policy", None) or conf.MISFIRE_POLICY,
            grace=None if grace is None else timedelta(seconds=grace),
            coalesce=job.coalesce,
            max_catch_up=conf.MAX_CATCH_UP,
            seek=seek_function(trigger),
        )
