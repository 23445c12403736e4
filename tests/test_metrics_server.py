"""
A real web server scraped while a real scheduler runs: the metrics agree with the ledger.

``runserver`` (on 127.0.0.1, with the bearer token of ``tests/settings_metrics``)
and ``runscheduler`` (a job that succeeds every second, one that fails every
second) share the test database. The ledger is read just before and just
after each scrape; every counted value must lie between the two readings, so
the test does not depend on how fast the scheduler goes. PostgreSQL only: the
other databases get the same values through the test client
(``tests/test_metrics.py``), and this test starts two processes.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import pytest
from django.db import connection
from django.db.models import Count, Max
from prometheus_client.parser import text_string_to_metric_families

from django_metronome.models import DjangoJob, DjangoJobExecution, SchedulerNode
from tests.conftest import wait_for
from tests.settings_metrics import METRICS_TOKEN

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="starts a web server and a scheduler: run on PostgreSQL; the values are "
        "checked on every database through the test client (test_metrics.py)",
    ),
]

OUTCOMES = ("succeeded", "failed", "missed", "skipped", "interrupted")
JOBS = ("every-second", "raises")
#: DEAD_AFTER of tests/settings_procs.py: the scheduler's "up" threshold there.
DEAD_AFTER = 3.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, token: str | None = METRICS_TOKEN) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def answers(url: str) -> bool:
    try:
        return get(url)[0] == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def ledger() -> dict[tuple[str, str], int]:
    return {
        (row["job_id"], row["status"]): row["n"]
        for row in DjangoJobExecution.objects.values("job_id", "status").annotate(n=Count("pk"))
    }


def last_success(job_id: str) -> float:
    latest = DjangoJobExecution.objects.filter(job_id=job_id, status="succeeded").aggregate(
        last=Max("finished_at")
    )["last"]
    return latest.timestamp() if latest else 0.0


def next_fire_time(job_id: str) -> float:
    return DjangoJob.objects.get(pk=job_id).next_run_time.timestamp()


def test_a_scrape_of_a_real_server_matches_the_ledger(processes):
    processes.runscheduler("every-second,raises")
    port = free_port()
    processes.start(
        [
            "-m",
            "django",
            "runserver",
            "--noreload",
            f"127.0.0.1:{port}",
            "--settings=tests.settings_metrics",
        ],
        handles_sigterm=False,
    )
    url = f"http://127.0.0.1:{port}/metronome/metrics"
    wait_for(lambda: answers(url), timeout=60, interval=0.1)
    wait_for(
        lambda: (
            ledger().get(("every-second", "succeeded"), 0) >= 2
            and ledger().get(("raises", "failed"), 0) >= 2
        ),
        timeout=60,
        interval=0.1,
    )

    (identity,) = SchedulerNode.objects.filter(stopped_at__isnull=True).values_list("id", flat=True)
    for _ in range(2):  # twice: the counters only grow while nothing is pruned
        before, success_before = ledger(), last_success("every-second")
        next_before = next_fire_time("every-second")
        heartbeat_before = SchedulerNode.objects.get(pk=identity).last_heartbeat.timestamp()
        asked = time.time()
        status, text = get(url)
        answered = time.time()
        after, success_after = ledger(), last_success("every-second")
        next_after = next_fire_time("every-second")
        heartbeat_after = SchedulerNode.objects.get(pk=identity).last_heartbeat.timestamp()
        assert status == 200, text

        found = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        for job_id in JOBS:
            for outcome in OUTCOMES:
                scraped = found[
                    ("metronome_job_fires_total", (("job_id", job_id), ("outcome", outcome)))
                ]
                low, high = before.get((job_id, outcome), 0), after.get((job_id, outcome), 0)
                assert low <= scraped <= high, (job_id, outcome, low, scraped, high)
        assert found[("metronome_job_fires_total", (("job_id", "raises"), ("outcome", "failed")))]
        scraped_success = found[
            ("metronome_job_last_success_timestamp_seconds", (("job_id", "every-second"),))
        ]
        assert success_before <= scraped_success <= success_after

        node = (("node", identity),)
        age = found[("metronome_scheduler_heartbeat_age_seconds", node)]
        assert asked - heartbeat_after - 0.01 <= age <= answered - heartbeat_before + 0.01
        assert found[("metronome_scheduler_up", node)] == float(age <= DEAD_AFTER)
        assert found[("metronome_scheduler_running_fires", node)] >= 0
        assert (
            found[("metronome_job_paused", (("job_id", "every-second"),))],
            found[("metronome_job_quarantined", (("job_id", "every-second"),))],
        ) == (0, 0)
        next_fire = found[
            ("metronome_job_next_fire_timestamp_seconds", (("job_id", "every-second"),))
        ]
        assert next_before <= next_fire <= next_after

    # Without the token, the real server refuses, and says how to get in.
    status, text = get(url, token=None)
    assert status == 401
    assert "METRONOME['METRICS_TOKEN']" in text
