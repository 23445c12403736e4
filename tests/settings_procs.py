"""Settings for scheduler subprocesses: the test database, fast timings, declared jobs."""

import os

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

# A test may give its processes fewer workers (so that fires queue behind them),
# or the database's clock explicitly (the clock tests: see tests/test_faults.py).
if os.environ.get("METRONOME_PROC_WORKERS"):
    METRONOME["WORKERS"] = int(os.environ["METRONOME_PROC_WORKERS"])
if os.environ.get("METRONOME_PROC_CLOCK"):
    METRONOME["CLOCK"] = os.environ["METRONOME_PROC_CLOCK"]
