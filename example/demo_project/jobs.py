"""What the demo's jobs do. Module-level functions, so the store can name them."""

import logging

from django_metronome.util import close_old_connections

logger = logging.getLogger("demo")


@close_old_connections
def say_hello(name: str) -> str:
    logger.info("Hello, %s!", name)
    return f"Hello, {name}!"


def fail() -> None:
    raise RuntimeError("This job fails on purpose; its traceback is in the ledger.")
