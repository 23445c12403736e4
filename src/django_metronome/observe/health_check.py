"""
django-metronome's checks for django-health-check (its version 4 ``HealthCheck`` API).

List them in the checks of django-health-check's view::

    from health_check.views import HealthCheckView
    from django_metronome.observe.health_check import (
        NothingOverdue, NothingQuarantined, SchedulerAlive,
    )

    path("health/", HealthCheckView.as_view(checks=[
        "health_check.checks.Database",
        SchedulerAlive,
        (NothingOverdue, {"max_overdue": 300}),
        NothingQuarantined,
    ]))

Each asks :func:`django_metronome.observe.health.health_report`, the answer
``manage.py metronome health`` gives too, and fails with a sentence that names
no host, process or job (a health page is often public): the command, the
admin's dashboard and the metrics name them.
"""

from __future__ import annotations

import dataclasses
import socket
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

try:
    from health_check.base import HealthCheck
    from health_check.exceptions import ServiceUnavailable
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError(
        "django-metronome's health checks plug into django-health-check 4: install it with "
        "`pip install django-metronome[health-check]`."
    ) from exc

from ..store.db import database_alias, utcnow
from ..time.text import duration
from .health import HealthReport, health_report

__all__ = ["NothingOverdue", "NothingQuarantined", "SchedulerAlive"]


@dataclasses.dataclass
class _MetronomeCheck(HealthCheck):
    #: The database alias of the job tables (default: ``METRONOME["DATABASE"]`` or the routers').
    database: str | None = None

    async def run(self) -> None:
        # Thread-sensitive: the ORM runs where Django manages the request's connection.
        report = await sync_to_async(self._report)()
        self.judge(report)

    def _report(self) -> HealthReport:
        return health_report(database_alias(self.database), utcnow(), **self.thresholds())

    def thresholds(self) -> dict[str, Any]:
        return {}

    def judge(self, report: HealthReport) -> None:
        raise NotImplementedError


@dataclasses.dataclass
class SchedulerAlive(_MetronomeCheck):
    """
    At least one scheduler process (on this host, with ``this_host``) has
    heart-beaten within ``max_heartbeat_age`` seconds (default: ``DEAD_AFTER``).
    """

    max_heartbeat_age: float | None = None
    this_host: bool = False

    def thresholds(self) -> dict[str, Any]:
        return {
            "max_heartbeat_age": self.max_heartbeat_age,
            "hostname": socket.gethostname() if self.this_host else None,
        }

    def judge(self, report: HealthReport) -> None:
        if not report.live_nodes:
            raise ServiceUnavailable(
                _(
                    "No scheduler process has heart-beaten in the last %(age)s: start one "
                    "with `manage.py runscheduler`."
                )
                % {"age": duration(report.max_heartbeat_age, words=translation)}
            )


@dataclasses.dataclass
class NothingOverdue(_MetronomeCheck):
    """
    No job that should run (not paused, quarantined or orphaned) is overdue by
    more than ``max_overdue`` seconds.
    """

    max_overdue: float = 60.0

    def thresholds(self) -> dict[str, Any]:
        return {"max_overdue": self.max_overdue}

    def judge(self, report: HealthReport) -> None:
        if report.overdue_count:
            raise ServiceUnavailable(
                ngettext(
                    "%(count)d job is overdue by more than %(allowed)s.",
                    "%(count)d jobs are overdue by more than %(allowed)s.",
                    report.overdue_count,
                )
                % {
                    "count": report.overdue_count,
                    "allowed": duration(report.max_overdue, words=translation),
                }
            )


@dataclasses.dataclass
class NothingQuarantined(_MetronomeCheck):
    """No job is quarantined (a row that cannot be loaded, or a function that is refused)."""

    def judge(self, report: HealthReport) -> None:
        if report.quarantined_count:
            raise ServiceUnavailable(
                ngettext(
                    "%(count)d job is quarantined: it does not run until it is fixed.",
                    "%(count)d jobs are quarantined: they do not run until they are fixed.",
                    report.quarantined_count,
                )
                % {"count": report.quarantined_count}
            )
