"""
One clock for every process: the database server's.

Processes on different machines must agree on when a fire is due, and a
process whose clock runs fast must not fire early. The database server's
clock is the one that every process sharing the database can read, so it
rules: at every heartbeat each scheduler process measures the offset of the
database's clock against its own (half a round trip is the error), and from
then on it schedules by its own clock plus that offset. Due-ness, heartbeats,
the reaper's "presumed dead" and the ledger's timestamps all come from that
corrected clock, so a process whose clock is 30 s fast fires on time, and is
not told by others that it is dead.

Between two heartbeats the correction is kept, and a step of the local clock
(an NTP jump, a suspended machine) is noticed by comparing the wall clock
with the monotonic one: the loop then measures again before it claims.

``METRONOME["CLOCK"] = "local"`` trusts each process's own clock instead
(tests that move a process's clock on purpose; a single machine).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

#: Wall-clock drift against the monotonic clock (seconds) that counts as a jump.
JUMP = 0.5


class Clock:
    """The local clock, corrected by the last measured offset of the database's."""

    def __init__(self) -> None:
        #: Seconds the database's clock is ahead of ours (negative: behind).
        self.offset = 0.0
        #: When (wall, monotonic) the offset was measured; None before the first time.
        self._anchor: tuple[float, float] | None = None

    @property
    def measured(self) -> bool:
        return self._anchor is not None

    def set_offset(
        self, offset: float, wall: float | None = None, mono: float | None = None
    ) -> None:
        self.offset = offset
        self._anchor = (
            time.time() if wall is None else wall,
            time.monotonic() if mono is None else mono,
        )

    def reset(self) -> None:
        """Forget the measurement (tests; a process that switches to its local clock)."""
        self.offset = 0.0
        self._anchor = None

    def now(self) -> datetime:
        """The current instant by the database's clock, as far as this process knows it."""
        return datetime.fromtimestamp(time.time() + self.offset, UTC)

    def jumped(self) -> bool:
        """Whether the wall clock moved against the monotonic one since the measurement."""
        if self._anchor is None:
            return False
        wall, mono = self._anchor
        return abs((time.time() - wall) - (time.monotonic() - mono)) > JUMP


def offset_of(database_now: datetime, before: float, after: float) -> float:
    """
    Seconds ``database_now`` is ahead of the local clock, read between the
    local instants ``before`` and ``after`` (``time.time()`` values).
    """
    middle = before + (after - before) / 2
    return (database_now - datetime.fromtimestamp(middle, UTC)) / timedelta(seconds=1)


def describe_offset(offset: float) -> str:
    """A process's clock against the database's, in words: ``"30.500 s ahead of"``."""
    return f"{abs(offset):.3f} s {'behind' if offset > 0 else 'ahead of'}"


#: This process's clock. Scheduler processes measure it; others keep offset 0.
clock = Clock()
