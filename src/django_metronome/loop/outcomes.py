"""
The ledger thread: a process's fire starts and outcomes, written in batches.

The pool asks for groups of claimed fires to be marked started; job threads
put outcomes. Neither touches the database: this one thread does, one round
of writes for whatever has accumulated, retried on a new connection until it
succeeds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction

from ..store import ledger
from ..store.db import close_connection, utcnow
from ..store.ledger import Outcome
from . import faults

logger = logging.getLogger("django_metronome.scheduler")


#: Longest pause between tries while the database fails, in seconds.
MAX_BACKOFF = 10.0


@dataclass(frozen=True)
class StartRequest:
    """Fires to mark started, and whom to tell which were."""

    ids: list[int]
    done: Callable[[Collection[int]], None]


class LedgerWriter:
    """
    Writes a process's fire starts and outcomes to the ledger, from its own thread.

    Job threads only put outcomes on a queue, and the pool only asks for
    groups of fires to be marked started: neither touches the ledger, so a
    slow or failing database never blocks a job, each round of writes covers
    whatever has accumulated (one statement for the starts, a handful for the
    outcomes), and nothing is dropped: a failed write is retried until it
    succeeds or the process ends. Starts go first: workers wait for them.
    """

    def __init__(self, using: str, node: str, batch_size: int = 500) -> None:
        self.using = using
        self.node = node
        self.batch_size = batch_size
        self._queue: queue.SimpleQueue[Outcome | StartRequest | None] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._run, name="metronome-ledger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, outcome: Outcome) -> None:
        with self._lock:  # the condition's own lock, without its wrapper: one per fire
            self._pending += 1
        self._queue.put(outcome)

    def request_start(self, ids: list[int], done: Callable[[Collection[int]], None]) -> None:
        """Mark these claimed fires started (soon, in a group), then call ``done(marked)``."""
        with self._lock:
            self._pending += 1
        self._queue.put(StartRequest(ids, done))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything put so far is written; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self, timeout: float | None = None) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        try:
            while not stopping:
                item = self._queue.get()
                outcomes: list[Outcome] = []
                starts: list[StartRequest] = []
                while True:
                    if item is None:
                        stopping = True
                    elif isinstance(item, StartRequest):
                        starts.append(item)
                    else:
                        outcomes.append(item)
                    if len(outcomes) >= self.batch_size:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if outcomes:
                    faults.point("outcomes")
                self._write(starts, outcomes)
                self._done(len(starts) + len(outcomes))
        finally:
            connections.close_all()

    def _write(self, starts: list[StartRequest], outcomes: list[Outcome]) -> None:
        """
        One round: the starts and the outcomes that have accumulated, in one
        transaction (one commit: with a disk sync per commit, that is what a
        round costs); then the workers hear which fires they may start.
        """
        ids = [pk for request in starts for pk in request.ids]
        if not ids and not outcomes:
            return

        def write() -> set[int]:
            with transaction.atomic(using=self.using):
                marked = ledger.start_fires(self.using, self.node, ids, utcnow()) if ids else []
                if outcomes:
                    ledger.record_outcomes(self.using, outcomes)
            return set(marked)

        marked = self._retry(write, [*ids, *outcomes])
        for request in starts:
            try:
                request.done(marked)
            except Exception:
                logger.exception("Error handing started fires to the workers.")

    def _retry(self, write: Callable[[], Any], items: list[Any]) -> Any:
        failures = 0
        while True:
            try:
                return write()
            except Exception:
                failures += 1
                # The first retry is at once, on a new connection: after a server restart
                # the old one is merely stale, and an outcome that waits holds its fire's
                # instance, so the job's next fire would be skipped.
                delay = 0.0 if failures == 1 else min(MAX_BACKOFF, 0.2 * 2**failures)
                logger.exception(
                    "Could not write %d ledger change(s); retrying in %.1f s.", len(items), delay
                )
                close_connection(self.using)
                time.sleep(delay)

    def _done(self, count: int) -> None:
        with self._idle:
            self._pending -= count
            self._idle.notify_all()
