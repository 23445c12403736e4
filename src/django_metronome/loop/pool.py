"""
The worker pool that runs claimed fires: claimed, then started, then run.

A fire is *claimed* in the ledger when its process takes it from the
database, and *started* when a worker thread is about to call the job. The
two are different states on purpose: if the process dies in between, the
fire never ran, and another process runs it (see :mod:`django_metronome.nodes`);
only a started fire can end *interrupted*.

The pool keeps claimed fires in one FIFO queue. When workers are idle it
reserves them for the next fires of the queue and asks for those fires to be
marked started (``request_start``: the scheduler's ledger thread does it, in
one statement for the group, beside the outcomes it writes anyway); when the
answer comes, each marked fire goes to a reserved worker, which calls it at
once. So a fire is only ever marked started when a worker is waiting for it,
and the ledger pays one statement per group of starts, not per fire.

The pool also says how many more fires its process should claim right now
(:meth:`FirePool.capacity`): its idle workers plus a short prefetch, sized by
how fast fires have been starting, so that a busy process does not sit on
fires that an idle one could run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("django_metronome.pool")

#: Seconds of work, at the recent start rate, that a process claims ahead.
PREFETCH_HORIZON = 0.25

#: Seconds without running dry after which the prefetch's slow start halves.
PREFETCH_DECAY = 1.0

#: A worker takes several fires at once only if they all start within this many
#: seconds (quick jobs in a burst): they are marked started together, in one
#: statement, and a process that dies meanwhile interrupts at most these.
CHUNK_HORIZON = 0.002

#: The most fires a worker takes at once.
CHUNK_MAX = 50


@dataclass(eq=False)
class PoolTask:
    """One claimed fire: its ledger row, and what runs it."""

    #: Its ledger row; None for work that has none (APScheduler's submit_job).
    execution_id: int | None
    run: Callable[[], Any]
    #: Called instead of ``run`` when the fire turned out not to be ours any more.
    dropped: Callable[[], Any] | None = None


#: Called when a start request is answered, with the ids that were marked started.
StartDone = Callable[[Collection[int]], None]

#: Asks for fires to be marked started; must call the callback exactly once
#: (from any thread), or never if the process is stopping.
StartRequest = Callable[[list[int], StartDone], None]


class FirePool:
    """
    ``workers`` threads running claimed fires in order, each marked started first.

    :param request_start: asks for a group of fires to be marked started in
        the ledger; the answer says which were (a fire handed back to others
        while this process was presumed dead is dropped, not run). None: no
        ledger, every fire starts as soon as a worker is free.
    :param batch_limit: the most fires :meth:`capacity` ever asks for.
    :param on_capacity: called (from a worker) when capacity comes back after
        the pool was full, so the loop can claim more at once.
    :param on_thread_exit: called by each worker thread as it ends (to close
        its database connections).
    """

    def __init__(
        self,
        workers: int,
        request_start: StartRequest | None = None,
        *,
        batch_limit: int = 500,
        on_capacity: Callable[[], Any] | None = None,
        on_thread_exit: Callable[[], Any] | None = None,
        name: str = "metronome-worker",
    ) -> None:
        if workers < 1:
            raise ValueError(f"A pool needs at least one worker, not {workers}.")
        self.workers = workers
        self.batch_limit = batch_limit
        self.on_capacity = on_capacity
        self.on_thread_exit = on_thread_exit
        self._request_start = request_start
        self._name = name
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        #: Claimed, not started, in order.
        self._queued: deque[PoolTask] = deque()
        #: Started, each with a worker reserved for it.
        self._ready: deque[list[PoolTask]] = deque()
        #: Workers neither running a fire nor reserved for one.
        self._idle = 0
        self._busy = 0
        #: A start request is out (its fires have workers reserved).
        self._requesting = False
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._starts: deque[tuple[float, int]] = deque()
        self._full = False
        #: Slow start: the prefetch doubles whenever workers run dry with nothing
        #: queued (the claims were too small for how fast fires start), and halves
        #: after PREFETCH_DECAY seconds without that, down to one per worker.
        self._slow_start = workers
        self._dry_at = 0.0
        #: The loop is woken when the queue falls to this (half the prefetch).
        self._low_water = 0
        #: How long a fire has been taking, lately (seconds; None before the first).
        self._seconds_per_fire: float | None = None
        #: Fires taken off the queue by shutdown: claimed, never started.
        self._left: list[PoolTask] = []

    # -- life ---------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._threads:
                return
            self._stopping = False
            self._idle = self.workers
        for number in range(self.workers):
            self._threads.append(
                threading.Thread(target=self._worker, name=f"{self._name}-{number}", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> list[PoolTask]:
        """
        Stop taking work; return the fires still queued (claimed, never started).

        Fires already started still run. With ``wait``, wait up to ``timeout``
        for them.
        """
        with self._lock:
            self._stopping = True
            self._left.extend(self._queued)
            self._queued.clear()
            self._work.notify_all()
        if wait:
            deadline = None if timeout is None else time.monotonic() + timeout
            for thread in self._threads:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(remaining)
        with self._lock:
            left, self._left = self._left, []
        return left

    # -- the loop's side ----------------------------------------------------------

    def submit(self, tasks: list[PoolTask]) -> None:
        """Queue claimed fires; they start in order as workers come free."""
        if not tasks:
            return
        with self._lock:
            if self._stopping:
                raise RuntimeError("The pool is shut down; it takes no more fires.")
            self._queued.extend(tasks)
            request = self._reserve()
        self._send(request)

    def capacity(self) -> int:
        """How many more fires this process should claim now (0: it has enough)."""
        with self._lock:
            prefetch = self._prefetch()
            # Woken when a whole batch fits again (or the queue is empty): full
            # batches, not one claim per freed worker.
            self._low_water = max(0, prefetch - self.batch_limit)
            room = self._idle + prefetch - len(self._queued)
            room = max(0, min(room, self.batch_limit))
            self._full = room == 0
            return room

    @property
    def queued(self) -> int:
        """Claimed fires not started yet."""
        with self._lock:
            return len(self._queued)

    @property
    def active(self) -> int:
        """Fires started (or being started) and not finished yet."""
        with self._lock:
            return self.workers - self._idle

    def _prefetch(self) -> int:
        """
        Fires to hold ahead: the recent start rate times a short horizon, or the
        slow start's guess while that rate is still being learnt; at least one
        per worker, at most ``batch_limit``.
        """
        now = time.monotonic()
        starts = self._starts
        while starts and now - starts[0][0] > 1.0:
            starts.popleft()
        rate = sum(count for _, count in starts)
        if self._slow_start > self.workers and now - self._dry_at > PREFETCH_DECAY:
            self._slow_start = max(self.workers, self._slow_start // 2)
            self._dry_at = now
        ahead = max(int(rate * PREFETCH_HORIZON), self._slow_start)
        return max(self.workers, min(2 * self.batch_limit, ahead))

    # -- starting -----------------------------------------------------------------

    def _chunk(self) -> int:
        """
        How many fires one worker takes at a time: one, unless fires have been
        taking so little time that several fit in CHUNK_HORIZON (a burst of
        quick jobs), then up to CHUNK_MAX. Each fire of a chunk is called
        within about CHUNK_HORIZON of being marked started.
        """
        if self._seconds_per_fire is None:
            return 1
        fit = int(CHUNK_HORIZON / max(self._seconds_per_fire, 1e-6))
        return max(1, min(CHUNK_MAX, fit))

    def _reserve(self) -> list[list[PoolTask]] | None:
        """With the lock held: reserve idle workers, each for the next chunk of queued fires."""
        if self._requesting or self._stopping or not self._queued or self._idle <= 0:
            return None
        size = self._chunk()
        chunks: list[list[PoolTask]] = []
        while self._queued and len(chunks) < self._idle:
            take = min(size, len(self._queued))
            chunks.append([self._queued.popleft() for _ in range(take)])
        self._idle -= len(chunks)
        if self._idle and not self._queued:
            # Workers left idle with nothing queued: the claims are too small.
            self._slow_start = min(2 * self.batch_limit, self._slow_start * 2)
            self._dry_at = time.monotonic()
        if self._request_start is None:
            self._hand_to_workers(chunks)
            return None
        self._requesting = True
        return chunks

    def _send(self, chunks: list[list[PoolTask]] | None) -> None:
        """Outside the lock: ask for the reserved fires to be marked started, in one go."""
        if chunks is None:
            return
        ids = [
            task.execution_id for chunk in chunks for task in chunk if task.execution_id is not None
        ]
        self._request_start(ids, lambda marked: self._started(chunks, marked))  # type: ignore[misc]

    def _started(self, chunks: list[list[PoolTask]], marked: Collection[int]) -> None:
        marked = set(marked)
        dropped: list[PoolTask] = []
        kept: list[list[PoolTask]] = []
        for chunk in chunks:
            ours = [t for t in chunk if t.execution_id is None or t.execution_id in marked]
            dropped += [
                t for t in chunk if t.execution_id is not None and t.execution_id not in marked
            ]
            if ours:
                kept.append(ours)
        with self._lock:
            self._requesting = False
            self._idle += len(chunks) - len(kept)
            self._hand_to_workers(kept)
            request = self._reserve()
        for task in dropped:
            logger.warning(
                "Fire %s is no longer claimed by this process (it was handed back while "
                "this process was presumed dead); another process runs it.",
                task.execution_id,
            )
            if task.dropped is not None:
                task.dropped()
        self._send(request)

    def _hand_to_workers(self, chunks: list[list[PoolTask]]) -> None:
        """With the lock held: the chunks are started; their reserved workers take them."""
        self._starts.append((time.monotonic(), sum(len(chunk) for chunk in chunks)))
        self._ready.extend(chunks)
        if self._stopping:
            self._work.notify_all()
        else:
            self._work.notify(len(chunks))

    # -- the workers --------------------------------------------------------------

    def _worker(self) -> None:
        try:
            self._work_loop()
        finally:
            if self.on_thread_exit is not None:
                self.on_thread_exit()

    def _work_loop(self) -> None:
        while True:
            with self._lock:
                # At a stop, workers still run what was started (or is being started).
                while not self._ready and not (self._stopping and not self._requesting):
                    self._work.wait()
                if not self._ready:
                    return
                chunk = self._ready.popleft()
                self._busy += 1
            began = time.perf_counter()
            for task in chunk:
                try:
                    task.run()
                except BaseException:
                    logger.exception("Error running fire %s.", task.execution_id)
            each = (time.perf_counter() - began) / len(chunk)
            with self._lock:
                self._busy -= 1
                self._idle += 1
                known = self._seconds_per_fire
                self._seconds_per_fire = each if known is None else 0.8 * known + 0.2 * each
                # Wake the loop (waiting because the pool had enough) once a whole
                # batch fits again: claims stay batches, not single fires.
                wake = (
                    self._full
                    and len(self._queued) <= self._low_water
                    and self.on_capacity is not None
                )
                if wake:
                    self._full = False
                request = self._reserve()
            self._send(request)
            if wake:
                self.on_capacity()  # type: ignore[misc]
