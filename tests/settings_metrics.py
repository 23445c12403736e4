"""Settings for the web server that tests/test_metrics_server.py scrapes: a token, the host."""

from tests.settings_procs import *  # noqa: F403

#: The bearer token the test's scraper sends.
METRICS_TOKEN = "metrics-test-token-0123456789abcdef"
METRONOME = {**METRONOME, "METRICS_TOKEN": METRICS_TOKEN}  # noqa: F405
ALLOWED_HOSTS = ["127.0.0.1"]
