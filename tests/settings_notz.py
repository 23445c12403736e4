"""The test settings with USE_TZ = False: Django stores naive wall times in TIME_ZONE."""

from tests.settings import *  # noqa: F403

USE_TZ = False
TIME_ZONE = "Asia/Seoul"
METRONOME = {
    "POLL_INTERVAL": 0.05,
    "HEARTBEAT_INTERVAL": 0.5,
    "DEAD_AFTER": 3,
    "MIN_INTERVAL": 0.05,
}
