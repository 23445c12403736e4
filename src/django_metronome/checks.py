"""
System checks. Ids are stable: once published, an id keeps its meaning.

Settings (run by every ``manage.py check``):

* ``django_metronome.E001``: ``METRONOME`` is not a dict.
* ``django_metronome.E002``: ``METRONOME`` has a key this release does not know.
* ``django_metronome.E003``: the default time zone is not a known IANA zone.
* ``django_metronome.E004``: ``METRONOME["DATABASE"]`` is not a configured database.
* ``django_metronome.E005``: a number setting is not a positive number.
* ``django_metronome.E006``: ``METRONOME["MISFIRE_POLICY"]`` is not a known policy.
* ``django_metronome.E007``: ``DEAD_AFTER`` is not longer than two heartbeats.
* ``django_metronome.E011``: ``METRONOME["CLOCK"]`` is neither ``"database"``
  nor ``"local"``.
* ``django_metronome.E012``: ``METRONOME["METRICS_TOKEN"]`` is neither None
  nor a non-empty string.
* ``django_metronome.E013``: ``METRONOME["METRICS_ALLOWED_IPS"]`` is not a list
  of IP addresses and networks.

Job declarations (run by every ``manage.py check``, except during ``migrate``):

* ``django_metronome.E010``: the ``jobs`` module of an installed app cannot be
  imported, usually because a job it declares is refused (a typo in a cron
  field or a time zone, an interval below ``MIN_INTERVAL``, arguments that
  are not JSON). The check imports the modules as a scheduler does when it
  starts (declaring their jobs in memory) without starting one.

Database (run by ``manage.py check --database default``, and by the scheduler
commands):

* ``django_metronome.E008``: the database's state cannot be read.
* ``django_metronome.E009``: the database cannot skip locked rows (MariaDB
  older than 10.6, MySQL older than 8.0), which coordination needs.
* ``django_metronome.W001``: SQLite is shared by more than one live scheduler
  process (counting the one ``runscheduler`` is starting): it works (claims
  take the database's write lock in turn), but SQLite has no row locks and
  every claim waits for every other.
* ``django_metronome.W002``: the job tables' migrations are not all applied.
  ``runscheduler`` refuses to start until they are.
* ``django_metronome.W003``: a live scheduler process's clock is off from the
  database server's by more than ``MAX_CLOCK_OFFSET``. It schedules by the
  database's clock (unless ``CLOCK`` is ``"local"``), so fires are on time,
  but the machine's time synchronisation is broken.

None of the database checks runs during ``migrate`` itself, which runs the
database checks just before it creates the tables they look at.
"""

from __future__ import annotations

import difflib
import math
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError, connections
from django.utils.translation import gettext as _

from .conf import DEFAULTS, conf
from .observe.access import parse_networks
from .store import nodes
from .store.db import database_alias
from .time.firing import MISFIRE_POLICIES
from .time.zones import close_zone_names

#: Settings that must be positive numbers, and whether None is allowed.
POSITIVE_NUMBERS = {
    "POLL_INTERVAL": False,
    "RESCAN_INTERVAL": False,
    "BATCH_SIZE": False,
    "WORKERS": False,
    "HEARTBEAT_INTERVAL": False,
    "DEAD_AFTER": False,
    "SHUTDOWN_TIMEOUT": False,
    "MAX_CATCH_UP": False,
    "PRUNE_INTERVAL": False,
    "HISTORY_MAX_AGE": True,
    "HISTORY_MAX_PER_JOB": True,
    "MIN_INTERVAL": False,
    "MAX_CLOCK_OFFSET": False,
}


