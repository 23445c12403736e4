"""
The heart: a scheduler process's housekeeping thread, and its clock.

Every ``HEARTBEAT_INTERVAL`` it refreshes the heartbeat and, in the same
statement, measures the database's clock against this process's and looks
whether a process is silent, a pause has ended or the live processes changed;
only then does it presume silent processes dead (releasing what they held),
resume jobs or flag orphans. It publishes the jobs this process declares when
they change. Every ``PRUNE_INTERVAL`` it does all of that whatever the look
said, quarantines rows the allow-list refuses, deletes ended jobs left behind
and prunes the history.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import OperationalError, connections

from ..conf import conf
from ..store import ledger, nodes, retention, taskfires
from ..store.allowlist import quarantine_refused
from ..store.db import close_connection, utcnow
from ..store.models import DjangoJob
from ..time.clock import clock
from . import faults
from .watch import Watch

logger = logging.getLogger("django_metronome.scheduler")


_offset_reported: list[float] = []


def sync_clock(using: str) -> float | None:
    """
    Measure the database's clock against this process's and schedule by it.

    Return the offset in seconds (None with ``CLOCK = "local"``). An offset
    beyond ``MAX_CLOCK_OFFSET`` is logged when it first appears (and again if
    it changes by more than the bound).
    """
    if conf.CLOCK == "local":
        clock.reset()
        return None
    return adopt_offset(nodes.measure_offset(using))


def adopt_offset(offset: float) -> float | None:
    """Schedule by the database's clock, ``offset`` seconds ahead of ours (see sync_clock)."""
    if conf.CLOCK == "local":
        clock.reset()
        return None
    clock.set_offset(offset)
    bound = conf.MAX_CLOCK_OFFSET
    if abs(offset) > bound and (not _offset_reported or abs(offset - _offset_reported[-1]) > bound):
        _offset_reported.append(offset)
        logger.warning(
            "This process's clock is %.3f s %s the database's: it schedules by the "
            "database's clock, but fix the time synchronisation (NTP) of this machine.",
            abs(offset),
            "behind" if offset > 0 else "ahead of",
        )
    return offset


class Heart:
    """
    A scheduler process's housekeeping thread.

    Every ``HEARTBEAT_INTERVAL`` it refreshes this process's heartbeat and, when
    the heartbeat's look says so, presumes silent processes dead (their running
    fires become interrupted), resumes jobs whose pause has ended and flags
    orphans; it publishes the jobs this process declares when they change;
    every ``PRUNE_INTERVAL`` it does all of it and prunes the history.
    """

    def __init__(self, using: str, identity: str, declared: Callable[[], list[str]]) -> None:
        self.using = using
        self.identity = identity
        self.declared = declared
        self._published: list[str] | None = None
        #: The live processes' digest at the last look for orphans (see nodes.Pulse).
        self._nodes: tuple[int, Any] | None = None
        self._pruned_at = -float("inf")
        #: Its try for the turn to evaluate the expectations (loop/watch.py).
        self.watch = Watch(using, identity)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metronome-heart", daemon=True)
        self.registered = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stopped.set()
        self._thread.join(timeout)

    def beat(self) -> None:
        """
        One heartbeat: one statement when there is nothing to do (two on MariaDB).

        The heartbeat brings back the database's clock and whether anything
        waits for the heart (:func:`..store.nodes.beat`): a dead process to
        reap, a pause that has ended, a change among the live processes (then
        orphans are flagged again). The first beat and every ``PRUNE_INTERVAL``
        do everything whatever the heartbeat said, then prune.
        """
        faults.point("heartbeat")
        dead_after = timedelta(seconds=conf.DEAD_AFTER)
        declared = sorted(self.declared())
        full = time.monotonic() - self._pruned_at >= conf.PRUNE_INTERVAL
        if not self.registered.is_set():
            offset = sync_clock(self.using)
            nodes.register(self.using, self.identity, utcnow(), declared, clock_offset=offset)
            self.registered.set()
            full = True
        # At the start too: the full round flags orphans by the digest of the live
        # processes taken here, which later heartbeats compare with theirs.
        stored = None if conf.CLOCK == "local" else clock.offset
        pulse = nodes.beat(self.using, self.identity, utcnow(), dead_after, stored)
        adopt_offset(pulse.offset)
        if declared != self._published:
            nodes.publish_declarations(self.using, self.identity, declared)
            self._published = declared
        if not full:
            self._act_on(pulse, dead_after)
            return
        self._nodes = pulse.nodes
        now = utcnow()
        nodes.reap(self.using, now, dead_after)
        DjangoJob.objects.using(self.using).resume_due(now)
        nodes.mark_orphans(self.using, now, dead_after)
        self._prune(now)

    def _act_on(self, pulse: nodes.Pulse, dead_after: timedelta) -> None:
        now = utcnow()
        if pulse.dead:
            nodes.reap(self.using, now, dead_after)
        if pulse.resumable:
            DjangoJob.objects.using(self.using).resume_due(now)
        if pulse.nodes != self._nodes:
            self._nodes = pulse.nodes
            nodes.mark_orphans(self.using, now, dead_after)

    def _prune(self, now: datetime) -> None:
        self._pruned_at = time.monotonic()
        # Rows edited by hand to call what the allow-list refuses: flagged before
        # they fall due (they would be refused when loaded anyway).
        quarantine_refused(self.using)
        # Jobs whose schedule ended and whose last fire finished, left behind by a
        # crash between the two.
        ledger.delete_ended_jobs(self.using)
        # Task fires whose worker's signal never came: asked of their backends.
        taskfires.reconcile(
            self.using, now, older_than=timedelta(seconds=conf.TASK_RECONCILE_AFTER)
        )
        max_age = conf.HISTORY_MAX_AGE
        retention.prune(
            self.using,
            now,
            max_age=None if max_age is None else timedelta(seconds=max_age),
            max_per_job=conf.HISTORY_MAX_PER_JOB,
        )

    def _watch(self) -> None:
        """The watch's tick, after a good heartbeat; its failure is the watch's, not the heart's."""
        try:
            self.watch.tick()
        except Exception:
            logger.exception("Evaluating the expectations failed; the next heartbeat tries again.")
            close_connection(self.using)

    def _run(self) -> None:
        failures = 0
        try:
            while not self._stopped.is_set():
                try:
                    self.beat()
                    failures = 0
                    wait = conf.HEARTBEAT_INTERVAL
                    self._watch()
                except Exception as exc:
                    failures += 1
                    # The first retry at once, on a new connection (see the loop).
                    wait = 0 if failures == 1 else min(conf.HEARTBEAT_INTERVAL, 0.2 * 2**failures)
                    if isinstance(exc, OperationalError) and failures < 3:
                        # A busy SQLite or a restarting server: worth a line, not a trace.
                        logger.warning("Heartbeat failed (%s); retrying in %.1f s.", exc, wait)
                    else:
                        logger.exception("Heartbeat failed; retrying in %.1f s.", wait)
                    close_connection(self.using)
                self._stopped.wait(wait)
        finally:
            connections.close_all()
