"""Tasks scheduled by the tests: each run leaves a TaskRun row (the side effect counted)."""

from __future__ import annotations

from typing import Any

from django_metronome.store.taskfires import framework

_tasks = framework()
assert _tasks is not None
task: Any = __import__(_tasks.name, fromlist=["task"]).task


@task()
def record(
    label: str = "",
    metronome_nominal_time: str | None = None,
    metronome_idempotency_key: str | None = None,
) -> str:
    from .models import TaskRun

    TaskRun.objects.create(key=metronome_idempotency_key or "", label=label)
    return label


@task(queue_name="reports")
def report(label: str = "") -> str:
    from .models import TaskRun

    TaskRun.objects.create(label=f"report:{label}")
    return label


@task()
def explode() -> None:
    raise ValueError("the task failed on purpose")


@task(backend="immediate")
def at_once(label: str = "") -> str:
    from .models import TaskRun

    TaskRun.objects.create(label=f"now:{label}")
    return label


@task(backend="brokerdown")
def unreachable() -> None:
    """Never runs: its backend's broker is down."""


def plain(label: str = "") -> None:
    from .models import TaskRun

    TaskRun.objects.create(label=f"plain:{label}")


@task()
def hold(marker: str) -> None:
    """Create ``marker`` and wait until the test removes it (or kills the worker)."""
    import time
    from pathlib import Path

    path = Path(marker)
    path.write_text("running")
    while path.exists():
        time.sleep(0.02)


#: The same Task under another name: a stored reference must name the task's own function.
relayed = record
