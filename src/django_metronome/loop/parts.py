"""
What the scheduler's parts share: the state one scheduler keeps, typed once.

The scheduler (:class:`.scheduler.MetronomeSchedulerMixin`) is put together from
mixins, one per job: declaring jobs, the cycle, dispatch, running a fire.
Each sees the others' state and methods through this base, so that the type
checker knows them; the methods are declared for it only, never defined here,
so that APScheduler's own stay where the method resolution order finds them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections import deque

    from apscheduler.events import JobExecutionEvent
    from apscheduler.job import Job
    from apscheduler.triggers.base import BaseTrigger

    from ..store.claims import ClaimBatch, Fire
    from ..store.ledger import Outcome
    from .heart import Heart
    from .outcomes import LedgerWriter


class SchedulerParts:
    """State shared by the scheduler's mixins (set in ``MetronomeSchedulerMixin.__init__``)."""

    #: Functions of the jobs this process declared in code, by job id.
    _metronome_registry: dict[str, Callable[..., Any]]
    _auto_ids: set[str]
    #: Fires claimed by this process and not finished, by (job id, run time).
    _inflight: dict[tuple[str, datetime], Fire]
    #: Fires of coroutine jobs marked started before they go to the event loop.
    _started_now: dict[int, bool]
    _timings: dict[int, tuple[datetime, datetime]]
    #: Connections kept open by job threads (persistent connections), to close at stop.
    _job_connections: set[Any]
    _writer: LedgerWriter | None
    _heart: Heart | None
    identity: str
    _failures: int
    _declaring: bool

    if TYPE_CHECKING:

        @property
        def database(self) -> str: ...

        def _create_trigger(self, trigger: Any, trigger_args: dict[str, Any]) -> BaseTrigger: ...
        def _dispatch(self, batch: ClaimBatch) -> None: ...
        def _put(self, outcome: Outcome) -> None: ...
        def _wake_after_write(self) -> None: ...
        def _changed(self) -> None: ...
        def mark_started(self, ids: list[int]) -> list[int]: ...
        def _run_fire(self, job: Job, fire: Fire, notify: bool, log: Any) -> None: ...
        def _instrument(
            self, job: Job, fires: deque[Fire], *, mark: bool
        ) -> Callable[..., Any]: ...
        def _on_job_event(self, event: JobExecutionEvent) -> None: ...
        def request_start(
            self, ids: list[int], done: Callable[[Collection[int]], None]
        ) -> None: ...
