"""
Expectations and alerts: tell people when a job did not run.

* :func:`expect` declares a job's expectation in code (a successful run at
  least every N, at most K failures in a row), :func:`store_expectation`
  stores one at once; one process evaluates the expectations every
  ``WATCH_INTERVAL`` (see :mod:`django_metronome.loop.watch`), and
  :func:`evaluate` does so at once (``manage.py metronome watch``, a test).
* An incident opens once per broken expectation and resolves when it
  clears; each sends ``incident_opened`` / ``incident_resolved``
  (:mod:`django_metronome.signals`), once.
* The built-in notifiers (:mod:`.notifiers`) listen to those two signals:
  logging, ``mail_admins`` and a signed webhook, chosen by ``NOTIFIERS``.

See docs/alerts.md.
"""

from __future__ import annotations

from datetime import timedelta

from ..loop.watch import evaluate_now, send
from ..store import incidents
from ..store.db import database_alias, utcnow
from ..store.incidents import Changes
from ..store.models import Expectation

__all__ = ["evaluate", "expect", "store_expectation"]


def expect(
    job_id: str,
    *,
    every: timedelta | float | None = None,
    max_failures: int | None = None,
) -> None:
    """
    Declare, in code, that the job ``job_id`` is expected to succeed at least
    ``every`` (a timedelta, or seconds) and/or to fail no more than
    ``max_failures`` times in a row; with neither, that it has no expectation.

    As a job declared in code, it writes nothing when called (an app's
    ``jobs.py`` is imported by ``manage.py check`` and ``migrate`` too): each
    scheduler process that declares it stores it at its first heartbeat (or
    within a heartbeat, if it is running already). Bad values are refused
    here, with what to write instead. To store one at once, from a shell or a
    data migration, use :func:`store_expectation`.
    """
    incidents.declared_expectations.declare(job_id, every, max_failures)


def store_expectation(
    job_id: str,
    *,
    every: timedelta | float | None = None,
    max_failures: int | None = None,
    database: str | None = None,
) -> Expectation | None:
    """
    :func:`expect`, stored in the database now (whether the job is stored yet or
    not); return the stored expectation, None when forgotten. The first
    deadline of ``every`` counts from now (from when it was set, if unchanged).
    """
    return incidents.set_expectation(
        database_alias(database), job_id, utcnow(), every=every, max_failures=max_failures
    )


def evaluate(database: str | None = None) -> Changes:
    """
    Evaluate the expectations now, whoever's turn it is, and notify here.

    For ``manage.py metronome watch`` and tests: the signals are sent (and the
    notifiers run) in the calling thread before this returns. Each incident is
    still opened and resolved once, however many processes evaluate.
    """
    changes = evaluate_now(database_alias(database))
    send(changes)
    return changes
