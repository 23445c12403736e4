"""
The benchmark's job: a no-op that leaves proof it ran.

Every scheduler under test calls :func:`noop` with the job's own id. The call
is counted here, in the process, under a lock, independently of any ledger the
system keeps, so a fire that ran twice or never is visible even when the
system's history is silent about it.
"""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_calls: dict[str, int] = {}
_last_call = 0.0


def noop(key: str) -> None:
    """Count one run of the job ``key`` and remember when it happened."""
    global _last_call
    now = time.perf_counter()
    with _lock:
        _calls[key] = _calls.get(key, 0) + 1
        _last_call = max(_last_call, now)


def snapshot() -> tuple[dict[str, int], float]:
    """A copy of the per-job call counts and the ``perf_counter`` of the latest call."""
    with _lock:
        return dict(_calls), _last_call


def distinct_runs() -> int:
    """How many different jobs have run at least once."""
    with _lock:
        return len(_calls)


def reset() -> None:
    global _last_call
    with _lock:
        _calls.clear()
        _last_call = 0.0
