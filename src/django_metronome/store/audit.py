"""
The audit trail's writer: :func:`record_change`, and who is acting (:func:`acting`).

Every change to a job is one :class:`~.models.JobChange` row: when, what
(``ChangeAction``), who, from where (``ChangeOrigin``), and the values before
and after, only those that changed. Whoever changes a job says who acts
around the change::

    with acting(ChangeOrigin.ADMIN, request.user.get_username()):
        job.pause(note="Supplier outage")

Without it, a change is the code's, by this process (``user@host:pid``).
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from .db import database_alias, from_db, utcnow
from .models import ChangeAction, ChangeOrigin, JobChange

__all__ = [
    "acting",
    "current_actor",
    "is_acting",
    "job_history",
    "os_user",
    "process_actor",
    "record_change",
    "record_changes",
    "record_database_edit",
    "snapshot",
]

_acting: ContextVar[tuple[str, str] | None] = ContextVar("metronome_acting", default=None)

#: The columns of a job's row a change is described by (its state's keys come too).
SNAPSHOT_COLUMNS = ("name", "source", "func_ref", "state", "next_run_time", "paused_until")


def os_user() -> str:
    """The operating system's user running this process (the command line's "who")."""
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def process_actor() -> str:
    """This process, as the audit trail names it: ``user@host:pid``."""
    return f"{os_user()}@{socket.gethostname()}:{os.getpid()}"


@contextmanager
def acting(origin: str, actor: str = "") -> Iterator[None]:
    """Changes made inside come from ``origin``, by ``actor`` (this thread or task only)."""
    token = _acting.set((origin, actor))
    try:
        yield
    finally:
        _acting.reset(token)


def is_acting() -> bool:
    """Whether someone said who acts (:func:`acting`), here and now."""
    return _acting.get() is not None


def current_actor() -> tuple[str, str]:
    """(origin, actor) of the changes made now: :func:`acting`'s, or the code's."""
    found = _acting.get()
    return found if found is not None else (ChangeOrigin.CODE.value, process_actor())


def snapshot(row: Mapping[str, Any]) -> dict[str, Any]:
    """
    A job row as the audit trail keeps it: flat, JSON-ready.

    The state's keys (trigger, args, overlap, ...) sit beside the row's own
    (name, func_ref, next_run_time, ...), so that a change shows only the key
    that moved.
    """
    flat: dict[str, Any] = {}
    for key in SNAPSHOT_COLUMNS:
        if key not in row:
            continue
        value = row[key]
        if key == "state" and isinstance(value, Mapping):
            flat.update({k: v for k, v in value.items() if k != "version"})
        elif isinstance(value, datetime):
            flat[key] = from_db(value).isoformat()  # type: ignore[union-attr]
        else:
            flat[key] = value
    return flat


def _changed(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Only the keys whose values differ (all of them when one side is missing)."""
    if before is None or after is None:
        return (dict(before) if before else None), (dict(after) if after else None)
    keys = [key for key in {**before, **after} if before.get(key) != after.get(key)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def record_change(
    job_id: str,
    action: str,
    *,
    actor: str | None = None,
    origin: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    note: str = "",
    job_name: str = "",
    using: str | None = None,
    at: datetime | None = None,
) -> JobChange | None:
    """
    Record one change to a job in the audit trail; return its row.

    ``action`` is a :class:`~.models.ChangeAction` (``"paused"``, ...);
    ``origin`` and ``actor`` default to :func:`current_actor`'s. ``before``
    and ``after`` are the job's values (:func:`snapshot` of its row, or any
    JSON-ready mapping): only the keys that differ are kept, and a
    modification that changed nothing is not recorded (None is returned).
    """
    ChangeAction(action)  # a clear ValueError for an unknown action
    found_origin, found_actor = current_actor()
    origin = ChangeOrigin(origin or found_origin).value
    actor = found_actor if actor is None else actor
    kept_before, kept_after = _changed(before, after)
    if (
        before is not None
        and after is not None
        and not kept_after
        and action in (ChangeAction.MODIFIED, ChangeAction.DECLARED)
    ):
        return None
    return JobChange.objects.using(database_alias(using)).create(
        job_id=job_id,
        job_name=job_name[:255],
        at=at or utcnow(),
        action=action,
        origin=origin,
        actor=actor[:255],
        before=kept_before,
        after=kept_after,
        note=note,
    )


def record_changes(
    jobs: Iterable[tuple[str, str]],
    action: str,
    *,
    note: str = "",
    after: Mapping[str, Any] | None = None,
    using: str | None = None,
) -> None:
    """The same change to several jobs, given as (id, name) pairs: one insert."""
    ChangeAction(action)
    origin, actor = current_actor()
    now = utcnow()
    JobChange.objects.using(database_alias(using)).bulk_create(
        [
            JobChange(
                job_id=job_id,
                job_name=name[:255],
                at=now,
                action=action,
                origin=origin,
                actor=actor[:255],
                after=dict(after) if after else None,
                note=note,
            )
            for job_id, name in jobs
        ]
    )


#: Moved by the schedulers themselves at every fire, unrecorded: never an edit.
_MOVED_BY_SCHEDULERS = frozenset({"next_run_time"})

#: How many of a job's latest changes are read to know its last recorded values.
EDIT_LOOKBACK = 100


def record_database_edit(
    job_id: str,
    stored: Mapping[str, Any],
    *,
    job_name: str = "",
    using: str | None = None,
    at: datetime | None = None,
) -> JobChange | None:
    """
    Record an edit made in the database directly, if the row says what its trail does not.

    ``stored`` is the :func:`snapshot` of the job's row as it is now. Each
    key's last recorded value (from the newest change whose ``after`` has
    it) is compared with it: a key that differs was changed outside every
    recorded verb (SQL, a Django shell, a restored backup). That change is
    recorded, origin ``database``, with who unknown; None if there was none.
    """
    last: dict[str, Any] = {}
    for after in job_history(job_id, using=using, limit=EDIT_LOOKBACK).values_list(
        "after", flat=True
    ):
        for key, value in (after or {}).items():
            last.setdefault(key, value)
    edited = [
        key
        for key, value in last.items()
        if key in stored and key not in _MOVED_BY_SCHEDULERS and stored[key] != value
    ]
    if not edited:
        return None
    return record_change(
        job_id,
        ChangeAction.MODIFIED,
        origin=ChangeOrigin.DATABASE,
        actor="",
        before={key: last[key] for key in edited},
        after={key: stored[key] for key in edited},
        note="Changed in the database directly (not through django-metronome), seen when "
        "the job was declared again.",
        job_name=job_name,
        using=using,
        at=at,
    )


def job_history(job_id: str, *, using: str | None = None, limit: int | None = None) -> Any:
    """A job's changes, newest first (a queryset)."""
    rows = JobChange.objects.using(database_alias(using)).filter(job_id=job_id)
    rows = rows.order_by("-at", "-id")
    return rows[:limit] if limit is not None else rows
