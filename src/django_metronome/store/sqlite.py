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

Within one process, those threads also take turns at the write lock through
a Python lock (:class:`WriteTurns`) before they ask SQLite for it. SQLite's
busy handler waits by sleeping and retrying (1 ms, 2 ms, 5 ms, ... 100 ms):
in a burst, the loop claiming fires and the ledger thread recording them
asked for the lock hundreds of times a second, and spent 40% of the burst
asleep in that handler after the other had already committed. A Python lock
hands the turn over the moment it is released. Between processes nothing
changes: the busy handler still waits, as before.
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
    if getattr(connection, "_metronome_turns", None) is None:
        WriteTurns.attach(connection, options.get("timeout", BUSY_TIMEOUT))


class WriteTurns:
    """
    One database file's write turns among this process's scheduler threads.

    Attached to a connection, it takes the file's lock before each
    ``BEGIN`` and gives it back after the ``COMMIT`` or ``ROLLBACK`` (or when
    the connection closes mid-transaction). A turn is waited for at most
    ``timeout`` seconds; past that the transaction begins anyway and SQLite's
    own busy handler decides, as it would without this lock: a lost release
    can slow a thread down, never stop it.
    """

    _locks: dict[str, threading.Lock] = {}
    _locks_guard = threading.Lock()

    def __init__(self, connection: Any, timeout: float) -> None:
        self.connection = connection
        self.timeout = float(timeout)
        name = str(connection.settings_dict.get("NAME") or "")
        with self._locks_guard:
            self.lock = self._locks.setdefault(name, threading.Lock())
        self.held = False
        self._begin = connection._start_transaction_under_autocommit
        self._commit = connection._commit
        self._rollback = connection._rollback
        self._close = connection._close

    @classmethod
    def attach(cls, connection: Any, timeout: float) -> WriteTurns:
        turns = cls(connection, timeout)
        connection._metronome_turns = turns
        connection._start_transaction_under_autocommit = turns.begin
        connection._commit = turns.commit
        connection._rollback = turns.rollback
        connection._close = turns.close
        return turns

    def begin(self) -> None:
        if not self.held:
            self.held = self.lock.acquire(timeout=self.timeout)
        try:
            self._begin()
        except BaseException:
            self.release()
            raise

    def commit(self) -> None:
        try:
            self._commit()
        finally:
            self.release()

    def rollback(self) -> None:
        try:
            self._rollback()
        finally:
            self.release()

    def close(self) -> None:
        try:
            self._close()
        finally:
            self.release()

    def release(self) -> None:
        if self.held:
            self.held = False
            self.lock.release()
