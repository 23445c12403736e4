"""
Expectations and alerts: tell people when a job did not run.

* :func:`expect` sets a job's expectation (a successful run at least every N,
  at most K failures in a row); one process evaluates the expectations every
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

__all__ = ["evaluate", "expect"]


def expect(
    job_id: str,
    *,
    every: timedelta | float | None = None,
    max_failures: int | None = None,
    database: str | None = None,
) -> Expectation | None:
    """
    Expect the job ``job_id`` to succeed at least ``every`` (a timedelta, or
    seconds) and/or to fail no more than ``max_failures`` times in a row.

    Stored in the database at once, whether the job is stored yet or not (a
    job declared in code is stored when a scheduler starts), and kept when the
    job is declared again. The first deadline of ``every`` counts from now.
    With neither argument the job's expectation is forgotten (its open
    incidents resolve at the next evaluation). Bad values are refused here,
    with what to write instead.
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
