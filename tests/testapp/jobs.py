"""Functions that test jobs call. They are module-level so that jobs can refer to them."""

from __future__ import annotations

import os
import time
from typing import Any

from django_metronome.context import current_fire
from django_metronome.util import close_old_connections

CALLS: list[tuple[Any, ...]] = []


def noop(*args: Any, **kwargs: Any) -> None:
    """Do nothing."""


def record(*args: Any, **kwargs: Any) -> None:
    CALLS.append((args, kwargs))


def fail(message: str = "boom") -> None:
    raise RuntimeError(message)


class Tasks:
    def method(self) -> None:
        """An instance method: cannot be stored, because the instance is not JSON."""

    @classmethod
    def class_method(cls, *args: Any, **kwargs: Any) -> str:
        return "class"

    @staticmethod
    def static_method(*args: Any, **kwargs: Any) -> str:
        return "static"


@close_old_connections
def record_fire(*args: Any, **kwargs: Any) -> None:
    """Write which fire ran, in which process (the scheduler's current_fire())."""
    from tests.testapp.models import FireRecord

    fire = current_fire()
    assert fire is not None, "record_fire runs only under a django-metronome scheduler"
    FireRecord.objects.create(job_id=fire.job_id, run_time=fire.run_time, pid=os.getpid())


@close_old_connections
def record_then_hang(seconds: float = 30) -> None:
    record_fire()
    time.sleep(seconds)


def fail_loudly() -> None:
    raise ValueError("this job always fails")


def record_fire_plainly() -> None:
    """record_fire without close_old_connections: the scheduler's own hygiene must do."""
    from tests.testapp.models import FireRecord

    fire = current_fire()
    assert fire is not None
    FireRecord.objects.create(job_id=fire.job_id, run_time=fire.run_time, pid=os.getpid())


def append_fire(path: str, seconds: float = 0) -> None:
    """
    Append which fire ran, in which process, to a file, then take ``seconds``.

    The side effect of the fault suite: it needs no database, so a test that
    kills the scheduler's connections or restarts the server counts the runs
    without disturbing the jobs themselves.
    """
    fire = current_fire()
    assert fire is not None, "append_fire runs only under a django-metronome scheduler"
    line = f"{fire.job_id} {fire.run_time.isoformat()} {os.getpid()}\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line.encode())
    finally:
        os.close(descriptor)
    time.sleep(seconds)
