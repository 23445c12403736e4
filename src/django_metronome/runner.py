"""
Run a scheduler in the foreground until a signal says stop.

The first SIGTERM or SIGINT stops claiming and gives running jobs up to the
shutdown timeout; fires still running then are recorded as interrupted. A
second signal exits at once (its running fires are recorded as interrupted if
the database answers within a second).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from .loop.scheduler import MetronomeSchedulerMixin
from .store import nodes
from .store.db import utcnow

logger = logging.getLogger("django_metronome.runner")


class SchedulerRunner:
    """A scheduler's life in a foreground process: start, wait, stop on a signal."""

    def __init__(self, scheduler: MetronomeSchedulerMixin, shutdown_timeout: float) -> None:
        self.scheduler = scheduler
        self.shutdown_timeout = shutdown_timeout
        self._stop = threading.Event()

    def run(self) -> int:
        """Run until a signal or until the scheduler stops by itself; return an exit code."""
        previous = {
            signum: signal.signal(signum, self.shutdown)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.scheduler.start()  # type: ignore[attr-defined]
            logger.info("Scheduler process %s started.", self.scheduler.identity)
            while not self._stop.wait(0.5):
                if not self.scheduler.running:  # type: ignore[attr-defined]
                    logger.error("The scheduler stopped by itself; exiting.")
                    return 1
            logger.info(
                "Stopping: no new claims; waiting up to %.0f s for running jobs "
                "(send the signal again to exit at once).",
                self.shutdown_timeout,
            )
            self.scheduler.shutdown(wait=True, timeout=self.shutdown_timeout)  # type: ignore[attr-defined]
            logger.info("Scheduler process %s stopped.", self.scheduler.identity)
            stuck = self.scheduler.running_fires
            if stuck:
                # Their threads cannot be stopped, and Python would wait for them at
                # exit: they are recorded as interrupted, so leave now.
                logger.warning(
                    "%d job(s) still running after %.0f s; exiting without them.",
                    stuck,
                    self.shutdown_timeout,
                )
                logging.shutdown()
                os._exit(0)
            return 0
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def shutdown(self, signum: int, frame: FrameType | None = None) -> None:
        """Signal handler: the first signal stops gracefully, the second at once."""
        if not self._stop.is_set():
            logger.info("Received %s.", signal.Signals(signum).name)
            self._stop.set()
            return
        logger.warning("Received %s again: exiting now.", signal.Signals(signum).name)
        self._force_exit()

    def _force_exit(self) -> None:
        def record() -> Any:
            nodes.stop(self.scheduler.database, self.scheduler.identity, utcnow())

        recorder = threading.Thread(target=record, daemon=True)
        recorder.start()
        recorder.join(1.0)
        os._exit(1)
