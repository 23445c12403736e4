"""
The loop's turn: look, claim what this process can start soon, dispatch; back off on errors.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from apscheduler.job import Job
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING, STATE_STOPPED
from django.db import OperationalError

from ..conf import conf
from ..store import changes, claims, ledger, pending
from ..store.db import close_connection, utcnow
from ..time.clock import clock
from ..time.firing import FirePlan, plan_fires
from ..time.triggers import next_fire_time, seek_function
from ..time.wrappers import with_exclusions
from .dispatch import runs_fires
from .heart import sync_clock
from .outcomes import MAX_BACKOFF
from .parts import SchedulerParts

logger = logging.getLogger("django_metronome.scheduler")

#: What a turn of the loop does (:meth:`CycleMixin._look`): read the job table and
#: the pending fires, then claim; or only claim what it knows is due.
LOOK = "look"
DUE = "due"


class CycleMixin(SchedulerParts):
    """The claim half of the claim/dispatch/record cycle (see docs/architecture.md)."""

    #: How this process learns of changes (:func:`..store.changes.watch_mode`), None
    #: until the first turn decides; on PostgreSQL "poll" until the listener is up,
    #: and while it is lost.
    _watch: str | None = None
    _listener: changes.Listener | None = None
    #: Something may have changed since the last look at the job table.
    _stale: bool = True
    #: The change marker at the last look (SQLite, MariaDB/MySQL).
    _marker: int | None = None
    #: The earliest next run time seen at the last look (None: nothing scheduled).
    _next_due: datetime | None = None
    #: When the job table is read again whatever was announced (time.monotonic()).
    _rescan_at: float = 0.0
    #: The last look left pending fires for later (no room): look once a worker is free.
    _when_free: bool = False

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
            # The look may not have finished: the next turn looks again.
            self._stale = True
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
        using = self.database
        if conf.CLOCK != "local" and (not clock.measured or clock.jumped()):
            # Never claim by a clock that has not been checked against the database's.
            sync_clock(using)
        if self._watch is None:
            self._watch_changes(using)
        look = self._look(using)
        if look is None:
            return self._sleep()
        # Only the next due time came: nothing was announced since the last look, so
        # no fire is pending and nothing is due earlier. Claim at once.
        due_only = look == DUE
        if not due_only:
            # Cleared before the look: a change announced while it runs is looked at
            # next turn.
            self._stale = self._when_free = False
            self._rescan_at = time.monotonic() + conf.RESCAN_INTERVAL
        declared = list(self._metronome_registry)
        store = self._jobstores["default"]  # type: ignore[attr-defined]
        room = self._capacity()
        if not due_only:
            room = self._take_pending(using, room, declared, store.load_rows)
            self._next_due = claims.next_due_time(using=using, declared=declared)
        next_due = self._next_due
        now = utcnow()
        while next_due is not None and next_due <= now and self.state == STATE_RUNNING:  # type: ignore[attr-defined]
            if room <= 0:
                # Busy: the pool wakes the loop when a worker comes free.
                return conf.POLL_INTERVAL
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
                    if due_only:
                        # Not due any more (claimed elsewhere, or moved later, which
                        # announces nothing): a whole look, at once.
                        self._stale = True
                        return 0.0
                    # Due, but locked by other processes claiming them right now.
                    return min(conf.POLL_INTERVAL, 0.05)
                next_due = self._next_due = claims.next_due_time(using=using, declared=declared)
            now = utcnow()
            room = self._capacity()
        return self._sleep()

    def _take_pending(self, using: str, room: int, declared: list[str], load: claims.Loader) -> int:
        """Claim and dispatch pending fires (run now, handed back); return the room left."""
        if not room:
            # Pending fires are not even looked for: look again once a worker is free.
            self._when_free = True
            return room
        if not pending.has_manual_fires(using):
            return room
        batch = pending.claim_manual_fires(
            using=using,
            node=self.identity,
            now=utcnow(),
            limit=room,
            declared=declared,
            load=load,
        )
        self._dispatch(batch)
        # More may wait than there was room for.
        self._when_free = batch.full
        return self._capacity()

    # -- when to look at the job table, how long to sleep --------------------------------

    def _watch_changes(self, using: str) -> None:
        """
        Decide how this process learns of changes (:func:`..store.changes.watch_mode`).

        In the loop's own thread (a query: the triggers are looked for). On
        PostgreSQL the listener thread starts, and the loop polls until it listens.
        """
        mode = changes.watch_mode(using)
        self._watch = changes.POLL if mode == changes.NOTIFY else mode
        if mode == changes.NOTIFY and self._listener is None:
            self._listener = changes.Listener(using, self._changed, self._listening)
            self._listener.start()

    def _look(self, using: str) -> str | None:
        """
        Whether this turn reads the job table (LOOK), only claims what is due (DUE), or neither.

        It looks at a notification, a moved change marker, the first turn, a lost
        LISTEN connection (then every turn), or the rescan that bounds how long a
        change that announced nothing can go unseen. When only the next due time
        has come, and the database announces changes, the turn claims at once:
        the rows it would read to decide are those it claimed from.
        """
        watch = self._watch
        if watch == changes.MARKER:
            # Read before the look: a change committed after this read moves it again.
            version = changes.marker(using)
            if version != self._marker:
                self._marker = version
                self._stale = True
        if self._stale or watch == changes.POLL:
            return LOOK
        if self._when_free and self._capacity() > 0:
            return LOOK
        if time.monotonic() >= self._rescan_at:
            return LOOK
        if self._next_due is not None and self._next_due <= utcnow():
            return DUE
        return None

    def _sleep(self) -> float:
        """Seconds until the next due time, the next look at the marker, or the rescan."""
        if self._stale:
            # Announced during this turn (a wakeup may have been taken by the turn itself).
            return 0.0
        longest = max(0.0, self._rescan_at - time.monotonic())
        if self._watch != changes.NOTIFY:
            longest = min(longest, conf.POLL_INTERVAL)
        if self._next_due is None:
            return longest
        return max(0.0, min(longest, (self._next_due - utcnow()).total_seconds()))

    def _changed(self) -> None:
        """Told by the database that what is due changed: look again, now."""
        self._stale = True
        if self.state == STATE_STOPPED:  # type: ignore[attr-defined]
            return
        try:
            self.wakeup()  # type: ignore[attr-defined]
        except (AttributeError, RuntimeError):
            # An event loop closed under a stopping AsyncIOScheduler: nothing to wake.
            logger.debug("Change announced to a stopping scheduler.", exc_info=True)

    def _listening(self, listening: bool) -> None:
        """The LISTEN connection is up (sleep until due or notified), or lost (poll)."""
        self._watch = changes.NOTIFY if listening else changes.POLL
        # Up: what was announced while it was down is read once; down: polling starts now.
        self._changed()

    def _plan(self, job: Job, now: datetime) -> FirePlan:
        trigger = job.trigger
        grace = job.misfire_grace_time
        plan = plan_fires(
            lambda previous, at: next_fire_time(trigger, previous, at),
            job.next_run_time,
            now,
            policy=getattr(job, "misfire_policy", None) or conf.MISFIRE_POLICY,
            grace=None if grace is None else timedelta(seconds=grace),
            coalesce=job.coalesce,
            max_catch_up=conf.MAX_CATCH_UP,
            seek=seek_function(trigger),
        )
        return with_exclusions(plan, trigger, job.next_run_time)
