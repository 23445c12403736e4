"""django-metronome: APScheduler's API, with jobs and their run history in the Django database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import add_job as add_job
    from .api import backfill as backfill
    from .loop.flavours import BackgroundScheduler

    scheduler: BackgroundScheduler

__version__ = "0.1.0.dev0"


def __getattr__(name: str) -> Any:
    # ``from django_metronome import scheduler``: created on first use, not at import,
    # so importing the package never needs configured settings.
    if name == "scheduler":
        from .default import get_scheduler

        return get_scheduler()
    if name == "add_job":
        from .api import add_job

        return add_job
    if name == "backfill":
        from .api import backfill

        return backfill
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
