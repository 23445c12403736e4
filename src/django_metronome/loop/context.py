"""
Which fire a job is running, for the job itself.

APScheduler calls a job's function with its arguments only. A job run by a
django-metronome scheduler can ask which fire it is: its scheduled time (to
process "the day that ended at 08:00" rather than "now"), and its ledger row::

    from django_metronome.context import current_fire

    def close_campaigns():
        fire = current_fire()
        Campaign.objects.filter(ends_at__lte=fire.run_time).update(status="closed")
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["FireContext", "current_fire"]


@dataclass(frozen=True)
class FireContext:
    job_id: str
    #: The scheduled time of this fire (aware, UTC).
    run_time: datetime
    #: The id of its row in the run ledger (``DjangoJobExecution``).
    execution_id: int
    #: The fire misfired (later than its grace time) and runs under a catch-up policy.
    late: bool = False
    #: Asks the ledger whether the next fire asked this one to stop (cancel_other).
    _probe: Callable[[], bool] | None = field(default=None, repr=False, compare=False)

    @property
    def cancelled(self) -> bool:
        """
        Whether the job's next fire asked this one to stop (``overlap="cancel_other"``).

        A job in a thread looks now and then, and returns (or raises) soon
        once it is True; a coroutine job is cancelled for real. Always False
        for a job under any other overlap policy. The ledger is asked at most
        every half second, from any process.
        """
        return self._probe is not None and self._probe()


_current: ContextVar[FireContext | None] = ContextVar("metronome_fire", default=None)


def current_fire() -> FireContext | None:
    """The fire being run in this thread or task, or None outside a scheduled run."""
    return _current.get()
