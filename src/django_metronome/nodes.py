"""
Scheduler processes, their heartbeats, and what happens when one dies.

Each scheduler process writes a ``SchedulerNode`` row when it starts and
refreshes its ``last_heartbeat`` every ``HEARTBEAT_INTERVAL`` seconds. A
process whose heartbeat is older than ``DEAD_AFTER`` is presumed dead: any
live process marks its running fires as interrupted (they are not run again:
a fire is dispatched at most once) and marks the node stopped. Jobs are never
held by a process between claims, so nothing else needs releasing: the next
due fires of the dead process's jobs are claimed by the survivors.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from datetime import datetime, timedelta

from .claims import write_transaction
from .models import DjangoJob, DjangoJobExecution, ExecutionStatus, JobSource, SchedulerNode
from .util import to_db

logger = logging.getLogger("django_metronome.nodes")


def new_identity() -> str:
    """``host:pid:random``: unique even when a pid is reused or hosts share a name."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def register(using: str, identity: str, now: datetime, declared: list[str] | None = None) -> None:
    SchedulerNode.objects.using(using).update_or_create(
        id=identity,
        defaults={
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": to_db(now),
            "last_heartbeat": to_db(now),
            "stopped_at": None,
            "declared": sorted(declared or []),
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


def heartbeat(using: str, identity: str, now: datetime) -> None:
    """Refresh this process's heartbeat (and come back if it was presumed dead)."""
    nodes = SchedulerNode.objects.using(using)
    updated = nodes.filter(pk=identity, stopped_at__isnull=True).update(last_heartbeat=to_db(now))
    if not updated:
        logger.warning(
            "Scheduler process %s was presumed dead by another process (its running fires "
            "were marked interrupted); it is alive and goes on.",
            identity,
        )
        nodes.filter(pk=identity).update(last_heartbeat=to_db(now), stopped_at=None)
        if not nodes.filter(pk=identity).exists():
            register(using, identity, now)


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
        for identity, last_heartbeat in dead:
            count = interrupt_running(
                using,
                identity,
                now,
                f"Its scheduler process {identity} stopped heart-beating at "
                f"{last_heartbeat.isoformat()} and is presumed dead.",
            )
            logger.warning(
                "Scheduler process %s has not heart-beaten since %s: presumed dead; %d "
                "running fire(s) marked interrupted.",
                identity,
                last_heartbeat.isoformat(),
                count,
            )
        if dead:
            SchedulerNode.objects.using(using).filter(pk__in=[d[0] for d in dead]).update(
                stopped_at=to_db(now)
            )
    return [identity for identity, _ in dead]


def interrupt_running(using: str, identity: str, now: datetime, reason: str) -> int:
    """Mark a process's running fires interrupted."""
    return (
        DjangoJobExecution.objects.using(using)
        .filter(node=identity, status=ExecutionStatus.RUNNING)
        .update(status=ExecutionStatus.INTERRUPTED, finished_at=to_db(now), reason=reason)
    )


def stop(using: str, identity: str, now: datetime) -> int:
    """A clean exit: what still runs is interrupted, and the node is marked stopped."""
    with write_transaction(using):
        count = interrupt_running(
            using, identity, now, "Its scheduler process stopped before the job finished."
        )
        SchedulerNode.objects.using(using).filter(pk=identity).update(
            stopped_at=to_db(now), last_heartbeat=to_db(now)
        )
    return count
