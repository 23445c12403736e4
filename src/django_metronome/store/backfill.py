"""
Backfill: run every nominal fire of a job between two past instants, as if the scheduler
had been up.

:func:`backfill` lists the job's fires in the range by its own trigger (the
same times the scheduler would have used: jittered, business days, windows),
and writes one ledger row per fire as *pending* and marked ``backfilled``.
Any scheduler process that can run the job takes them, oldest first, as it
takes a "run now" request: while the job has ``max_instances`` running, the
next backfilled fire waits its turn (it is not skipped). A fire that already
has a ledger row (it ran, was missed, or another backfill wrote it) is not
written again: the unique key on (job, run time) decides, also between two
backfills of the same range at once.

A backfill is bounded by :data:`MAX_BACKFILL` fires; a larger range is
refused whole, with the count, before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from apscheduler.triggers.base import BaseTrigger

from ..exceptions import MetronomeError
from ..time.jitter import nominal_time
from ..time.triggers import next_fire_time
from . import audit
from . import ledger as writes
from .db import from_db, to_db, utcnow
from .models import DjangoJob, DjangoJobExecution, ExecutionStatus

__all__ = [
    "BACKFILL_OVERLAPS",
    "BACKFILL_PREFIX",
    "MAX_BACKFILL",
    "BackfillRefused",
    "BackfillResult",
    "backfill",
    "backfill_fires",
    "backfill_overlap",
]

#: The most fires one backfill may write (the range is refused whole above it).
MAX_BACKFILL = 1000

#: How a backfilled fire's reason starts, while it is pending (``store/pending`` reads it).
BACKFILL_PREFIX = "Backfill"

#: A backfill's own overlap policies, for its fires while the job runs another one:
#: ``buffer_all`` (the default) waits, in order; ``skip`` skips the fire (recorded);
#: ``allow_all`` runs it at once, whatever the job's ``max_instances``.
BACKFILL_OVERLAPS = ("buffer_all", "skip", "allow_all")

_OVERLAP_NOTE = re.compile(r"\(overlap: (\w+)\)")


def backfill_overlap(reason: str) -> str | None:
    """The overlap policy of a pending backfilled fire, read from its reason; None if not one."""
    if not reason.startswith(BACKFILL_PREFIX):
        return None
    found = _OVERLAP_NOTE.search(reason)
    policy = found.group(1) if found else "buffer_all"
    return policy if policy in BACKFILL_OVERLAPS else "buffer_all"


class BackfillRefused(MetronomeError, ValueError):
    """A backfill that cannot be done as asked; the message says what to do instead."""


@dataclass
class BackfillResult:
    """What a backfill found and did."""

    job_id: str
    #: Every fire of the job in the range, oldest first.
    fires: list[datetime] = field(default_factory=list)
    #: Those written as pending, backfilled fires (none for a dry run).
    written: list[datetime] = field(default_factory=list)
    #: Those that already had a ledger row, and were left alone.
    recorded: list[datetime] = field(default_factory=list)
    dry_run: bool = False


def backfill_fires(trigger: BaseTrigger, start: datetime, end: datetime) -> list[datetime]:
    """
    The trigger's fires from ``start`` to ``end`` (both inclusive), oldest first.

    Raise BackfillRefused when there are more than :data:`MAX_BACKFILL`.
    """
    fires: list[datetime] = []
    end_utc = end.astimezone(UTC)
    fire = next_fire_time(trigger, None, start)
    while fire is not None and fire.astimezone(UTC) <= end_utc:
        fires.append(fire)
        if len(fires) > MAX_BACKFILL:
            raise BackfillRefused(
                f"More than {MAX_BACKFILL} fires between {start.isoformat()} and "
                f"{end.isoformat()} (the most one backfill may run): backfill a shorter "
                "range, in several steps."
            )
        following = next_fire_time(trigger, fire, fire)
        if following is not None and following.astimezone(UTC) <= fire.astimezone(UTC):
            break  # a trigger that does not move forward
        fire = following
    return fires


def backfill(
    job: DjangoJob,
    start: datetime,
    end: datetime,
    *,
    dry_run: bool = False,
    overlap: str = "buffer_all",
    requested_by: str = "",
    using: str | None = None,
    now: datetime | None = None,
) -> BackfillResult:
    """
    Backfill ``job`` from ``start`` to ``end`` (aware datetimes, both inclusive); see the module.

    ``end`` may not be in the future: later fires are the scheduler's.
    ``overlap`` is the backfill's own policy (:data:`BACKFILL_OVERLAPS`). With
    ``dry_run`` nothing is written: the result lists the fires, and which of
    them already have a ledger row. Raise BackfillRefused for a bad range, a
    quarantined job or too many fires.
    """
    if overlap not in BACKFILL_OVERLAPS:
        raise BackfillRefused(
            f"Unknown overlap policy {overlap!r} for a backfill; use one of "
            f"{', '.join(BACKFILL_OVERLAPS)}."
        )
    using = using or job._state.db or "default"
    now = now or utcnow()
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise BackfillRefused(f"The backfill's {name} must have a time zone: {value!r}.")
    if start > end:
        raise BackfillRefused(
            f"The backfill starts ({start.isoformat()}) after it ends ({end.isoformat()}): "
            "swap --from and --to."
        )
    if end > now:
        raise BackfillRefused(
            f"The backfill ends in the future ({end.isoformat()}): fires after now are the "
            "scheduler's. End it at the current time or earlier."
        )
    if job.quarantined_at is not None:
        raise BackfillRefused(
            f"Job {job.id!r} is quarantined ({job.quarantine_reason}); fix it before "
            "backfilling it."
        )
    trigger = job.trigger()
    result = BackfillResult(job.id, backfill_fires(trigger, start, end), dry_run=dry_run)
    if not result.fires:
        return result
    ledger = DjangoJobExecution.objects.using(using)
    existing = {
        from_db(run_time)
        for run_time in ledger.filter(
            job_id=job.id, run_time__in=[to_db(fire) for fire in result.fires]
        ).values_list("run_time", flat=True)
    }
    result.recorded = [fire for fire in result.fires if fire.astimezone(UTC) in existing]
    if dry_run:
        return result
    reason = f"{BACKFILL_PREFIX} (overlap: {overlap})" + (
        f", asked for by {requested_by}." if requested_by else "."
    )
    entries = [
        {
            "job_id": job.id,
            "job_name": job.name,
            "run_time": fire.astimezone(UTC),
            "status": ExecutionStatus.PENDING.value,
            "node": "",
            "claimed_at": None,
            "finished_at": None,
            "lateness": None,
            "reason": reason,
            "exception": "",
            "traceback": "",
            "manual": False,
            "nominal_time": nominal_time(trigger, fire),
            "backfilled": True,
        }
        for fire in result.fires
        if fire.astimezone(UTC) not in existing
    ]
    # Conflicts (another backfill, or the scheduler, wrote the fire meanwhile) are
    # left out, fire by fire: the unique key decides.
    written = writes.insert_fires(using, entries)
    result.written = [fire for fire in result.fires if (job.id, fire.astimezone(UTC)) in written]
    written_utc = {fire.astimezone(UTC) for fire in result.written}
    result.recorded = [fire for fire in result.fires if fire.astimezone(UTC) not in written_utc]
    if result.written:
        # In the job's audit trail, by whoever acts (the CLI, the admin, the API).
        audit.record_change(
            job.id,
            "backfilled",
            after={
                "from": start.isoformat(),
                "to": end.isoformat(),
                "overlap": overlap,
                "fires": len(result.written),
            },
            job_name=job.name,
            using=using,
        )
    return result
