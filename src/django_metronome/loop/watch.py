"""
The watch: evaluating the expectations in turn, and announcing incidents.

The heart calls :meth:`Watch.tick` at every heartbeat. Every half
``WATCH_INTERVAL`` a process asks the database for the turn
(:func:`..store.incidents.take_turn`): exactly one process gets it per
interval, and evaluates. What it opened and resolved goes to the announcer,
a thread of its own that sends ``incident_opened`` / ``incident_resolved``:
the built-in notifiers (a webhook retried with backoff, mail) and the
project's receivers run there, never in the heart (a slow receiver must not
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
    """A thread that sends the incident signals, in order, one at a time."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Changes | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)

    def announce(self, changes: Changes) -> None:
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
                changes = self._queue.get()
                if changes is None:
                    return
                try:
                    send(changes)
                finally:
                    with self._idle:
                        self._pending -= 1
                        self._idle.notify_all()
        finally:
            connections.close_all()


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

    def tick(self) -> Changes | None:
        """Evaluate if it is this process's turn; announce what changed. Return it (or None)."""
        interval = conf.WATCH_INTERVAL
        if time.monotonic() - self._tried_at < interval / 2:
            return None
        self._tried_at = time.monotonic()
        if not incidents.take_turn(self.using, self.identity, utcnow(), interval):
            return None
        changes = evaluate_now(self.using)
        if changes:
            announcer.announce(changes)
        return changes
