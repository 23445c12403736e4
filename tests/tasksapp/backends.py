"""A task backend whose broker is down: every enqueue fails as a refused connection does."""

from __future__ import annotations

from typing import Any

from django_metronome.store.taskfires import framework

_tasks = framework()
assert _tasks is not None
_base = __import__(f"{_tasks.name}.backends.base", fromlist=["BaseTaskBackend"])


class BrokerDownBackend(_base.BaseTaskBackend):  # type: ignore[misc,name-defined]
    """Refuses every enqueue with the error a client gets when its broker is down."""

    #: Enqueues tried, across the process (the retry rule is counted with it).
    attempts = 0

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        type(self).attempts += 1
        raise ConnectionRefusedError(111, "Connection refused (the test's broker is down)")
