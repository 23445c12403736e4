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
        self._ready: deque[PoolTask] = deque()
        #: Workers neither running a fire nor reserved for one.
        self._idle = 0
        self._busy = 0
        #: A start request is out (its fires have workers reserved).
        self._requesting = False
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._starts: deque[tuple[float, int]] = deque()
        self._full = False
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
            room = self._idle + self._prefetch() - len(self._queued)
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
        """Fires to hold ahead: the recent start rate times a short horizon (at least one each)."""
        now = time.monotonic()
        starts = self._starts
        while starts and now - starts[0][0] > 1.0:
            starts.popleft()
        rate = sum(count for _, count in starts)
        return max(self.workers, min(self.batch_limit, int(rate * PREFETCH_HORIZON)))

    # -- starting -----------------------------------------------------------------

    def _reserve(self) -> list[PoolTask] | None:
        """With the lock held: reserve idle workers for the next queued fires."""
        if self._requesting or self._stopping or not self._queued or self._idle <= 0:
            return None
        count = min(self._idle, len(self._queued))
        group = [self._queued.popleft() for _ in range(count)]
        self._idle -= count
        if self._request_start is None:
            self._hand_to_workers(group)
            return None
        self._requesting = True
        return group

    def _send(self, group: list[PoolTask] | None) -> None:
        """Outside the lock: ask for the reserved group to be marked started."""
        if group is None:
            return
        ids = [task.execution_id for task in group if task.execution_id is not None]
        self._request_start(ids, lambda marked: self._started(group, marked))  # type: ignore[misc]

    def _started(self, group: list[PoolTask], marked: Collection[int]) -> None:
        marked = set(marked)
        dropped = [
            task
            for task in group
            if task.execution_id is not None and task.execution_id not in marked
        ]
        with self._lock:
            self._requesting = False
            self._idle += len(dropped)
            self._hand_to_workers([task for task in group if task not in dropped])
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

    def _hand_to_workers(self, group: list[PoolTask]) -> None:
        """With the lock held: the group is started; its reserved workers take it."""
        self._starts.append((time.monotonic(), len(group)))
        self._ready.extend(group)
        if self._stopping:
            self._work.notify_all()
        else:
            self._work.notify(len(group))

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
                task = self._ready.popleft()
                self._busy += 1
            try:
                task.run()
            except BaseException:
                logger.exception("Error running fire %s.", task.execution_id)
            with self._lock:
                self._busy -= 1
                self._idle += 1
                wake = self._full and self.on_capacity is not None
                self._full = False
                request = self._reserve()
            self._send(request)
            if wake:
                self.on_capacity()  # type: ignore[misc]
