"""
Fault points: named instants in a fire's life where a test can break the process.

The fault suite (``tests/test_faults.py``) must reach "between the claim and
the start", "mid-job", "between the job's end and its outcome write" and
"during the heartbeat" exactly, not by a sleep that is usually long enough.
Each such instant calls :func:`point` with its name. In production nothing is
configured and a point costs one dictionary lookup.

``METRONOME_FAULTS`` in the environment (read once, at import) configures
them: ``claimed=kill`` kills the process with SIGKILL when it reaches
"claimed"; ``started=hold:/path/file`` makes it create ``/path/file`` and
wait there until the file is removed (the test does its damage meanwhile:
kills a connection, restarts the database), ``claimed=term`` sends the process
SIGTERM (its handler runs right there, when that is the main thread: a
``BlockingScheduler`` whose handler calls ``shutdown()``), ``finished=kill@3``
fires on the third arrival only. Several are separated by commas.

Points: ``claimed`` (claim committed, fires not started), ``started`` (a fire
marked started, its job not called yet), ``finished`` (the job returned, its
outcome not written), ``heartbeat`` (before a heartbeat's writes),
``outcomes`` (before a batch of outcomes is written); for a ``django.tasks`` job,
``enqueue`` (its fire marked started, the task not enqueued yet) and ``enqueued``
(the task enqueued, the ledger not told yet: inside the transaction when the
task backend shares the ledger's database).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

__all__ = ["point"]


def _parse(spec: str) -> dict[str, tuple[str, str, int]]:
    faults: dict[str, tuple[str, str, int]] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, action = item.partition("=")
        action, _, nth = action.partition("@")
        kind, _, argument = action.partition(":")
        faults[name] = (kind, argument, int(nth or 1))
    return faults


_FAULTS = _parse(os.environ.get("METRONOME_FAULTS", ""))
_arrivals: dict[str, int] = {}
_lock = threading.Lock()


def point(name: str) -> None:
    """A fault point: does nothing unless a test configured this one."""
    if not _FAULTS:
        return
    fault = _FAULTS.get(name)
    if fault is None:
        return
    kind, argument, nth = fault
    with _lock:
        _arrivals[name] = _arrivals.get(name, 0) + 1
        if _arrivals[name] != nth:
            return
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "term":
        os.kill(os.getpid(), signal.SIGTERM)
    elif kind == "hold":
        marker = Path(argument)
        marker.write_text(str(os.getpid()))
        while marker.exists():
            time.sleep(0.01)
    else:
        raise ValueError(f"Unknown fault action {kind!r} at point {name!r}.")
