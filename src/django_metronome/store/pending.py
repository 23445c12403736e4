"""
Pending fires: "run now" requests, and fires handed back by a process that died.

Any process that can run the job takes them, the same way as scheduled fires
(:mod:`.claims`): locked, skipping what another process is taking, claimed
here, or skipped for the job's ``max_instances``, or failed when the job was
removed meanwhile. The jobs' schedules are not touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..time.firing import FirePlan
from ..time.overlap import BUFFERED_PREFIX
from . import ledger as writes
from .backfill import backfill_overlap
from .claims import (
    LOAD_COLUMNS,
    ClaimBatch,
    ClaimedJob,
    Fire,
    Loader,
    buffers,
    ledger_state,
    replaces,
)
from .db import from_db, write_transaction
from .models import (
    DjangoJob,
    DjangoJobExecution,
)

__all__ = ["claim_manual_fires", "has_manual_fires"]


def claim_manual_fires(
    *, using: str, node: str, now: datetime, limit: int, declared: Iterable[str], load: Loader
) -> ClaimBatch:
    """
    Take the pending fires of jobs this process can run: "run now" requests,
    and fires handed back by a process that died (or stopped) before it
    started them.

    In one transaction, as for scheduled fires: the pending rows are locked
    (skipping those another process is taking), each becomes claimed here, or
    skipped when the job already has ``max_instances`` running, or failed when
    the job was removed meanwhile. The jobs' schedules are not touched. A
    fire of a job whose schedule has ended (whose row waits for it) runs too.
    A job whose overlap policy buffers fires keeps its pending fires (buffered
    or asked for by hand) waiting while it has ``max_instances`` running:
    they start one by one, in order.
    """
    batch = ClaimBatch()
    if limit <= 0:
        return batch
    with write_transaction(using):
        ledger = DjangoJobExecution.objects.using(using)
        jobs_table = DjangoJob.all_rows.using(using)
        runnable = jobs_table.loadable().runnable_by(declared).values("id")
        requests = list(
            ledger.pending()
            .filter(job_id__in=runnable)
            .select_for_update(skip_locked=True)
            .order_by("run_time", "id")
            .values_list("id", "job_id", "run_time", "reason")[:limit]
        )
        writes.fail_orphaned_requests(using, now)
        if not requests:
            return batch
        batch.full = len(requests) >= limit
        wanted = jobs_table.filter(pk__in={job_id for _, job_id, _, _ in requests})
        jobs = {job.id: job for job in load(wanted.values_list(*LOAD_COLUMNS))}
        running, _, _ = ledger_state(
            ledger, {job_id: FirePlan((), (), (), None) for job_id in jobs}
        )
        taken, skipped = [], []
        full: set[str] = set()
        for pk, job_id, run_time, reason in requests:
            job = jobs.get(job_id)
            if job is None:
                continue  # quarantined by load(): the request waits for the job to be fixed
            busy = job_id in full or running[job_id] >= job.max_instances
            policy = backfill_overlap(reason)  # a backfilled fire has its backfill's policy
            if policy == "allow_all":
                busy = False
            elif busy and policy is not None:
                if policy == "buffer_all":
                    full.add(job_id)  # it waits its turn, and later backfilled ones behind it
                else:
                    skipped.append(pk)
                    batch.skipped.append((job_id, from_db(run_time), "max_instances"))
                continue
            if busy and (buffers(job) or reason.startswith(BUFFERED_PREFIX)):
                # It waits its turn, and the job's later pending fires wait behind it.
                full.add(job_id)
                continue
            if busy:
                skipped.append(pk)
                batch.skipped.append((job_id, from_db(run_time), "max_instances"))
                continue
            running[job_id] += 1
            if buffers(job):
                full.add(job_id)  # one at a time: the next waits for this one's outcome
            taken.append(pk)
            # A handed-back fire of an ended job: the heart's sweep removes the job's
            # row once none of its fires is open (several may have been handed back).
            fire = Fire(pk, from_db(run_time), wake=buffers(job), cancellable=replaces(job))
            batch.claimed.append(ClaimedJob(job, [fire]))
        writes.claim_pending(using, taken, skipped, node, now)
    return batch


def has_manual_fires(using: str) -> bool:
    """Whether any "run now" request waits (a cheap check before claiming)."""
    return DjangoJobExecution.objects.using(using).pending().exists()
