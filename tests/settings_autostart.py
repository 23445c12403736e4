"""Settings of a project whose web processes start the scheduler themselves."""

from tests.settings_procs import *  # noqa: F403

METRONOME = {**METRONOME, "AUTOSTART": True}  # noqa: F405
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
