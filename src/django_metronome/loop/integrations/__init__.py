"""
Optional integrations around each fire: Sentry cron check-ins, OpenTelemetry spans.

Each lives in its own module and imports its package only when asked
(:func:`active`): with sentry-sdk or opentelemetry-api absent, nothing here
imports them and a fire costs one attribute look more. A scheduler asks once,
at its first fire, which are active (``SENTRY_CRONS`` and an initialised
Sentry client; ``TRACING`` and an importable OpenTelemetry API).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

from ...conf import conf
from ...store.claims import ClaimBatch, Fire

logger = logging.getLogger("django_metronome.scheduler")


class FireWatcher(Protocol):
    """Told when a fire begins (in the job's thread) and how it ended."""

    def begin(self, job_id: str, fire: Fire, started: datetime) -> Any: ...

    def end(self, token: Any, exc: BaseException | None, finished: datetime) -> None: ...


def active() -> tuple[FireWatcher, ...]:
    """The integrations this process has, in the order they wrap a fire."""
    watchers: list[FireWatcher] = []
    if conf.SENTRY_CRONS:
        from . import sentry

        crons = sentry.crons(conf.SENTRY_CRONS)
        if crons is not None:
            watchers.append(crons)
    if conf.TRACING:
        from . import otel

        tracing = otel.tracing()
        if tracing is not None:
            watchers.append(tracing)
    return tuple(watchers)


def claimed_all(watchers: tuple[FireWatcher, ...], node: str, batch: ClaimBatch) -> None:
    """Tell the integrations that care (tracing) of a claim, after its commit."""
    for watcher in watchers:
        claimed = getattr(watcher, "claimed", None)
        if claimed is None:
            continue
        try:
            claimed(node, batch)
        except Exception:
            logger.exception("The %s integration failed at a claim.", type(watcher).__name__)


def begin_all(
    watchers: tuple[FireWatcher, ...], job_id: str, fire: Fire, started: datetime
) -> list[Any]:
    tokens = []
    for watcher in watchers:
        try:
            tokens.append(watcher.begin(job_id, fire, started))
        except Exception:
            logger.exception("The %s integration failed at a fire's start.", type(watcher).__name__)
            tokens.append(None)
    return tokens


def end_all(
    watchers: tuple[FireWatcher, ...],
    tokens: list[Any],
    exc: BaseException | None,
    finished: datetime,
) -> None:
    for watcher, token in zip(reversed(watchers), reversed(tokens), strict=True):
        if token is None:
            continue
        try:
            watcher.end(token, exc, finished)
        except Exception:
            logger.exception("The %s integration failed at a fire's end.", type(watcher).__name__)
