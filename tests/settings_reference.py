"""Settings of a project that uses the brief's reference usage, started in AppConfig.ready()."""

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.refapp"]  # noqa: F405
TIME_ZONE = "Asia/Seoul"
SCHEDULER_DEFAULT = True
# The test moves these processes' clocks (time-machine) to just before 08:00 in
# Seoul: with the database's clock ruling (the default), that would be undone.
METRONOME = {
    "POLL_INTERVAL": 0.1,
    "HEARTBEAT_INTERVAL": 0.5,
    "DEAD_AFTER": 3,
    "CLOCK": "local",
}