@register(Tags.compatibility)
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    raw = conf.raw
    if not isinstance(raw, dict):
        return [
            Error(
                f"METRONOME must be a dict, not {type(raw).__name__}.",
                hint="Write METRONOME = {'TIME_ZONE': 'Europe/Berlin', ...} in your settings.",
                id="django_metronome.E001",
            )
        ]
    errors: list[CheckMessage] = []
    for key in sorted(set(raw) - set(DEFAULTS)):
        close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
        hint = f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(DEFAULTS)}."
        errors.append(
            Error(f"METRONOME has an unknown key {key!r}.", hint=hint, id="django_metronome.E002")
        )
    zone = conf.TIME_ZONE
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        close = close_zone_names(zone) if isinstance(zone, str) else []
        suggestion = f"Did you mean {' or '.join(map(repr, close))}? " if close else ""
        errors.append(
            Error(
                f"The default time zone of jobs, {zone!r}, is not a known IANA time zone.",
                hint=f"{suggestion}Set METRONOME['TIME_ZONE'] (or TIME_ZONE) to a name such as "
                "'Asia/Seoul'; install the tzdata package if the system has no zone database.",
                id="django_metronome.E003",
            )
        )
    database = conf.DATABASE
    if database is not None and database not in settings.DATABASES:
        errors.append(
            Error(
                f"METRONOME['DATABASE'] is {database!r}, which is not in DATABASES.",
                hint=f"Use one of {', '.join(map(repr, settings.DATABASES))}, or remove the key.",
                id="django_metronome.E004",
            )
        )
    errors += _number_errors(raw)
    policy = raw.get("MISFIRE_POLICY", DEFAULTS["MISFIRE_POLICY"])
    if policy not in MISFIRE_POLICIES:
        errors.append(
            Error(
                f"METRONOME['MISFIRE_POLICY'] is {policy!r}.",
                hint=f"Use one of {', '.join(map(repr, MISFIRE_POLICIES))}.",
                id="django_metronome.E006",
            )
        )
    clock = raw.get("CLOCK", DEFAULTS["CLOCK"])
    if clock not in ("database", "local"):
        errors.append(
            Error(
                f"METRONOME['CLOCK'] is {clock!r}.",
                hint="Use 'database' (schedule by the database server's clock, the default) "
                "or 'local' (by each process's own clock).",
                id="django_metronome.E011",
            )
        )
    errors += _metrics_access_errors(raw)
    if not any(e.id == "django_metronome.E005" for e in errors):
        if conf.DEAD_AFTER <= 2 * conf.HEARTBEAT_INTERVAL:
            errors.append(
                Error(
                    f"METRONOME['DEAD_AFTER'] ({conf.DEAD_AFTER:g} s) must be longer than two "
                    f"heartbeats ({2 * conf.HEARTBEAT_INTERVAL:g} s), or live processes are "
                    "presumed dead between two beats.",
                    hint="Raise DEAD_AFTER or lower HEARTBEAT_INTERVAL.",
                    id="django_metronome.E007",
                )
            )
    return errors


def _metrics_access_errors(raw: dict[str, Any]) -> list[CheckMessage]:
    """Who may read the metrics (E012, E013)."""
    errors: list[CheckMessage] = []
    token = raw.get("METRICS_TOKEN")
    if token is not None and (not isinstance(token, str) or not token.strip()):
        errors.append(
            Error(
                _("METRONOME['METRICS_TOKEN'] must be a non-empty string, not %(value)r.")
                % {"value": token},
                hint=_(
                    "Set it to a long random secret, read from the environment (`python -c "
                    "'import secrets; print(secrets.token_urlsafe(32))'` makes one), or to None."
                ),
                id="django_metronome.E012",
            )
        )
    allowed = raw.get("METRICS_ALLOWED_IPS", [])
    if isinstance(allowed, str) or not isinstance(allowed, list | tuple):
        errors.append(
            Error(
                _("METRONOME['METRICS_ALLOWED_IPS'] must be a list, not %(value)r.")
                % {"value": allowed},
                hint=_("List addresses or networks: ['127.0.0.1', '10.0.0.0/8']."),
                id="django_metronome.E013",
            )
        )
        return errors
    for entry in allowed:
        try:
            parse_networks([entry])
        except ValueError:
            errors.append(
                Error(
                    _(
                        "METRONOME['METRICS_ALLOWED_IPS'] has %(value)r, which is not an IP "
                        "address or network."
                    )
                    % {"value": entry},
                    hint=_(
                        "Write an address ('192.0.2.7', '::1') or a network in CIDR notation "
                        "('10.0.0.0/8'); host names are not resolved."
                    ),
                    id="django_metronome.E013",
                )
            )
    return errors


