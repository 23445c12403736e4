"""
How a scheduler learns that what is due changed, without reading the job table.

The database announces every change that may make something due sooner (a job
added, resumed, moved earlier or released from quarantine; a "run now" request
or a handed-back fire in the ledger) and those that make it later (a job paused
or removed): its triggers, installed by migration 0003, cover every writer, the
admin, a web request's ``add_job``, raw SQL and hand edits alike. A scheduler's
own claims (a job moved later, or ended) announce nothing, so that they do not
wake the others.

* **PostgreSQL**: the triggers ``NOTIFY django_metronome``. Each scheduler
  process keeps one connection that ``LISTEN``\\ s (:class:`Listener`) and
  wakes its loop on a notification; the loop sleeps until its next due time
  otherwise. A lost connection is reported (the loop then polls the job table
  every ``POLL_INTERVAL``) and reopened with backoff; once it listens again the
  loop reads the job table once, for what it may have missed.
* **SQLite, MariaDB/MySQL**: the triggers add one to the one row of
  :class:`~django_metronome.store.models.ChangeMarker`; an idle loop reads
  that row (:func:`marker`) every ``POLL_INTERVAL`` and the job table only
  when it moved.

Whatever the mode, an idle loop reads the job table again every
``RESCAN_INTERVAL``: a change that announced nothing (a trigger disabled or
never created, a notification lost with a half-open connection) is seen then.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable
from typing import Any

from django.db import Error as DatabaseError
from django.db import OperationalError, connections

from .db import close_connection
from .models import ChangeMarker

__all__ = ["CHANNEL", "TRIGGERS", "Listener", "marker", "triggers_installed", "watch_mode"]

logger = logging.getLogger("django_metronome.scheduler")

#: The notification channel the PostgreSQL triggers send on (see migration 0003).
CHANNEL = "django_metronome"

#: Seconds before the first attempt to listen again after the connection was lost,
#: doubling up to RETRY_MAX while the database cannot be reached.
RETRY_FIRST = 0.2
RETRY_MAX = 10.0

#: How a scheduler learns of changes: notifications, the change marker, or reading
#: the job table at every turn.
NOTIFY, MARKER, POLL = "notify", "marker", "poll"


#: The triggers migration 0003 creates (the same names there).
TRIGGERS = (
    "django_metronome_job_added",
    "django_metronome_job_changed",
    "django_metronome_job_removed",
    "django_metronome_fire_requested",
    "django_metronome_fire_handed_back",
)


def watch_mode(using: str) -> str:
    """
    How a scheduler on this database learns of changes (see the module's text).

    One query, at the scheduler's start: are the triggers there? Without them
    (MySQL refused to create them, or someone dropped them) nothing would be
    announced, and the loop reads the job table every ``POLL_INTERVAL`` as before.
    """
    from ..conf import conf

    vendor = connections[using].vendor
    if vendor == "postgresql" and not conf.LISTEN:
        return POLL
    if vendor not in ("postgresql", "sqlite", "mysql"):
        return POLL
    if not triggers_installed(using):
        logger.warning(
            "django-metronome's triggers are missing from the database (migration 0003): "
            "the scheduler reads the job table every POLL_INTERVAL to see changes."
        )
        return POLL
    return NOTIFY if vendor == "postgresql" else MARKER


def triggers_installed(using: str) -> bool:
    """Whether every trigger of migration 0003 is in the database."""
    connection = connections[using]
    # Placeholders only in the f-strings: the names go as parameters.
    marks = ", ".join(["%s"] * len(TRIGGERS))
    if connection.vendor == "postgresql":
        sql = f"SELECT COUNT(*) FROM pg_trigger WHERE NOT tgisinternal AND tgname IN ({marks})"  # noqa: S608
    elif connection.vendor == "mysql":
        sql = (
            "SELECT COUNT(*) FROM information_schema.TRIGGERS "  # noqa: S608
            f"WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME IN ({marks})"
        )
    else:
        sql = f"SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, list(TRIGGERS))
        (count,) = cursor.fetchone()
    return int(count) == len(TRIGGERS)


def marker(using: str) -> int | None:
    """The change marker's counter (None while its row is missing: after a flush)."""
    return ChangeMarker.objects.using(using).filter(pk=1).values_list("version", flat=True).first()


class Listener:
    """
    One thread with one connection that LISTENs on :data:`CHANNEL` (PostgreSQL).

    ``changed()`` is called once for every batch of notifications that arrive
    together (they only mean "look again", so a burst wakes the loop once);
    ``listening(True)`` once the connection listens, ``listening(False)`` when
    it is lost (then the thread reconnects, with backoff) and at the stop.
    Idle, the thread sends no query: it waits on the connection's socket.
    """

    def __init__(
        self, using: str, changed: Callable[[], None], listening: Callable[[bool], None]
    ) -> None:
        self.using = using
        self.changed = changed
        self.listening = listening
        self._stopped = threading.Event()
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._run, name="metronome-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        os.write(self._wake_write, b"x")
        self._thread.join(timeout)
        if not self._thread.is_alive():
            # Closed here, once nobody can wait on it or write to it any more.
            os.close(self._wake_read)
            os.close(self._wake_write)

    def _run(self) -> None:
        delay, failures = RETRY_FIRST, 0
        try:
            while not self._stopped.is_set():
                try:
                    raw = self._listen()
                except DatabaseError as exc:
                    failures += 1
                    if failures == 1:
                        logger.warning(
                            "Cannot LISTEN for changes (%s); the scheduler reads the job "
                            "table every POLL_INTERVAL until it can.",
                            exc,
                        )
                    close_connection(self.using)
                    self._stopped.wait(delay)
                    delay = min(RETRY_MAX, delay * 2)
                    continue
                if failures:
                    logger.warning("Listening for changes again after %d attempt(s).", failures)
                delay, failures = RETRY_FIRST, 0
                self.listening(True)
                try:
                    self._wait(raw)
                except DatabaseError as exc:
                    logger.warning(
                        "The connection listening for changes was lost (%s); the scheduler "
                        "reads the job table every POLL_INTERVAL until it listens again.",
                        exc,
                    )
                finally:
                    self.listening(False)
                    close_connection(self.using)
                # A server that ended the session may be restarting: a moment first.
                self._stopped.wait(delay)
        finally:
            connections.close_all()

    def _listen(self) -> Any:
        connection = connections[self.using]
        with connection.cursor() as cursor:
            cursor.execute(f'LISTEN "{CHANNEL}"')
        return connection.connection

    def _wait(self, raw: Any) -> None:
        """Wait for notifications until the stop; raise when the connection is lost."""
        socket = raw.fileno()
        while not self._stopped.is_set():
            ready, _, _ = select.select([socket, self._wake_read], [], [])
            if self._wake_read in ready:
                return
            if self._drain(raw):
                self.changed()

    def _drain(self, raw: Any) -> int:
        """Take the notifications the connection has received; how many."""
        try:
            if callable(getattr(raw, "notifies", None)):  # psycopg 3
                count = sum(1 for _ in raw.notifies(timeout=0))
            else:  # psycopg2
                raw.poll()
                count = len(raw.notifies)
                raw.notifies.clear()
        except Exception as exc:
            # The driver's own error (the server ended the session): Django's kind.
            raise OperationalError(str(exc).strip() or type(exc).__name__) from exc
        if raw.closed:
            raise OperationalError("the server closed the connection")
        return count
