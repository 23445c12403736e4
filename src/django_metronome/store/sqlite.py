"""
SQLite as ``startproject`` configures it, made safe for the scheduler's own threads.

With no ``OPTIONS``, Django's SQLite transactions are ``DEFERRED``: a
transaction that reads before it writes asks for the write lock only at its
first write, and if another connection holds it then, SQLite answers
"database is locked" at once instead of waiting (waiting could deadlock). The
scheduler's housekeeping (registering its process, resuming paused jobs,
pruning) reads first, so a new project's ``runscheduler`` often began with
``Heartbeat failed (database is locked)`` while anything else wrote.

So the connections that the scheduler's own threads open (the loop, the heart,
the ledger writer, the starters; not the threads that run jobs, whose
transactions are the project's business) start their transactions with
``BEGIN IMMEDIATE``, which waits for the write lock, and wait up to
:data:`BUSY_TIMEOUT` seconds for it when the project set no ``timeout``. A
short lock is then waited for, not reported. A project that sets
``transaction_mode`` or ``timeout`` itself keeps its choice. The settings that
help everything else (requests, jobs) are in ``docs/databases.md``.
"""

from __future__ import annotations

import threading
from typing import Any

#: Seconds the scheduler's threads wait for SQLite's write lock, unless OPTIONS says.
BUSY_TIMEOUT = 20.0

#: The threads of django-metronome that write to the job tables (names as they start).
SCHEDULER_THREADS = (
    "metronome-scheduler",
    "metronome-heart",
    "metronome-ledger",
    "metronome-recorder",
    "metronome-start",
    "metronome-autostart",
    "metronome-db",
    # APScheduler names the loop's thread so until start() renames it.
    "APScheduler",
)


def is_scheduler_thread(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + "_") for prefix in SCHEDULER_THREADS)


def prepare_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: SQLite settings for the scheduler's own threads."""
    if connection.vendor != "sqlite" or not is_scheduler_thread(threading.current_thread().name):
        return
    options = connection.settings_dict.get("OPTIONS") or {}
    if getattr(connection, "transaction_mode", None) is None:
        connection.transaction_mode = "IMMEDIATE"
    if "timeout" not in options:
        connection.connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