def _number_errors(raw: dict[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for key, nullable in POSITIVE_NUMBERS.items():
        if key not in raw or (raw[key] is None and nullable):
            continue
        value = raw[key]
        if isinstance(value, timedelta):
            value = value.total_seconds()
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            errors.append(
                Error(
                    f"METRONOME[{key!r}] must be a positive number, not {raw[key]!r}.",
                    hint="Seconds for durations, a count for sizes"
                    + (" (or None for no limit)." if nullable else "."),
                    id="django_metronome.E005",
                )
            )
    return errors


@register()
def check_job_declarations(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Import every installed app's ``jobs`` module, as a scheduler would, and report failures."""
    if _migrating():
        return []  # a jobs module may query tables that migrate is about to create
    from importlib import import_module
    from importlib.util import find_spec

    errors: list[CheckMessage] = []
    for app_config in app_configs or apps.get_app_configs():
        name = f"{app_config.name}.jobs"
        try:
            if find_spec(name) is None:
                continue
        except (ImportError, ValueError):
            continue  # not a package: it has no jobs module
        try:
            import_module(name)
        except Exception as exc:
            errors.append(
                Error(
                    f"The jobs module {name} cannot be imported{_where(exc, name)}: "
                    f"{type(exc).__name__}: {exc}",
                    hint="Fix the declaration: a scheduler imports this module when it starts, "
                    "and would fail the same way.",
                    obj=name,
                    id="django_metronome.E010",
                )
            )
    return errors


def _where(exc: BaseException, module: str) -> str:
    """`` (line 12 of .../jobs.py)``: the deepest line of the module in the traceback."""
    path = sys.modules.get(module.rpartition(".")[0])
    package_dir = os.path.dirname(getattr(path, "__file__", None) or "") or None
    found = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if package_dir and frame.filename == os.path.join(package_dir, "jobs.py"):
            found = f" (line {frame.lineno} of {os.path.relpath(frame.filename)})"
    return found


@register(Tags.database)
def check_database(
    app_configs: Sequence[Any] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:

    alias = database_alias()
    if databases is None or alias not in databases:
        return []
    connection: Any = connections[alias]
    errors: list[CheckMessage] = []
    if _migrating():
        return []  # migrate checks just before it creates the tables these look at
    try:
        errors += _migration_errors(alias)
    except DatabaseError as exc:
        return [
            Error(
                f"Cannot read the state of database {alias!r}: {exc}",
                id="django_metronome.E008",
            )
        ]
    if connection.vendor == "mysql" and not connection.features.has_select_for_update_skip_locked:
        errors.append(
            Error(
                f"Database {alias!r} ({connection.display_name} "
                f"{'.'.join(map(str, connection.mysql_version))}) cannot skip locked rows "
                "(SELECT ... FOR UPDATE SKIP LOCKED), which scheduler processes need to share "
                "the jobs safely.",
                hint="Upgrade to MariaDB 10.6 or later, or MySQL 8.0 or later.",
                id="django_metronome.E009",
            )
        )
    if not errors:
        try:
            if connection.vendor == "sqlite":
                errors += _sqlite_warnings(alias)
            errors += _clock_warnings(alias)
        except DatabaseError:
            pass  # no tables yet: nothing runs on them either
    return errors


def _clock_warnings(alias: str) -> list[CheckMessage]:
    from .time.clock import describe_offset

    bound = conf.MAX_CLOCK_OFFSET
    live = nodes.live(alias)
    offsets = live.filter(clock_offset__isnull=False).order_by("id")
    return [
        Warning(
            f"The clock of scheduler process {node.id} is {describe_offset(offset)} the "
            f"database server's (more than MAX_CLOCK_OFFSET, {bound:g} s).",
            hint="It schedules by the database's clock, so its fires are on time; fix the "
            f"time synchronisation (NTP) of host {node.hostname!r}.",
            id="django_metronome.W003",
        )
        for node in offsets
        if (offset := node.clock_offset) is not None and abs(offset) > bound
    ]


def _migrating() -> bool:
    """Whether this process is ``manage.py migrate``, about to apply the migrations."""
    return len(sys.argv) > 1 and sys.argv[1] == "migrate"


def _migration_errors(alias: str) -> list[CheckMessage]:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[alias])
    targets = [key for key in executor.loader.graph.leaf_nodes() if key[0] == "django_metronome"]
    plan = executor.migration_plan(targets)
    if not plan:
        return []
    names = ", ".join(migration.name for migration, _ in plan)
    return [
        Warning(
            f"django_metronome's migrations {names} are not applied to database {alias!r}.",
            hint="Run: python manage.py migrate django_metronome",
            id="django_metronome.W002",
        )
    ]


#: Scheduler processes this process is about to start (see :func:`starting_scheduler`).
_starting = 0


@contextmanager
def starting_scheduler() -> Iterator[None]:
    """Count the scheduler this process is about to start in the checks run meanwhile."""
    global _starting
    _starting += 1
    try:
        yield
    finally:
        _starting -= 1


def _sqlite_warnings(alias: str) -> list[CheckMessage]:

    live = _starting + nodes.live(alias).count()
    if live <= 1:
        return []
    return [
        Warning(
            f"{live} scheduler processes share the SQLite database {alias!r}.",
            hint="It is safe, but SQLite has no row locks, so their claims take turns at "
            "the whole database; use PostgreSQL or MariaDB for several processes.",
            id="django_metronome.W001",
        )
    ]
