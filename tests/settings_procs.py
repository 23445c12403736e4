"""Settings for scheduler subprocesses: the test database, fast timings, declared jobs."""

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.procapp"]  # noqa: F405
METRONOME = {
    "POLL_INTERVAL": 0.1,
    "HEARTBEAT_INTERVAL": 0.5,
    "DEAD_AFTER": 3,
    "SHUTDOWN_TIMEOUT": 2,
    # Small batches, so that the processes really compete for the due jobs.
    "BATCH_SIZE": 50,
}
