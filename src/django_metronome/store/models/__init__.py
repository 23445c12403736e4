"""
The three tables: jobs, the run ledger, and the scheduler processes.

Models own their state transitions: a job is paused, resumed, quarantined and
ended through its verbs; the ledger's status moves only through
:mod:`django_metronome.store.ledger` (and the claim in
:mod:`django_metronome.store.claims`). ``django_metronome.models`` re-exports
everything here, as Django expects of an app.
"""

from __future__ import annotations

from .audit import ChangeAction, ChangeOrigin, JobChange
from .change import ChangeMarker
from .execution import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    OPEN_STATUSES,
    DjangoJobExecution,
    ExecutionQuerySet,
    ExecutionStatus,
    format_exception,
    format_traceback,
)
from .expectation import Expectation
from .fields import AwareDateTimeField, JobIdField
from .incident import Incident, IncidentKind
from .job import DjangoJob, JobManager, JobQuerySet, JobSource, LiveJobManager
from .node import SchedulerNode, SchedulerNodeQuerySet
from .watch import WatchTurn

__all__ = [
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "AwareDateTimeField",
    "ChangeAction",
    "ChangeMarker",
    "ChangeOrigin",
    "DjangoJob",
    "DjangoJobExecution",
    "ExecutionQuerySet",
    "ExecutionStatus",
    "Expectation",
    "Incident",
    "IncidentKind",
    "JobChange",
    "JobIdField",
    "JobManager",
    "JobQuerySet",
    "JobSource",
    "LiveJobManager",
    "SchedulerNode",
    "SchedulerNodeQuerySet",
    "WatchTurn",
    "format_exception",
    "format_traceback",
]
