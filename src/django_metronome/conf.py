"""
Settings, read in one place.

Everything lives in one dict, ``settings.METRONOME``; each key is read lazily,
so ``override_settings`` works in tests. django-apscheduler's two settings,
``APSCHEDULER_DATETIME_FORMAT`` and ``APSCHEDULER_RUN_NOW_TIMEOUT``, keep their
meaning and are read here too.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

#: Every key ``METRONOME`` accepts, with its default.
DEFAULTS: dict[str, Any] = {
    # Database alias of the job tables; None asks Django's database routers.
    "DATABASE": None,
    # Default IANA time zone of jobs; None means settings.TIME_ZONE.
    "TIME_ZONE": None,
    # Seconds between two looks at the change marker (SQLite, MariaDB/MySQL, and
    # PostgreSQL while it cannot LISTEN): a change made by another process reaches
    # every scheduler within this. On PostgreSQL a notification brings it at once.
    "POLL_INTERVAL": 1.5,
    # PostgreSQL: learn of changes by LISTEN/NOTIFY. False (a connection pooler in
    # transaction mode, such as PgBouncer's, does not deliver notifications) makes
    # the schedulers look at the job table every POLL_INTERVAL instead.
    "LISTEN": True,
    # Seconds after which an idle scheduler reads the job table again whatever the
    # notifications and the change marker said: the bound on seeing a change that
    # announced nothing (a disabled trigger, a notification lost with its connection).
    "RESCAN_INTERVAL": 60.0,
    # Most due jobs claimed in one transaction.
    "BATCH_SIZE": 500,
    # Threads of the default executor: how many jobs one process runs at once.
    "WORKERS": 10,
    # Seconds between heartbeats of a scheduler process (at most a third of DEAD_AFTER
    # leaves room for two late heartbeats).
    "HEARTBEAT_INTERVAL": 10.0,
    # Seconds without a heartbeat after which a process counts as dead: its running
    # fires are marked interrupted.
    "DEAD_AFTER": 30.0,
    # Seconds a stopping scheduler waits for running jobs before it gives up on them.
    "SHUTDOWN_TIMEOUT": 30.0,
    # What happens to fires missed by more than their grace time: "once", "all", "skip".
    "MISFIRE_POLICY": "once",
    # With the "all" policy, at most this many missed fires of a job are run.
    "MAX_CATCH_UP": 100,
    # Run history kept: at most this many seconds old (None: no age limit) ...
    "HISTORY_MAX_AGE": None,
    # ... and at most this many runs per job (None: no count limit).
    "HISTORY_MAX_PER_JOB": None,
    # Seconds between two rounds of pruning the history, by whichever process.
    "PRUNE_INTERVAL": 300.0,
    # Run the default scheduler in web server processes (see django_metronome.autostart).
    "AUTOSTART": False,
    # Modules (besides installed apps and the project's package) whose functions
    # jobs added at run time may call; see django_metronome.allowlist.
    "ALLOWED_MODULES": [],
    # Whose clock decides when a fire is due: "database" (the database server's,
    # measured by each scheduler process at every heartbeat; see
    # django_metronome.clock) or "local" (each process's own).
    "CLOCK": "database",
    # Seconds of clock offset between a scheduler process and the database beyond
    # which it is reported (log, dashboard, metronome health, system check W003).
    "MAX_CLOCK_OFFSET": 1.0,
    # Who may read the metrics view (django_metronome.observe.views.metrics_view),
    # besides logged-in staff users: the bearer of this token (None: nobody) ...
    "METRICS_TOKEN": None,
    # ... and clients at these addresses or networks ("10.0.0.0/8"), by REMOTE_ADDR.
    "METRICS_ALLOWED_IPS": [],
    # Shortest interval an interval trigger may have, in seconds: each fire writes a
    # row to the run history, so a shorter one is refused when the job is added.
    "MIN_INTERVAL": 1.0,
    # Management commands, besides runserver and runscheduler, in which a scheduler
    # started while Django loads the apps (AppConfig.ready()) does start.
    "START_IN_COMMANDS": [],
    # Seconds between two evaluations of the expectations (see django_metronome.alerts),
    # by exactly one process per interval, whichever takes the turn first.
    "WATCH_INTERVAL": 60.0,
    # Whether "no scheduler process alive" is an incident (raised by `manage.py
    # metronome watch`, resolved by the first scheduler that evaluates again).
    "EXPECT_SCHEDULER": True,
    # Who hears of incidents opened and resolved: any of "logging", "mail_admins",
    # "webhook". Sent from a background thread, never from the scheduler's loop.
    "NOTIFIERS": ["logging"],
    # The webhook notifier: the URL a JSON document is POSTed to, the secret its
    # HMAC-SHA256 signature header is made with (None: unsigned), the seconds one
    # try may take and how many more tries a failed POST gets (with backoff).
    "WEBHOOK_URL": None,
    "WEBHOOK_SECRET": None,
    "WEBHOOK_TIMEOUT": 5.0,
    "WEBHOOK_RETRIES": 3,
    # Sentry cron check-ins for fires (when sentry-sdk is installed and initialised):
    # False, True (every job) or a list of job ids.
    "SENTRY_CRONS": False,
    # OpenTelemetry: one span per fire when opentelemetry-api is installed.
    "TRACING": True,
    # django.tasks jobs (docs/tasks.md): how many times a fire's enqueue is tried
    # (a broker down) before the fire is failed with the error.
    "TASK_ENQUEUE_ATTEMPTS": 3,
    # Fires still enqueued or running this long are looked up on their backend
    # (get_result) by the schedulers' heart, in case their signal never came.
    "TASK_RECONCILE_AFTER": 300.0,
}


#: The notifiers NOTIFIERS may name (django_metronome.alerts.notifiers).
NOTIFIER_NAMES = ("logging", "mail_admins", "webhook")

_MISSING = object()


class Settings:
    """
    Typed, lazy access to ``settings.METRONOME`` and the legacy settings.

    The dict is looked up once and kept until Django says a setting changed
    (``override_settings`` and pytest-django's ``settings`` fixture do): the
    scheduler reads these keys for every fire it plans.
    """

    def __init__(self) -> None:
        self._raw: Any = _MISSING

    def reload(self, **kwargs: Any) -> None:
        """Forget the cached dict (connected to Django's ``setting_changed``)."""
        self._raw = _MISSING

    @property
    def raw(self) -> Any:
        raw = self._raw
        if raw is _MISSING:
            raw = self._raw = getattr(settings, "METRONOME", {})
        return raw

    def _get(self, key: str) -> Any:
        raw = self.raw
        if isinstance(raw, dict) and key in raw:
            return raw[key]
        return DEFAULTS[key]

    @property
    def DATABASE(self) -> str | None:
        return self._get("DATABASE")

    @property
    def TIME_ZONE(self) -> str:
        return self._get("TIME_ZONE") or settings.TIME_ZONE or "UTC"

    @property
    def POLL_INTERVAL(self) -> float:
        return float(self._get("POLL_INTERVAL"))

    @property
    def LISTEN(self) -> bool:
        return bool(self._get("LISTEN"))

    @property
    def RESCAN_INTERVAL(self) -> float:
        return float(self._get("RESCAN_INTERVAL"))

    @property
    def BATCH_SIZE(self) -> int:
        return int(self._get("BATCH_SIZE"))

    @property
    def WORKERS(self) -> int:
        return int(self._get("WORKERS"))

    @property
    def HEARTBEAT_INTERVAL(self) -> float:
        return float(self._get("HEARTBEAT_INTERVAL"))

    @property
    def DEAD_AFTER(self) -> float:
        return float(self._get("DEAD_AFTER"))

    @property
    def SHUTDOWN_TIMEOUT(self) -> float:
        return float(self._get("SHUTDOWN_TIMEOUT"))

    @property
    def MISFIRE_POLICY(self) -> str:
        return str(self._get("MISFIRE_POLICY"))

    @property
    def MAX_CATCH_UP(self) -> int:
        return int(self._get("MAX_CATCH_UP"))

    @property
    def HISTORY_MAX_AGE(self) -> float | None:
        value = self._get("HISTORY_MAX_AGE")
        return None if value is None else float(value)

    @property
    def HISTORY_MAX_PER_JOB(self) -> int | None:
        value = self._get("HISTORY_MAX_PER_JOB")
        return None if value is None else int(value)

    @property
    def PRUNE_INTERVAL(self) -> float:
        return float(self._get("PRUNE_INTERVAL"))

    @property
    def AUTOSTART(self) -> bool:
        return bool(self._get("AUTOSTART"))

    @property
    def ALLOWED_MODULES(self) -> list[str]:
        return list(self._get("ALLOWED_MODULES") or [])

    @property
    def MIN_INTERVAL(self) -> float:
        return float(self._get("MIN_INTERVAL"))

    @property
    def START_IN_COMMANDS(self) -> list[str]:
        return list(self._get("START_IN_COMMANDS") or [])

    @property
    def METRICS_TOKEN(self) -> str | None:
        return self._get("METRICS_TOKEN") or None

    @property
    def METRICS_ALLOWED_IPS(self) -> list[str]:
        return list(self._get("METRICS_ALLOWED_IPS") or [])

    @property
    def CLOCK(self) -> str:
        return str(self._get("CLOCK"))

    @property
    def MAX_CLOCK_OFFSET(self) -> float:
        return float(self._get("MAX_CLOCK_OFFSET"))

    @property
    def WATCH_INTERVAL(self) -> float:
        return float(self._get("WATCH_INTERVAL"))

    @property
    def EXPECT_SCHEDULER(self) -> bool:
        return bool(self._get("EXPECT_SCHEDULER"))

    @property
    def NOTIFIERS(self) -> list[str]:
        return list(self._get("NOTIFIERS") or [])

    @property
    def WEBHOOK_URL(self) -> str | None:
        return self._get("WEBHOOK_URL") or None

    @property
    def WEBHOOK_SECRET(self) -> str | None:
        return self._get("WEBHOOK_SECRET") or None

    @property
    def WEBHOOK_TIMEOUT(self) -> float:
        return float(self._get("WEBHOOK_TIMEOUT"))

    @property
    def WEBHOOK_RETRIES(self) -> int:
        return int(self._get("WEBHOOK_RETRIES"))

    @property
    def SENTRY_CRONS(self) -> bool | list[str]:
        value = self._get("SENTRY_CRONS")
        return value if isinstance(value, bool) else list(value or [])

    @property
    def TRACING(self) -> bool:
        return bool(self._get("TRACING"))

    @property
    def TASK_ENQUEUE_ATTEMPTS(self) -> int:
        return int(self._get("TASK_ENQUEUE_ATTEMPTS"))

    @property
    def TASK_RECONCILE_AFTER(self) -> float:
        return float(self._get("TASK_RECONCILE_AFTER"))

    @property
    def DATETIME_FORMAT(self) -> str:
        # django-apscheduler's default, kept for compatibility.
        return getattr(settings, "APSCHEDULER_DATETIME_FORMAT", "N j, Y, f:s a")

    @property
    def RUN_NOW_TIMEOUT(self) -> float:
        return getattr(settings, "APSCHEDULER_RUN_NOW_TIMEOUT", 15)


conf = Settings()
setting_changed.connect(conf.reload, dispatch_uid="django_metronome.conf")
