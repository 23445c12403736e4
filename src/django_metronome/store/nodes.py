"""
Scheduler processes, their heartbeats, and what happens when one dies.

Each scheduler process writes a ``SchedulerNode`` row when it starts and
refreshes its ``last_heartbeat`` every ``HEARTBEAT_INTERVAL`` seconds, with
the offset of the database's clock against its own (see
:mod:`django_metronome.clock`). A process whose heartbeat is older than
``DEAD_AFTER`` is presumed dead, and any live process releases what it held:

* its *started* fires become interrupted (they are not run again: a fire that
  may have begun is dispatched at most once);
* its *claimed* fires, which it never started, are handed back: they become
  pending, and any process that can run the job runs them (once: the ledger
  row is the same), however late;
* its node is marked stopped.

Jobs are never held by a process between claims, so nothing else needs
releasing: the next due fires of the dead process's jobs are claimed by the
survivors.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connections

from ..time.clock import offset_of
from . import ledger
from .db import from_db, to_db, utcnow, write_transaction
from .ledger import delete_ended_jobs
from .models import DjangoJob, JobSource, SchedulerNode

logger = logging.getLogger("django_metronome.nodes")


def live(using: str, now: datetime | None = None) -> Any:
    """
    The scheduler processes alive at ``now``: not stopped, and heart-beaten within
    ``DEAD_AFTER``. The one definition of "alive", for the reaper, the checks, the
    admin, the dashboard and the command line.
    """
    from ..conf import conf

    return SchedulerNode.objects.using(using).alive(
        now or utcnow(), timedelta(seconds=conf.DEAD_AFTER)
    )


def new_identity() -> str:
    """``host:pid:random``: unique even when a pid is reused or hosts share a name."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def register(
    using: str,
    identity: str,
    now: datetime,
    declared: list[str] | None = None,
    clock_offset: float | None = None,
) -> None:
    SchedulerNode.objects.using(using).update_or_create(
        id=identity,
        defaults={
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": to_db(now),
            "last_heartbeat": to_db(now),
            "stopped_at": None,
            "declared": sorted(declared or []),
            "clock_offset": clock_offset,
        },
    )


def publish_declarations(using: str, identity: str, declared: list[str]) -> None:
    """Record which jobs this process declares, and that those are not orphaned."""
    SchedulerNode.objects.using(using).filter(pk=identity).update(declared=sorted(declared))
    if declared:
        DjangoJob.objects.using(using).filter(pk__in=declared, orphaned_at__isnull=False).update(
            orphaned_at=None
        )


def mark_orphans(using: str, now: datetime, dead_after: timedelta) -> list[str]:
    """
    Flag the jobs declared in code that no live scheduler process declares.

    Orphans are not run (no process has their function) and are shown as such
    in the admin and the command line, where they can be removed. Nothing is
    flagged while no process is alive: then nothing is known.
    """
    live = SchedulerNode.objects.using(using).alive(now, dead_after)
    declarations = list(live.values_list("declared", flat=True))
    if not declarations:
        return []
    declared = {job_id for ids in declarations for job_id in (ids or [])}
    orphans = (
        DjangoJob.objects.using(using)
        .filter(source=JobSource.CODE, orphaned_at__isnull=True)
        .exclude(pk__in=declared)
    )
    ids = list(orphans.values_list("id", flat=True))
    if ids:
        DjangoJob.objects.using(using).filter(pk__in=ids).update(orphaned_at=to_db(now))
        logger.warning(
            "Job(s) %s are declared in code by no running scheduler process: flagged "
            "orphaned and not run. Remove them, or deploy the code that declares them.",
            ", ".join(map(repr, ids)),
        )
    return ids


def _clock_sql(vendor: str) -> str:
    """The expression of the database server's clock, in UTC."""
    if vendor == "postgresql":
        return "clock_timestamp() AT TIME ZONE 'UTC'"
    if vendor == "mysql":
        return "UTC_TIMESTAMP(6)"
    if vendor == "sqlite":
        # SQLite reads the operating system's clock itself (not Python's).
        return "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')"
    return "CURRENT_TIMESTAMP"


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)  # type: ignore[no-any-return]


