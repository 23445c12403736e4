"""
Run the tests on another day: ``METRONOME_CLOCK_SHIFT=+365d`` (or ``-365d``, ``+36h``,
``-90m``, ``+30s``) moves the clocks of a whole test run by that much, ticking: the
wall clock of every test process, and SQLite's. ``scripts/test`` runs the suite a
year ahead and a year back, to find the tests that compare fixed dates with the
clock before their day comes.

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

The database's clock moves too, or a scheduler that schedules by it would be a
year off the tests: SQLite's ``'now'`` (``strftime('%Y-%m-%d %H:%M:%f', 'now')``,
``datetime('now')``, ``date()``...) is answered on every connection Django opens
with the real time plus the shift, the real time read from the monotonic clock,
which no test moves: a test that travels in time moves its process's clock, not
the database's, exactly as without a shift. A database server's clock cannot be
moved: shifted runs are for SQLite only. (``CURRENT_TIMESTAMP`` and its kin are
keywords, not functions, and stay on the real day; the library does not use them
on SQLite.)
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from typing import Any

VARIABLE = "METRONOME_CLOCK_SHIFT"
UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}

#: SQLite's date and time functions, and the position of their time value.
SQLITE_TIME_FUNCTIONS = {
    "date": 0,
    "time": 0,
    "datetime": 0,
    "julianday": 0,
    "unixepoch": 0,
    "strftime": 1,
}

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
    """Shift this process's clocks as ``METRONOME_CLOCK_SHIFT`` says, once, for good."""
    global _started
    seconds = shift()
    if _started or not seconds:
        return
    database = os.environ.get("METRONOME_TEST_DB", "sqlite")
    if database != "sqlite":
        raise RuntimeError(
            f"{VARIABLE} moves SQLite's clock with Python's; a database server's clock "
            f"cannot be moved: run it with METRONOME_TEST_DB=sqlite, not {database!r}."
        )
    import time_machine

    if getattr(time_machine, "traveller_stack", None):
        # The process already travels to a time of its own (it started before
        # importing the tests package): shifting would override that time.
        return
    real, monotonic = time.time(), time.monotonic()
    time_machine.travel(real + seconds, tick=True).start()
    # time-machine's clock starts ticking at its first reading: read it now, so the
    # shifted clock is the real one plus the shift from here on, in every process.
    time.time()
    _shift_sqlite(lambda: real + seconds + (time.monotonic() - monotonic))
    _started = True


def _shift_sqlite(database_time: Any) -> None:
    """Answer SQLite's ``'now'`` with ``database_time()`` on each connection Django opens."""
    from django.db.backends.signals import connection_created

    # The real functions, on a connection of each thread's own, compute the answers.
    plain = threading.local()

    def compute(name: str, args: list[Any]) -> Any:
        if not hasattr(plain, "connection"):
            plain.connection = sqlite3.connect(":memory:")
        placeholders = ", ".join("?" * len(args))
        return plain.connection.execute(f"SELECT {name}({placeholders})", args).fetchone()[0]

    def shifted(name: str, position: int) -> Any:
        def function(*args: Any) -> Any:
            args_ = list(args)
            if len(args_) == position:  # no time value: it is "now"
                args_.append("now")
            value = args_[position] if len(args_) > position else None
            if isinstance(value, str) and value.strip().lower() == "now":
                moment = database_time()
                args_[position] = (
                    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment))
                    + f".{int(moment % 1 * 1000):03d}"
                )
            return compute(name, args_)

        return function

    def on_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
        if connection.vendor != "sqlite":
            return
        for name, position in SQLITE_TIME_FUNCTIONS.items():
            connection.connection.create_function(name, -1, shifted(name, position))

    connection_created.connect(on_connection, weak=False)
