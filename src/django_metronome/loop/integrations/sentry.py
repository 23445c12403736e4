"""
Sentry cron check-ins: each fire checks in (in progress), then ok or error.

Only when sentry-sdk is installed, its client initialised (``sentry_sdk.init``)
and ``SENTRY_CRONS`` is True (every job) or lists the job's id. The monitor's
slug is the job id, slugified and cut to 50 characters: create the monitor in
Sentry with that slug (no monitor configuration is sent).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from django.utils.text import slugify

from ...store.claims import Fire

#: Sentry's longest monitor slug.
SLUG_LENGTH = 50


def monitor_slug(job_id: str) -> str:
    """The Sentry monitor of a job: its id as a slug (``Nightly report`` -> ``nightly-report``)."""
    return (slugify(job_id) or "job")[:SLUG_LENGTH].strip("-") or "job"


class SentryCrons:
    """Check-ins for the jobs chosen (None: every job)."""

    def __init__(self, jobs: frozenset[str] | None) -> None:
        from sentry_sdk.crons import capture_checkin
        from sentry_sdk.crons.consts import MonitorStatus

        self.jobs = jobs
        self._capture = capture_checkin
        self._status = MonitorStatus

    def begin(self, job_id: str, fire: Fire, started: datetime) -> Any:
        if self.jobs is not None and job_id not in self.jobs:
            return None
        slug = monitor_slug(job_id)
        check_in = self._capture(monitor_slug=slug, status=self._status.IN_PROGRESS)
        return (slug, check_in, time.monotonic())

    def end(self, token: Any, exc: BaseException | None, finished: datetime) -> None:
        slug, check_in, began = token
        self._capture(
            monitor_slug=slug,
            check_in_id=check_in,
            status=self._status.OK if exc is None else self._status.ERROR,
            duration=time.monotonic() - began,
        )


def crons(setting: bool | list[str]) -> SentryCrons | None:
    """The check-ins ``SENTRY_CRONS`` asks for, if Sentry is installed and initialised."""
    try:
        import sentry_sdk
    except ImportError:
        return None
    client = sentry_sdk.get_client()
    if not client.is_active() or client.transport is None:
        return None  # not initialised, or without a DSN: nothing would be sent
    return SentryCrons(None if setting is True else frozenset(setting or ()))