def database_now(using: str) -> datetime:
    """The database server's clock, now (UTC, aware, at least millisecond precision)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_clock_sql(connection.vendor)}", [])
        (value,) = cursor.fetchone()
    return _as_utc(value)


def measure_offset(using: str) -> float:
    """Seconds the database's clock is ahead of this process's (negative: behind)."""
    before = time.time()
    remote = database_now(using)
    after = time.time()
    return offset_of(remote, before, after)


@dataclass(frozen=True)
class Pulse:
    """What a heartbeat learnt, in the same statement (see :func:`beat`)."""

    #: Seconds the database's clock is ahead of this process's (see measure_offset).
    offset: float
    #: Some process not stopped has not heart-beaten within DEAD_AFTER: reap.
    dead: bool
    #: Some paused job's ``paused_until`` has come: resume it.
    resumable: bool
    #: How many processes are not stopped, and the latest start among them: when
    #: this changes, which jobs are declared by a live process may have changed.
    nodes: tuple[int, Any]


def beat(
    using: str,
    identity: str,
    now: datetime,
    dead_after: timedelta,
    clock_offset: float | None = None,
) -> Pulse:
    """
    Refresh this process's heartbeat and look at what the heart may have to do.

    The database's clock, whether a process is dead, whether a pause has ended
    and a digest of the live processes come back with the heartbeat itself: on
    PostgreSQL and SQLite in one statement (``UPDATE ... RETURNING``), on
    MariaDB/MySQL in two. The heart acts (reap, resume, flag orphans) only on
    what they report.
    """
    connection = connections[using]
    adapt = connection.ops.adapt_datetimefield_value
    quote = connection.ops.quote_name
    node_table = quote(SchedulerNode._meta.db_table)
    job_table = quote(DjangoJob._meta.db_table)
    # Table names from the models, values as parameters.
    look = (
        f"{_clock_sql(connection.vendor)}, "  # noqa: S608
        f"EXISTS (SELECT 1 FROM {node_table} WHERE stopped_at IS NULL AND last_heartbeat < %s), "
        f"EXISTS (SELECT 1 FROM {job_table} WHERE paused_until <= %s "
        "AND next_run_time IS NULL AND ended_at IS NULL), "
        f"(SELECT COUNT(*) FROM {node_table} WHERE stopped_at IS NULL), "
        f"(SELECT MAX(started_at) FROM {node_table} WHERE stopped_at IS NULL)"
    )
    look_params = [adapt(to_db(now - dead_after)), adapt(to_db(now))]
    row = None
    before = time.time()
    with connection.cursor() as cursor:
        if _update_returns(connection):
            cursor.execute(
                f"UPDATE {node_table} SET last_heartbeat = %s, clock_offset = %s "  # noqa: S608
                f"WHERE id = %s AND stopped_at IS NULL RETURNING {look}",
                [adapt(to_db(now)), clock_offset, identity, *look_params],
            )
            row = cursor.fetchone()
    if row is None:
        heartbeat(using, identity, now, clock_offset)
        before = time.time()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {look}", look_params)
            row = cursor.fetchone()
    after = time.time()
    remote, dead, resumable, count, latest = row
    return Pulse(
        offset_of(_as_utc(remote), before, after), bool(dead), bool(resumable), (count, latest)
    )


def _update_returns(connection: Any) -> bool:
    """Whether UPDATE ... RETURNING works: PostgreSQL, SQLite 3.35+ (not MariaDB's UPDATE)."""
    if connection.vendor == "postgresql":
        return True
    return connection.vendor == "sqlite" and bool(
        connection.features.can_return_columns_from_insert
    )


def heartbeat(using: str, identity: str, now: datetime, clock_offset: float | None = None) -> None:
    """Refresh this process's heartbeat (and come back if it was presumed dead)."""
    nodes = SchedulerNode.objects.using(using)
    updated = nodes.filter(pk=identity, stopped_at__isnull=True).update(
        last_heartbeat=to_db(now), clock_offset=clock_offset
    )
    if not updated:
        logger.warning(
            "Scheduler process %s was presumed dead by another process (its running fires "
            "were marked interrupted); it is alive and goes on.",
            identity,
        )
        nodes.filter(pk=identity).update(
            last_heartbeat=to_db(now), stopped_at=None, clock_offset=clock_offset
        )
        if not nodes.filter(pk=identity).exists():
            register(using, identity, now, clock_offset=clock_offset)


def reap(using: str, now: datetime, dead_after: timedelta) -> list[str]:
    """Mark the running fires of dead processes interrupted; return the dead ones' ids."""
    cutoff = to_db(now - dead_after)
    with write_transaction(using):
        dead = list(
            SchedulerNode.objects.using(using)
            .select_for_update(skip_locked=True)
            .filter(stopped_at__isnull=True, last_heartbeat__lt=cutoff)
            .values_list("id", "last_heartbeat")
        )
        touched: set[str] = set()
        for identity, last_heartbeat in dead:
            since = from_db(last_heartbeat).isoformat()
            interrupted, handed_back, jobs = ledger.release(
                using,
                identity,
                now,
                started=f"Its scheduler process {identity} stopped heart-beating at {since} "
                "and is presumed dead.",
                claimed=f"Handed back: its scheduler process {identity} stopped "
                f"heart-beating at {since} before starting it.",
            )
            touched |= jobs
            logger.warning(
                "Scheduler process %s has not heart-beaten since %s: presumed dead; %d "
                "started fire(s) marked interrupted, %d claimed fire(s) handed back to the "
                "other processes.",
                identity,
                since,
                interrupted,
                handed_back,
            )
        if dead:
            SchedulerNode.objects.using(using).filter(pk__in=[d[0] for d in dead]).update(
                stopped_at=to_db(now)
            )
    if touched:
        delete_ended_jobs(using, touched)
    return [identity for identity, _ in dead]


def stop(using: str, identity: str, now: datetime) -> tuple[int, int]:
    """
    A clean exit: what still runs is interrupted, what was claimed and never
    started is handed back, and the node is marked stopped. Return both counts.
    """
    with write_transaction(using):
        interrupted, handed_back, jobs = ledger.release(
            using,
            identity,
            now,
            started="Its scheduler process stopped before the job finished.",
            claimed=f"Handed back: its scheduler process {identity} stopped before starting it.",
        )
        SchedulerNode.objects.using(using).filter(pk=identity).update(
            stopped_at=to_db(now), last_heartbeat=to_db(now)
        )
    if jobs:
        delete_ended_jobs(using, jobs)
    return interrupted, handed_back
