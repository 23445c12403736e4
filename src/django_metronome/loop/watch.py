"""
The watch: evaluating the expectations in turn, and announcing incidents.

The heart calls :meth:`Watch.tick` at every heartbeat. Every half
``WATCH_INTERVAL`` a process asks the database for the turn
(:func:`..store.incidents.take_turn`): exactly one process gets it per
interval. That process's announcer, a thread of its own, evaluates and sends
``incident_opened`` / ``incident_resolved`` for what it opened and resolved:
the evaluation, the built-in notifiers (a webhook retried with backoff, mail)
and the project's receivers run there, never in the heart (nothing slow must
make the process look dead) nor in the loop.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from django.db import connections

from ..conf import conf
from ..signals import incident_opened, incident_resolved
from ..store import incidents
from ..store.db import utcnow
from ..store.incidents import Changes
from ..store.models import Incident

logger = logging.getLogger("django_metronome.alerts")


class Announcer:
    """
    A thread that evaluates (when the heart won the turn) and sends the incident
    signals, in order, one item at a time: nothing the expectations or the
    receivers take can delay a heartbeat.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Changes | str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)

    def announce(self, changes: Changes | str) -> None:
        """Send these changes' signals; or, given a database alias, evaluate it first."""
        with self._lock:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="metronome-announcer", daemon=True
                )
                self._thread.start()
        self._queue.put(changes)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything announced so far was sent; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                try:
                    send(item if isinstance(item, Changes) else _evaluate(item))
                finally:
                    # No connection is kept between two items: a turn comes once per
                    # WATCH_INTERVAL, and a broken connection must not outlive its turn.
                    connections.close_all()
                    with self._idle:
                        self._pending -= 1
                        self._idle.notify_all()
        finally:
            connections.close_all()


def _evaluate(using: str) -> Changes:
    """One evaluation in the announcer's thread."""
    try:
        return evaluate_now(using)
    except Exception:
        logger.exception("Evaluating the expectations failed; the next turn tries again.")
        return Changes()


def send(changes: Changes) -> None:
    """Send the signals of these changes here and now (Django logs receivers' errors)."""
    for signal, group in ((incident_opened, changes.opened), (incident_resolved, changes.resolved)):
        for incident in group:
            signal.send_robust(sender=Incident, incident=incident)


#: The process's announcer (started at the first announcement).
announcer = Announcer()


def evaluate_now(using: str) -> Changes:
    """Evaluate the expectations once, whoever evaluated last; return what changed."""
    return incidents.evaluate(
        using, utcnow(), dead_after=conf.DEAD_AFTER, expect_scheduler=conf.EXPECT_SCHEDULER
    )


class Watch:
    """A scheduler process's share of the watch: its try for the turn, at each heartbeat."""

    def __init__(self, using: str, identity: str) -> None:
        self.using = using
        self.identity = identity
        # The first try half an interval after the start: a process that only
        # starts (or a test) costs nothing more.
        self._tried_at = time.monotonic()
        #: The version of the declared expectations this process stored last.
        self._published = -1

    def tick(self) -> bool:
        """
        Store the expectations declared in code when they changed (the first tick,
        at the first heartbeat, always); ask for the turn (every half interval);
        with it, have the announcer evaluate and notify. Return whether this
        process took the turn.
        """
        declared = incidents.declared_expectations
        if declared.version != self._published:
            self._published = declared.publish(self.using, utcnow())
        interval = conf.WATCH_INTERVAL
        if time.monotonic() - self._tried_at < interval / 2:
            return False
        self._tried_at = time.monotonic()
        if not incidents.take_turn(self.using, self.identity, utcnow(), interval):
            return False
        announcer.announce(self.using)
        return True
