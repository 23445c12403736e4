"""
Where a scheduler may start: the rules ``AUTOSTART`` and a ``start()`` from ``ready()`` follow.

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
either way, e.g. for a server this list does not know;
``METRONOME["START_IN_COMMANDS"]`` names more management commands that serve.

A scheduler whose ``start()`` is called while Django loads the apps (from
``AppConfig.ready()``, as django-apscheduler users do) follows the same rules,
whatever ``AUTOSTART`` says (see :func:`decide_while_loading`): it starts in
server processes, in ``runscheduler`` and in programs that are not management
commands (a script, a worker), but not in other management commands, not in
the autoreloader's parent, not under pytest, and once per process. When it
does not start it says why in one INFO line; ``start(force=True)`` starts it
anyway.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Any

from ..conf import conf

logger = logging.getLogger("django_metronome.autostart")

#: Programs that serve a Django project, by the name they run as.
SERVERS = frozenset(
    {"gunicorn", "uwsgi", "daphne", "uvicorn", "hypercorn", "granian", "waitress-serve"}
)


#: Our own command that runs schedulers: a scheduler started in ready() runs in it too.
SCHEDULER_COMMANDS = frozenset({"runscheduler"})

#: AUTOSTART started the default scheduler in this process (see django_metronome.autostart).
autostarted = threading.Event()
#: Where schedulers were started from while the apps loaded (once per process each).
_loading_starts: set[tuple[str, int]] = set()
_loading_lock = threading.Lock()


def decide(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    enabled: bool | None = None,
) -> tuple[bool, str]:
    """Whether this process should run the default scheduler, and why (for the log)."""
    command, argv = _command(argv)
    environ = os.environ if environ is None else environ
    forced = environ.get("METRONOME_AUTOSTART")
    if forced in ("0", "1"):
        return forced == "1", f"METRONOME_AUTOSTART={forced}"
    if not (conf.AUTOSTART if enabled is None else enabled):
        return False, "METRONOME['AUTOSTART'] is off"
    program = os.path.basename(argv[0]) if argv else ""
    if program in SERVERS or program.removesuffix(".py") in SERVERS or "uwsgi" in sys.modules:
        return True, f"a {program or 'uwsgi'} server process"
    if command is None:
        return False, "not a server process"
    if command in conf.START_IN_COMMANDS:
        return True, f"the management command {command!r} (METRONOME['START_IN_COMMANDS'])"
    if command != "runserver":
        return False, f"the management command {command!r}"
    return _runserver(argv, environ)


def decide_while_loading(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[bool, str]:
    """
    Whether a scheduler started while the apps load (from ``ready()``) should start.

    The rules of ``AUTOSTART``, for schedulers of the project's own making:
    yes in server processes, in ``runscheduler`` and in programs that are not
    management commands (a script or worker that calls ``django.setup()``);
    no in other management commands (``migrate``, ``check``, ``shell``, ...,
    unless listed in ``METRONOME["START_IN_COMMANDS"]``), in the
    autoreloader's parent process of ``runserver``, and under pytest.
    ``METRONOME_AUTOSTART=1`` or ``0`` forces the answer.
    """
    command, argv = _command(argv)
    environ = os.environ if environ is None else environ
    forced = environ.get("METRONOME_AUTOSTART")
    if forced in ("0", "1"):
        return forced == "1", f"METRONOME_AUTOSTART={forced}"
    if command is None:
        program = os.path.basename(argv[0]) if argv else ""
        if program in ("pytest", "py.test") or (argv and _is_main_of(argv[0], "pytest")):
            return False, "a pytest run"
        return True, f"{program or 'a program'}, not a management command"
    if command == "runserver":
        return _runserver(argv, environ)
    if command in SCHEDULER_COMMANDS:
        return True, f"the management command {command!r}"
    if command in conf.START_IN_COMMANDS:
        return True, f"the management command {command!r} (METRONOME['START_IN_COMMANDS'])"
    return False, f"the management command {command!r}"


def may_start_while_loading(scheduler: Any, force: bool) -> bool:
    """
    Apply :func:`decide_while_loading` to a ``start()`` called while the apps load.

    Logs one line either way; a second start from the same place in the code
    (``ready()`` run twice) is refused: once per process.
    """
    site = _caller()
    name = type(scheduler).__name__
    if force:
        logger.info("Starting the %s started from %s%s: start(force=True).", name, *_where(site))
        return True
    start, why = decide_while_loading()
    if start:
        with _loading_lock:
            if site in _loading_starts:
                start, why = False, "a scheduler was started from there already in this process"
            else:
                _loading_starts.add(site)
    if start:
        logger.info("Starting the %s started from %s%s (%s).", name, *_where(site), why)
        return True
    logger.info(
        "Not starting the %s started from %s%s in this process: %s. Schedulers started while "
        "Django loads the apps run in server processes and runscheduler; start(force=True), "
        "METRONOME_AUTOSTART=1 or METRONOME['START_IN_COMMANDS'] start them elsewhere.",
        name,
        *_where(site),
        why,
    )
    return False


def _runserver(argv: list[str], environ: Mapping[str, str]) -> tuple[bool, str]:
    if "--noreload" in argv or environ.get("RUN_MAIN") == "true":
        return True, "runserver"
    return False, "the autoreloader's parent process of runserver"


def _command(argv: Sequence[str] | None) -> tuple[str | None, list[str]]:
    """The management command this process runs (or None), and the arguments to judge."""
    if argv is not None:
        return _management_command(list(argv)), list(argv)
    running = _running_command()
    if running is not None:
        return running
    return _management_command(sys.argv), list(sys.argv)


def _running_command() -> tuple[str, list[str]] | None:
    """
    The command Django's ``ManagementUtility`` is running in this thread, if any.

    ``ready()`` runs inside ``ManagementUtility.execute()`` for every management
    command, whatever the script is called (``manage.py``, ``django-admin``,
    a console script of the project's own): its frame says which command.
    """
    from django.core.management import ManagementUtility

    code = ManagementUtility.execute.__code__
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code is code:
            utility = frame.f_locals.get("self")
            argv = list(getattr(utility, "argv", None) or sys.argv)
            command = frame.f_locals.get("subcommand")
            if not isinstance(command, str):
                command = argv[1] if len(argv) > 1 else "help"
            return command, argv
        frame = frame.f_back
    return None


def _management_command(argv: list[str]) -> str | None:
    if not argv:
        return None
    program = os.path.basename(argv[0])
    is_manage = program in ("manage.py", "django-admin", "django-admin.py") or _is_main_of(
        argv[0], "django"
    )
    if not is_manage or len(argv) < 2:
        return None
    return argv[1]


def _is_main_of(path: str, package: str) -> bool:
    """Whether ``path`` is ``python -m package``'s ``__main__.py``."""
    return os.path.basename(path) == "__main__.py" and (
        os.path.basename(os.path.dirname(path)) == package
    )


def _caller() -> tuple[str, int]:
    """The first place in the call stack outside this package: who called start()."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(package + os.sep):
            return filename, frame.f_lineno
        frame = frame.f_back
    return "?", 0


def _where(site: tuple[str, int]) -> tuple[str, str]:
    filename, line = site
    try:
        shown = os.path.relpath(filename)
    except ValueError:
        shown = filename
    return shown, f":{line}" if line else ""


def stop_at_exit(scheduler: Any) -> None:
    """Stop a scheduler as its process exits: running jobs get SHUTDOWN_TIMEOUT to finish."""
    if scheduler.running:
        scheduler.shutdown(wait=True, timeout=conf.SHUTDOWN_TIMEOUT)
