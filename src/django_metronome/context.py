"""Which fire a job is running: ``current_fire()``; lives in ``loop.context``."""

from .loop.context import FireContext, current_fire

__all__ = ["FireContext", "current_fire"]
