"""
The running side of ``overlap="cancel_other"``: a fire learns it was asked to stop.

The claim that starts a job's next fire marks the running ones in the ledger
(:func:`..store.ledger.ask_to_stop`), whichever process runs them. A job in a
thread sees it through ``current_fire().cancelled`` (a :class:`CancelProbe`);
a coroutine job is watched and cancelled (:func:`run_cancellable`), and its
fire ends interrupted, with the reason.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable
from typing import TypeVar

from django.db import connections

from ..store import ledger

__all__ = ["CANCEL_CHECK_INTERVAL", "CancelProbe", "FireCancelled", "run_cancellable"]

T = TypeVar("T")

#: How often a running fire of a ``cancel_other`` job asks the ledger (seconds).
CANCEL_CHECK_INTERVAL = 0.5


class FireCancelled(Exception):
    """The fire stopped because the job's next fire asked it to (overlap ``cancel_other``)."""

    def __init__(self, execution_id: int) -> None:
        super().__init__(
            f"Fire {execution_id} was cancelled: the job's next fire started "
            "(overlap='cancel_other')."
        )


class CancelProbe:
    """Whether one fire was asked to stop; the ledger is asked at most every ``interval``."""

    def __init__(
        self, using: str, execution_id: int, interval: float = CANCEL_CHECK_INTERVAL
    ) -> None:
        self.using = using
        self.execution_id = execution_id
        self.interval = interval
        self._asked_at = float("-inf")
        self._cancelled = False
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        with self._lock:
            if self._cancelled:
                return True
            now = time.monotonic()
            if now - self._asked_at < self.interval:
                return False
            self._asked_at = now
            self._cancelled = ledger.asked_to_stop(self.using, self.execution_id)
            return self._cancelled

    def ask_and_close(self) -> bool:
        """Ask from a passing thread (a coroutine's watcher), closing its connection after."""
        try:
            return self()
        finally:
            connections[self.using].close()


async def run_cancellable(work: Awaitable[T], probe: CancelProbe) -> T:
    """
    Await a coroutine job, cancelling it once its fire is asked to stop.

    The ledger is asked from a thread (the event loop does not touch the
    database); a cancelled job raises :class:`FireCancelled`.
    """
    task: asyncio.Future[T] = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=probe.interval)
            if done:
                return task.result()
            if await asyncio.to_thread(probe.ask_and_close):
                break
    except asyncio.CancelledError:
        task.cancel()  # the scheduler itself stops: the job goes with it
        raise
    task.cancel()
    try:
        return await task  # it may finish anyway, catching the cancellation
    except asyncio.CancelledError:
        raise FireCancelled(probe.execution_id) from None
