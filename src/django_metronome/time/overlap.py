"""
Overlap policies: what a fire does when the job's previous fire is still running.

Pure: the claim counts, in the run ledger, how many fires of the job are
running (in every process) and how many wait; :func:`decide` says what the
new fire does. The names follow Temporal's schedule overlap policies and
Kubernetes' ``concurrencyPolicy`` (see docs/schedules.md).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "BUFFERED_PREFIX",
    "BUFFER_ALL_LIMIT",
    "CANCELLED_PREFIX",
    "ONE_AT_A_TIME",
    "OVERLAP_POLICIES",
    "UNBOUNDED_INSTANCES",
    "Decision",
    "Overlap",
    "check_overlap",
    "decide",
    "effective_overlap",
]


class Overlap(StrEnum):
    #: The new fire is skipped while one runs (``max_instances=1``, Kubernetes' Forbid).
    SKIP = "skip"
    #: Fires run side by side, up to ``max_instances`` (Kubernetes' Allow).
    ALLOW_ALL = "allow_all"
    #: One fire waits for the running one; while one waits, later fires are skipped.
    BUFFER_ONE = "buffer_one"
    #: Every fire waits, in order, up to :data:`BUFFER_ALL_LIMIT` waiting fires.
    BUFFER_ALL = "buffer_all"
    #: The running fire is asked to stop, and the new one starts (Kubernetes' Replace).
    CANCEL_OTHER = "cancel_other"


#: The overlap policies, by name.
OVERLAP_POLICIES = tuple(policy.value for policy in Overlap)

#: Policies that run one fire at a time (``max_instances`` is 1 for them).
ONE_AT_A_TIME = frozenset(
    {Overlap.SKIP, Overlap.BUFFER_ONE, Overlap.BUFFER_ALL, Overlap.CANCEL_OTHER}
)

#: ``max_instances`` of an ``allow_all`` job given none: no bound, in practice.
UNBOUNDED_INSTANCES = 2**31 - 1

#: The most fires of one job that wait under ``buffer_all``; a fire beyond is skipped.
BUFFER_ALL_LIMIT = 100

#: How the ledger's reason of a waiting (buffered) fire begins: the pending claim
#: tells a buffered fire (which waits its turn) from a "run now" request by it.
BUFFERED_PREFIX = "Buffered"


#: How the ledger's reason of a fire asked to stop by the next one begins (cancel_other).
CANCELLED_PREFIX = "Cancelled by the next fire"


class Decision(StrEnum):
    RUN = "run"
    BUFFER = "buffer"
    SKIP = "skip"
    #: Run, and ask the running fires to stop.
    REPLACE = "replace"


def check_overlap(policy: object, max_instances: object) -> None:
    """
    Refuse an unknown policy, or one that contradicts ``max_instances``.

    ``max_instances`` is the value given with it (None when not given).
    """
    if policy is None:
        return
    if policy not in OVERLAP_POLICIES:
        raise ValueError(
            f"overlap must be one of {', '.join(map(repr, OVERLAP_POLICIES))} or None, "
            f"not {policy!r}."
        )
    if max_instances is None:
        return
    if policy in ONE_AT_A_TIME and max_instances != 1:
        raise ValueError(
            f"overlap={policy!r} runs one fire of the job at a time, but max_instances="
            f"{max_instances!r} allows more: leave max_instances out, or use "
            "overlap='allow_all' to let fires run side by side."
        )
    if policy == Overlap.ALLOW_ALL and max_instances == 1:
        raise ValueError(
            "overlap='allow_all' lets fires run side by side, but max_instances=1 allows one: "
            "give max_instances the most fires that may run at once (or leave it out for "
            "no bound), or use overlap='skip'."
        )


def effective_overlap(policy: str | None, max_instances: int) -> Overlap:
    """The policy a job follows: its own, or what its ``max_instances`` means (old jobs)."""
    if policy:
        return Overlap(policy)
    return Overlap.SKIP if max_instances <= 1 else Overlap.ALLOW_ALL


def decide(policy: Overlap, *, running: int, waiting: int, max_instances: int) -> Decision:
    """
    What a new fire does, given the job's fires ``running`` (claimed or started,
    in every process) and ``waiting`` (buffered, not started yet).

    A fire waiting already goes first: under a buffering policy a new fire
    waits behind it even when nothing runs at this instant.
    """
    if policy in (Overlap.BUFFER_ONE, Overlap.BUFFER_ALL):
        if running < max_instances and waiting == 0:
            return Decision.RUN
        limit = 1 if policy == Overlap.BUFFER_ONE else BUFFER_ALL_LIMIT
        return Decision.BUFFER if waiting < limit else Decision.SKIP
    if running < max_instances:
        return Decision.RUN
    if policy == Overlap.CANCEL_OTHER:
        return Decision.REPLACE
    return Decision.SKIP
