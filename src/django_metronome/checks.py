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
* ``django_metronome.E016``: ``METRONOME["NOTIFIERS"]`` is not a list of
  known notifiers (``"logging"``, ``"mail_admins"``, ``"webhook"``).
* ``django_metronome.E017``: the webhook notifier's settings are wrong: no
  ``WEBHOOK_URL`` (or not an http(s) URL) while ``NOTIFIERS`` has
  ``"webhook"``, or ``WEBHOOK_RETRIES`` is not a whole number, 0 or more.

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
* ``django_metronome.E020``: a stored ``django.tasks`` job's ``task_options``
  name a task backend alias that ``settings.TASKS`` does not configure.
* ``django_metronome.E021``: a stored ``django.tasks`` job's ``task_options``
  name a queue that its task backend does not list in ``QUEUES``.

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

from .conf import DEFAULTS, NOTIFIER_NAMES, conf
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
    "WATCH_INTERVAL": False,
    "TASK_ENQUEUE_ATTEMPTS": False,
    "TASK_RECONCILE_AFTER": False,
    "WEBHOOK_TIMEOUT": False,
}


@register(Tags.compatibility)
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    raw = conf.raw
    if not isinstance(raw, dict):
        return [
            Error(
                _("METRONOME must be a dict, not %(type)s.") % {"type": type(raw).__name__},
                hint=_("Write METRONOME = {'TIME_ZONE': 'Europe/Berlin', ...} in your settings."),
                id="django_metronome.E001",
            )
        ]
    errors: list[CheckMessage] = []
    for key in sorted(set(raw) - set(DEFAULTS)):
        close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
        if close:
            hint = _("Did you mean %(key)r?") % {"key": close[0]}
        else:
            hint = _("Known keys: %(keys)s.") % {"keys": ", ".join(DEFAULTS)}
        errors.append(
            Error(
                _("METRONOME has an unknown key %(key)r.") % {"key": key},
                hint=hint,
                id="django_metronome.E002",
            )
        )
    zone = conf.TIME_ZONE
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        close = close_zone_names(zone) if isinstance(zone, str) else []
        advice = _(
            "Set METRONOME['TIME_ZONE'] (or TIME_ZONE) to a name such as 'Asia/Seoul'; install "
            "the tzdata package if the system has no zone database."
        )
        if close:
            advice = _("Did you mean %(names)s? %(advice)s") % {
                "names": _(" or ").join(map(repr, close)),
                "advice": advice,
            }
        errors.append(
            Error(
                _("The default time zone of jobs, %(zone)r, is not a known IANA time zone.")
                % {"zone": zone},
                hint=advice,
                id="django_metronome.E003",
            )
        )
    database = conf.DATABASE
    if database is not None and database not in settings.DATABASES:
        errors.append(
            Error(
                _("METRONOME['DATABASE'] is %(alias)r, which is not in DATABASES.")
                % {"alias": database},
                hint=_("Use one of %(aliases)s, or remove the key.")
                % {"aliases": ", ".join(map(repr, settings.DATABASES))},
                id="django_metronome.E004",
            )
        )
    errors += _number_errors(raw)
    policy = raw.get("MISFIRE_POLICY", DEFAULTS["MISFIRE_POLICY"])
    if policy not in MISFIRE_POLICIES:
        errors.append(
            Error(
                _("METRONOME['MISFIRE_POLICY'] is %(value)r.") % {"value": policy},
                hint=_("Use one of %(values)s.")
                % {"values": ", ".join(map(repr, MISFIRE_POLICIES))},
                id="django_metronome.E006",
            )
        )
    clock = raw.get("CLOCK", DEFAULTS["CLOCK"])
    if clock not in ("database", "local"):
        errors.append(
            Error(
                _("METRONOME['CLOCK'] is %(value)r.") % {"value": clock},
                hint=_(
                    "Use 'database' (schedule by the database server's clock, the default) "
                    "or 'local' (by each process's own clock)."
                ),
                id="django_metronome.E011",
            )
        )
    errors += _alert_errors(raw)
    errors += _metrics_access_errors(raw)
    if not any(e.id == "django_metronome.E005" for e in errors):
        if conf.DEAD_AFTER <= 2 * conf.HEARTBEAT_INTERVAL:
            errors.append(
                Error(
                    _(
                        "METRONOME['DEAD_AFTER'] (%(dead)s s) must be longer than two "
                        "heartbeats (%(beats)s s), or live processes are presumed dead between "
                        "two beats."
                    )
                    % {
                        "dead": f"{conf.DEAD_AFTER:g}",
                        "beats": f"{2 * conf.HEARTBEAT_INTERVAL:g}",
                    },
                    hint=_("Raise DEAD_AFTER or lower HEARTBEAT_INTERVAL."),
                    id="django_metronome.E007",
                )
            )
    return errors


