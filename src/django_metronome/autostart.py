"""
``METRONOME["AUTOSTART"]``: the default scheduler in each web server process.

Which processes start one is decided by the rules in
:mod:`django_metronome.loop.startrules` (server processes and runserver's
serving child, not other management commands, not the autoreloader's parent);
a process that should waits in a background thread until
``django_metronome``'s migrations are applied, then starts it.
"""

from __future__ import annotations

import atexit
import logging
import threading

from django.db import DatabaseError, connections

from .loop import startrules
from .loop.startrules import (
    SCHEDULER_COMMANDS,
    SERVERS,
    decide,
    decide_while_loading,
    may_start_while_loading,
    stop_at_exit,
)

__all__ = [
    "SCHEDULER_COMMANDS",
    "SERVERS",
    "decide",
    "decide_while_loading",
    "may_start_while_loading",
    "maybe_autostart",
    "migrations_applied",
    "stop_at_exit",
]

logger = logging.getLogger("django_metronome.autostart")

#: Seconds between two looks at the migrations while they are not applied.
MIGRATION_POLL = 5.0


def maybe_autostart() -> bool:
    """Start the default scheduler if this process should run one (once per process)."""
    start, why = decide()
    if not start or startrules.autostarted.is_set():
        logger.debug("Not starting the scheduler: %s.", why)
        return False
    startrules.autostarted.set()
    logger.info("Starting the scheduler in this process (%s).", why)
    thread = threading.Thread(target=_start_when_migrated, name="metronome-autostart", daemon=True)
    thread.start()
    return True


def migrations_applied() -> bool:
    from django.db.migrations.executor import MigrationExecutor

    from .store.db import database_alias

    connection = connections[database_alias()]
    executor = MigrationExecutor(connection)
    targets = [key for key in executor.loader.graph.leaf_nodes() if key[0] == "django_metronome"]
    return not executor.migration_plan(targets)


def _start_when_migrated() -> None:
    from .default import autodiscover, get_scheduler

    waiting_said = False
    stop = threading.Event()
    try:
        while True:
            try:
                if migrations_applied():
                    break
                if not waiting_said:
                    logger.warning(
                        "The scheduler waits for django_metronome's migrations "
                        "(python manage.py migrate); it starts once they are applied."
                    )
                    waiting_said = True
            except DatabaseError as exc:
                logger.warning("The scheduler waits for the database: %s", exc)
            finally:
                connections.close_all()
            stop.wait(MIGRATION_POLL)
        autodiscover()
        scheduler = get_scheduler()
        scheduler.start()
        # A server that exits cleanly (a gunicorn worker on SIGTERM, say) lets the
        # running jobs finish and records the rest as interrupted.
        atexit.register(stop_at_exit, scheduler)
    except Exception:
        logger.exception("The scheduler could not start in this process.")
