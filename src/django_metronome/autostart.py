"""
Starting the default scheduler inside web server processes, safely.

With ``METRONOME["AUTOSTART"] = True`` each server process (a gunicorn,
uWSGI, Daphne, Uvicorn or Hypercorn worker, or ``runserver``) runs the
default scheduler; the database makes sure each fire still runs once, however
many workers there are. It does not start

* in management commands other than ``runserver`` (``migrate``, ``shell``,
  ``test``, ``runscheduler``, which runs its own, ...),
* in the autoreloader's parent process of ``runserver`` (only in the child
  that serves requests),
* before ``django_metronome``'s migrations are applied: it waits for them,
  checking every few seconds, in a background thread.

``METRONOME_AUTOSTART=1`` (or ``0``) in the environment forces the decision
either way, e.g. for a server this list does not know.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import DatabaseError, connections

from .conf import conf

logger = logging.getLogger("django_metronome.autostart")

#: Programs that serve a Django project, by the name they run as.
SERVERS = frozenset(
    {"gunicorn", "uwsgi", "daphne", "uvicorn", "hypercorn", "granian", "waitress-serve"}
)

#: Seconds between two looks at the migrations while they are not applied.
MIGRATION_POLL = 5.0

_started = threading.Event()


def decide(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    enabled: bool | None = None,
) -> tuple[bool, str]:
    """Whether this process should run the default scheduler, and why (for the log)."""
    argv = list(sys.argv if argv is None else argv)
    environ = os.environ if environ is None else environ
    forced = environ.get("METRONOME_AUTOSTART")
    if forced in ("0", "1"):
        return forced == "1", f"METRONOME_AUTOSTART={forced}"
    if not (conf.AUTOSTART if enabled is None else enabled):
        return False, "METRONOME['AUTOSTART'] is off"
    program = os.path.basename(argv[0]) if argv else ""
    if program in SERVERS or program.removesuffix(".py") in SERVERS or "uwsgi" in sys.modules:
        return True, f"a {program or 'uwsgi'} server process"
    command = _management_command(argv)
    if command is None:
        return False, "not a server process"
    if command != "runserver":
        return False, f"the management command {command!r}"
    if "--noreload" in argv or environ.get("RUN_MAIN") == "true":
        return True, "runserver"
    return False, "the autoreloader's parent process of runserver"


def _management_command(argv: list[str]) -> str | None:
    if not argv:
        return None
    program = os.path.basename(argv[0])
    is_manage = program in ("manage.py", "django-admin", "django-admin.py", "__main__.py")
    if not is_manage or len(argv) < 2:
        return None
    return argv[1]


def maybe_autostart() -> bool:
    """Start the default scheduler if this process should run one (once per process)."""
    start, why = decide()
    if not start or _started.is_set():
        logger.debug("Not starting the scheduler: %s.", why)
        return False
    _started.set()
    logger.info("Starting the scheduler in this process (%s).", why)
    thread = threading.Thread(target=_start_when_migrated, name="metronome-autostart", daemon=True)
    thread.start()
    return True


def migrations_applied() -> bool:
    from django.db.migrations.executor import MigrationExecutor

    from .jobstores import DjangoJobStore

    connection = connections[DjangoJobStore().database]
    executor = MigrationExecutor(connection)
    targets = [key for key in executor.loader.graph.leaf_nodes() if key[0] == "django_metronome"]
    return not executor.migration_plan(targets)


def _stop(scheduler: Any) -> None:
    if scheduler.running:
        scheduler.shutdown(wait=True, timeout=conf.SHUTDOWN_TIMEOUT)


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
        atexit.register(_stop, scheduler)
    except Exception:
        logger.exception("The scheduler could not start in this process.")