def _alert_errors(raw: dict[str, Any]) -> list[CheckMessage]:
    """The notifiers' settings (E016, E017)."""
    errors: list[CheckMessage] = []
    names = raw.get("NOTIFIERS", DEFAULTS["NOTIFIERS"])
    if not isinstance(names, list | tuple) or any(n not in NOTIFIER_NAMES for n in names):
        errors.append(
            Error(
                _("METRONOME['NOTIFIERS'] is %(value)r.") % {"value": names},
                hint=_("Use a list of any of %(names)s, such as ['logging', 'webhook'].")
                % {"names": ", ".join(map(repr, NOTIFIER_NAMES))},
                id="django_metronome.E016",
            )
        )
        names = []
    url = raw.get("WEBHOOK_URL")
    if "webhook" in names and not url:
        errors.append(
            Error(
                _("METRONOME['NOTIFIERS'] has 'webhook' but METRONOME['WEBHOOK_URL'] is not set."),
                hint=_("Set WEBHOOK_URL to the https:// address that receives the POSTs."),
                id="django_metronome.E017",
            )
        )
    elif url and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        errors.append(
            Error(
                _("METRONOME['WEBHOOK_URL'] is %(value)r, not an http(s) URL.") % {"value": url},
                hint=_("Write the full address, such as 'https://alerts.example.com/metronome'."),
                id="django_metronome.E017",
            )
        )
    retries = raw.get("WEBHOOK_RETRIES", DEFAULTS["WEBHOOK_RETRIES"])
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        errors.append(
            Error(
                _("METRONOME['WEBHOOK_RETRIES'] must be a whole number, 0 or more, not %(value)r.")
                % {"value": retries},
                hint=_("It counts the tries after the first: 3 tries a failed POST 4 times."),
                id="django_metronome.E017",
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
                    _("METRONOME[%(key)r] must be a positive number, not %(value)r.")
                    % {"key": key, "value": raw[key]},
                    hint=_("Seconds for durations, a count for sizes (or None for no limit).")
                    if nullable
                    else _("Seconds for durations, a count for sizes."),
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
                    _("The jobs module %(module)s cannot be imported%(where)s: %(error)s")
                    % {
                        "module": name,
                        "where": _where(exc, name),
                        "error": f"{type(exc).__name__}: {exc}",
                    },
                    hint=_(
                        "Fix the declaration: a scheduler imports this module when it starts, "
                        "and would fail the same way."
                    ),
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
            found = _(" (line %(line)s of %(file)s)") % {
                "line": frame.lineno,
                "file": os.path.relpath(frame.filename),
            }
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
                _("Cannot read the state of database %(alias)r: %(error)s")
                % {"alias": alias, "error": exc},
                id="django_metronome.E008",
            )
        ]
    if connection.vendor == "mysql" and not connection.features.has_select_for_update_skip_locked:
        errors.append(
            Error(
                _(
                    "Database %(alias)r (%(server)s) cannot skip locked rows (SELECT ... FOR "
                    "UPDATE SKIP LOCKED), which scheduler processes need to share the jobs safely."
                )
                % {
                    "alias": alias,
                    "server": f"{connection.display_name} "
                    f"{'.'.join(map(str, connection.mysql_version))}",
                },
                hint=_("Upgrade to MariaDB 10.6 or later, or MySQL 8.0 or later."),
                id="django_metronome.E009",
            )
        )
    if not errors:
        try:
            if connection.vendor == "sqlite":
                errors += _sqlite_warnings(alias)
            errors += _clock_warnings(alias)
            errors += _task_errors(alias)
        except DatabaseError:
            pass  # no tables yet: nothing runs on them either
    return errors


def _task_errors(alias: str) -> list[CheckMessage]:
    """Stored django.tasks jobs whose backend or queue settings.TASKS lost (docs/tasks.md)."""
    from .store.taskfires import unknown_targets

    errors: list[CheckMessage] = []
    hint = _(
        "Configure it in settings.TASKS, or replace the job with task_options that name "
        "a configured backend and queue."
    )
    for job_id, backend, queue in unknown_targets(alias):
        if not queue:
            message = _(
                "Job %(job)r enqueues its task on the task backend %(backend)r, which "
                "settings.TASKS does not configure."
            )
            errors.append(
                Error(
                    message % {"job": job_id, "backend": backend},
                    hint=hint,
                    id="django_metronome.E020",
                )
            )
        else:
            message = _(
                "Job %(job)r enqueues its task on the queue %(queue)r, which the task "
                "backend %(backend)r does not list in its QUEUES."
            )
            errors.append(
                Error(
                    message % {"job": job_id, "queue": queue, "backend": backend},
                    hint=hint,
                    id="django_metronome.E021",
                )
            )
    return errors


def _clock_warnings(alias: str) -> list[CheckMessage]:
    bound = conf.MAX_CLOCK_OFFSET
    live = nodes.live(alias)
    offsets = live.filter(clock_offset__isnull=False).order_by("id")
    return [
        Warning(
            (
                _(
                    "The clock of scheduler process %(node)s is %(seconds)s s behind the "
                    "database server's (more than MAX_CLOCK_OFFSET, %(bound)s s)."
                )
                if offset > 0
                else _(
                    "The clock of scheduler process %(node)s is %(seconds)s s ahead of the "
                    "database server's (more than MAX_CLOCK_OFFSET, %(bound)s s)."
                )
            )
            % {"node": node.id, "seconds": f"{abs(offset):.3f}", "bound": f"{bound:g}"},
            hint=_(
                "It schedules by the database's clock, so its fires are on time; fix the "
                "time synchronisation (NTP) of host %(host)r."
            )
            % {"host": node.hostname},
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
    names = ", ".join(migration.name for migration, _backwards in plan)
    return [
        Warning(
            _("django_metronome's migrations %(names)s are not applied to database %(alias)r.")
            % {"names": names, "alias": alias},
            hint=_("Run: python manage.py migrate django_metronome"),
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
            _("%(count)s scheduler processes share the SQLite database %(alias)r.")
            % {"count": live, "alias": alias},
            hint=_(
                "It is safe, but SQLite has no row locks, so their claims take turns at "
                "the whole database; use PostgreSQL or MariaDB for several processes."
            ),
            id="django_metronome.W001",
        )
    ]
