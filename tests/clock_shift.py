"""
Run the tests on another day: ``METRONOME_CLOCK_SHIFT=+365d`` (or ``-365d``, ``+36h``,
``-90m``, ``+30s``) moves the wall clock of the whole process by that much, ticking.

Started from ``tests/__init__.py``, so every process that imports anything of the
test suite shifts its clock the same way: pytest and its xdist workers, and the
scheduler subprocesses the tests start (``-m django ... --settings=tests.settings_*``,
``-m tests.proc_*``), which inherit the environment (tests/proctools.py passes it
on). Starting from the package, before any settings are read, also means a process
that travels on its own (tests/proc_reference.py) nests its travel on top of the
shift, as tests nest ``time_machine.travel(..., tick=False)`` inside it; and a
process that travelled before importing the package keeps its own time, unshifted.

The shifted clock is the real one plus the shift, so processes started at different
moments agree with each other. time-machine leaves ``time.monotonic`` alone: waits
and timeouts (``Event.wait``, ``Popen.wait``) run on real time, as they should.

Nothing outside Python is shifted: the database servers' clocks and SQLite's
``'now'`` stay on the real day, so the library must take "now" from Python, never
from the database (it does: ``utcnow()``), for these runs to mean anything.
"""

from __future__ import annotations

import os
import re
import time

VARIABLE = "METRONOME_CLOCK_SHIFT"
UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}

_started = False


def parse(text: str) -> float:
    """The shift in seconds: ``"+365d"`` is 365 days ahead; ``""`` or ``"0"`` is none."""
    text = text.strip()
    if text in {"", "0"}:
        return 0.0
    match = re.fullmatch(r"([+-])(\d+(?:\.\d+)?)([dhms])", text)
    if not match:
        raise RuntimeError(
            f"{VARIABLE}={text!r}: write a sign, a number and a unit (d, h, m or s), "
            "e.g. +365d or -365d."
        )
    sign, number, unit = match.groups()
    return (1 if sign == "+" else -1) * float(number) * UNITS[unit]


def shift() -> float:
    """This process's shift in seconds, from the environment."""
    return parse(os.environ.get(VARIABLE, ""))


def start_from_environment() -> None:
    """Shift this process's clock as ``METRONOME_CLOCK_SHIFT`` says, once, for good."""
    global _started
    seconds = shift()
    if _started or not seconds:
        return
    import time_machine

    if getattr(time_machine, "traveller_stack", None):
        # The process already travels to a time of its own (it started before
        # importing the tests package): shifting would override that time.
        return
    time_machine.travel(time.time() + seconds, tick=True).start()
    # time-machine's clock starts ticking at its first reading: read it now, so the
    # shifted clock is the real one plus the shift from here on, in every process.
    time.time()
    _started = True
