"""
The metrics: what the view and ``manage.py metronome metrics`` serve, against the ledger.

Every value is read back with prometheus-client's own parsers and compared
with the rows the test wrote (and with the ledger counted another way). Who
may read the metrics (staff, a bearer token, listed addresses) and the checks
of those settings are here too. A real server scraped while a real scheduler
runs is ``tests/test_metrics_server.py``.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from django_metronome.models import DjangoJob, DjangoJobExecution, SchedulerNode
from django_metronome.observe import access, metrics
from django_metronome.store import incidents, retention
from django_metronome.store.db import utcnow
from django_metronome.store.models import FINAL_STATUSES, Incident, IncidentKind

URL = "/metronome/metrics"
TOKEN = "a-long-random-test-token-0123456789"


def samples(text: str, parse=text_string_to_metric_families) -> dict[tuple, float]:
    """Every sample of a scrape: {(name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in parse(text)
        for sample in family.samples
    }


def value(found: dict[tuple, float], metric: str, /, **labels: str) -> float | None:
    return found.get((metric, tuple(sorted(labels.items()))))


def job(job_id: str, **fields) -> DjangoJob:
    fields.setdefault("next_run_time", utcnow() + timedelta(minutes=5))
    return DjangoJob.objects.create(
        id=job_id, name=f"Job {job_id}", func_ref="tests.testapp.jobs:noop", **fields
    )


def run(job_id: str, age: float, status: str, node: str = "host:1:abc", **fields):
    """A ledger row of ``job_id``, scheduled ``age`` seconds ago."""
    run_time = utcnow() - timedelta(seconds=age)
    if "lateness" in fields:
        fields["lateness"] = timedelta(seconds=fields["lateness"])
    if "duration" in fields:
        fields["duration"] = timedelta(seconds=fields["duration"])
    if status in ("succeeded", "failed", "missed", "skipped", "interrupted"):
        fields.setdefault("finished_at", run_time + timedelta(seconds=5))
    return DjangoJobExecution.objects.create(
        job_id=job_id, run_time=run_time, status=status, node=node, **fields
    )


def node(identity: str, heartbeat_age: float = 0.0, stopped: bool = False) -> SchedulerNode:
    now = utcnow()
    return SchedulerNode.objects.create(
        id=identity,
        hostname=identity.split(":")[0],
        pid=int(identity.split(":")[1]),
        started_at=now - timedelta(hours=1),
        last_heartbeat=now - timedelta(seconds=heartbeat_age),
        stopped_at=now if stopped else None,
    )


@pytest.fixture
def staff(client, db):
    user = User.objects.create_user("ops", password="x", is_staff=True)
    client.force_login(user)
    return client


@pytest.fixture
def world(db):
    """Three jobs, their history, a removed job's history, and three scheduler processes."""
    job("active")
    job("held", next_run_time=None)
    job("broken")
    DjangoJob.objects.quarantine("broken", "its function is gone")
    for age, lateness, duration in ((300, 0.25, 1.5), (200, 0.5, 2.0), (100, 1.25, 4.5)):
        run("active", age, "succeeded", lateness=lateness, duration=duration)
    run("active", 50, "failed", lateness=0.5, duration=0.25)
    run("active", 400, "missed", lateness=90.0)  # how late it was given up: not a start
    run("active", 401, "missed", lateness=91.0)
    run("active", 402, "skipped")
    run("active", 10, "running", node="web:7:aaa")
    run("active", 5, "claimed", node="web:7:aaa")
    run("active", 4, "pending", node="")
    run("held", 1000, "interrupted", node="old:3:ccc")
    run("gone", 60, "succeeded", duration=1.0, lateness=0.5)  # a removed job's
    node("web:7:aaa", heartbeat_age=1)
    node("web:8:bbb", heartbeat_age=120)  # silent: presumed dead at the next look
    node("old:3:ccc", heartbeat_age=3000, stopped=True)


def scrape(client, **headers) -> dict[tuple, float]:
    response = client.get(URL, **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(response.content.decode())


def test_a_scrape_says_what_the_ledger_says(staff, world):
    found = scrape(staff)
    ledger = DjangoJobExecution.objects
    for job_id in ("active", "held", "broken"):
        for outcome in ("succeeded", "failed", "missed", "skipped", "interrupted"):
            assert (
                value(found, "metronome_job_fires_total", job_id=job_id, outcome=outcome)
                == ledger.filter(job_id=job_id, status=outcome).count()
            ), (job_id, outcome)
    assert value(found, "metronome_job_fires_total", job_id="active", outcome="succeeded") == 3
    # A removed job's history is not a series: only jobs that exist are.
    assert not [key for key in found if ("job_id", "gone") in key[1]]

    # Lateness: the fires that started (3 succeeded, 1 failed), not the missed ones.
    assert value(found, "metronome_job_lateness_seconds_count", job_id="active") == 4
    assert value(found, "metronome_job_lateness_seconds_sum", job_id="active") == 2.5
    assert value(found, "metronome_job_duration_seconds_count", job_id="active") == 4
    assert value(found, "metronome_job_duration_seconds_sum", job_id="active") == 8.25
    assert value(found, "metronome_job_lateness_seconds_count", job_id="held") == 0
    assert value(found, "metronome_job_duration_seconds_sum", job_id="broken") == 0

    latest = ledger.filter(job_id="active", status="succeeded").order_by("-finished_at").first()
    assert value(
        found, "metronome_job_last_success_timestamp_seconds", job_id="active"
    ) == pytest.approx(latest.finished_at.timestamp(), abs=1e-6)
    assert value(found, "metronome_job_last_success_timestamp_seconds", job_id="held") is None
    for outcome in ("succeeded", "failed", "missed", "skipped"):
        last = ledger.filter(job_id="active", status=outcome).order_by("-finished_at").first()
        assert value(
            found, "metronome_job_last_fire_timestamp_seconds", job_id="active", outcome=outcome
        ) == pytest.approx(last.finished_at.timestamp(), abs=1e-6)
    assert (
        value(
            found,
            "metronome_job_last_fire_timestamp_seconds",
            job_id="active",
            outcome="interrupted",
        )
        is None
    )

    active = DjangoJob.objects.get(pk="active")
    assert value(
        found, "metronome_job_next_fire_timestamp_seconds", job_id="active"
    ) == pytest.approx(active.next_run_time.timestamp(), abs=1e-6)
    assert value(found, "metronome_job_next_fire_timestamp_seconds", job_id="held") is None
    paused = {j: value(found, "metronome_job_paused", job_id=j) for j in ("active", "held")}
    assert paused == {"active": 0, "held": 1}
    assert value(found, "metronome_job_quarantined", job_id="broken") == 1
    assert value(found, "metronome_job_quarantined", job_id="active") == 0
    assert value(found, "metronome_job_orphaned", job_id="active") == 0
    assert (
        value(found, "metronome_job_info", job_id="active", name="Job active", source="runtime")
        == 1
    )

    # The processes not stopped; the stopped one is gone from the metrics.
    assert value(found, "metronome_scheduler_up", node="web:7:aaa") == 1
    assert value(found, "metronome_scheduler_up", node="web:8:bbb") == 0
    assert value(found, "metronome_scheduler_up", node="old:3:ccc") is None
    assert 1 <= value(found, "metronome_scheduler_heartbeat_age_seconds", node="web:7:aaa") < 60
    assert 120 <= value(found, "metronome_scheduler_heartbeat_age_seconds", node="web:8:bbb")
    assert value(found, "metronome_scheduler_running_fires", node="web:7:aaa") == 1
    assert value(found, "metronome_scheduler_claimed_fires", node="web:7:aaa") == 1
    assert value(found, "metronome_scheduler_running_fires", node="web:8:bbb") == 0
    assert value(found, "metronome_scheduler_info", node="web:8:bbb", hostname="web", pid="8") == 1
    assert value(found, "metronome_pending_fires") == 1


def test_the_clock_offset_of_each_process(staff, world):
    SchedulerNode.objects.filter(pk="web:7:aaa").update(clock_offset=-30.25)
    found = scrape(staff)
    assert value(found, "metronome_scheduler_clock_offset_seconds", node="web:7:aaa") == -30.25
    # CLOCK = "local": no offset measured, no sample.
    assert value(found, "metronome_scheduler_clock_offset_seconds", node="web:8:bbb") is None


def test_names_follow_prometheus_conventions(staff, world):
    families = list(text_string_to_metric_families(staff.get(URL).content.decode()))
    assert families
    for family in families:
        assert family.name.startswith("metronome_")
        assert family.documentation
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples)
        if "seconds" in family.name:
            assert family.name.endswith("_seconds") or family.type == "summary"
        # The job id is the only label that grows with the data (besides a process's
        # identity): outcome has five values, the rest describe the job or process.
        for sample in family.samples:
            assert set(sample.labels) <= {
                "kind",
                "job_id",
                "outcome",
                "node",
                "name",
                "source",
                "hostname",
                "pid",
                "quantile",
            }


def test_openmetrics_when_the_scraper_asks(staff, world):
    response = staff.get(URL, HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    text = response.content.decode()
    assert text.endswith("# EOF\n")
    assert "# UNIT metronome_job_duration_seconds seconds" in text
    found = samples(text, parse=openmetrics_families)
    assert value(found, "metronome_job_fires_total", job_id="active", outcome="missed") == 2
    assert value(found, "metronome_job_duration_seconds_sum", job_id="active") == 8.25


def test_a_prune_lowers_the_counters_not_the_latest_times(staff, world):
    earlier = scrape(staff)
    before = value(earlier, "metronome_job_fires_total", job_id="active", outcome="missed")
    deleted = retention.prune_older_than(connection.alias, utcnow(), timedelta(seconds=399))
    assert deleted
    later = scrape(staff)
    after = value(later, "metronome_job_fires_total", job_id="active", outcome="missed")
    # Counted over the retained ledger: Prometheus' rate() takes the drop for a reset.
    assert (before, after) == (2, 0)
    # The newest rows stay: the latest failure's time does not move.
    last_failed = {"job_id": "active", "outcome": "failed"}
    assert value(later, "metronome_job_last_fire_timestamp_seconds", **last_failed) == value(
        earlier, "metronome_job_last_fire_timestamp_seconds", **last_failed
    )


def test_the_queries_of_a_scrape_do_not_grow_with_the_jobs(db):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            families = metrics.collect(connection.alias, utcnow())
        assert families
        return len(captured)

    job("one")
    run("one", 10, "succeeded", duration=1.0, lateness=0.1)
    node("web:1:aaa")
    few = queries()
    for index in range(40):
        job(f"more-{index}")
        run(f"more-{index}", 10, "failed", duration=1.0, lateness=0.1)
        node(f"web:{index + 2}:aaa")
    assert queries() == few == 5


def test_open_incidents(staff, world):
    now = utcnow()
    incidents.open_incident(connection.alias, "active", IncidentKind.FAILING, now)
    resolved = incidents.open_incident(connection.alias, "held", IncidentKind.OVERDUE, now)
    incidents.resolve_incident(connection.alias, resolved, now)
    incidents.open_incident(connection.alias, "", IncidentKind.NO_SCHEDULER, now)
    found = scrape(staff)
    assert {kind: value(found, "metronome_incidents_open", kind=kind) for kind in IncidentKind} == {
        IncidentKind.OVERDUE: 0,
        IncidentKind.FAILING: 1,
        IncidentKind.NO_SCHEDULER: 1,
    }
    opened = Incident.objects.get(job_id="active", is_open=True).opened_at.timestamp()
    assert value(
        found, "metronome_job_incident_opened_timestamp_seconds", job_id="active", kind="failing"
    ) == pytest.approx(opened, abs=1e-6)
    # Only open incidents of a job are series.
    assert [
        key for key in found if key[0] == "metronome_job_incident_opened_timestamp_seconds"
    ] == [
        (
            "metronome_job_incident_opened_timestamp_seconds",
            (("job_id", "active"), ("kind", "failing")),
        )
    ]


def test_the_collector_serves_any_registry(world):
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(metrics.MetronomeCollector())
    found = samples(generate_latest(registry).decode())
    assert value(found, "metronome_job_fires_total", job_id="active", outcome="failed") == 1


# --- who may read them -----------------------------------------------------------------------


def test_anonymous_clients_are_refused(client, world):
    response = client.get(URL)
    assert response.status_code == 403
    assert response.content.decode() == (
        "Forbidden: log in as a staff user, or let the scraper in with "
        "METRONOME['METRICS_TOKEN'] (a bearer token) or METRONOME['METRICS_ALLOWED_IPS']."
    )
    assert "no-cache" in response["Cache-Control"]


def test_users_who_are_not_staff_are_refused(client, world):
    client.force_login(User.objects.create_user("someone", password="x"))
    response = client.get(URL)
    assert response.status_code == 403
    assert "this user is not staff" in response.content.decode()
    inactive = User.objects.create_user("former", password="x", is_staff=True, is_active=False)
    client.force_login(inactive)
    assert client.get(URL).status_code == 403


def test_only_reading(staff, world):
    assert staff.post(URL).status_code == 405
    assert staff.head(URL).status_code == 200


def test_the_bearer_token(client, world, settings):
    settings.METRONOME = {**settings.METRONOME, "METRICS_TOKEN": TOKEN}
    assert scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert scrape(client, HTTP_AUTHORIZATION=f"bearer  {TOKEN} ")

    missing = client.get(URL)
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="django-metronome metrics"'
    assert "'Authorization: Bearer <token>'" in missing.content.decode()

    for wrong in (f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}"):
        response = client.get(URL, HTTP_AUTHORIZATION=wrong)
        assert response.status_code == 401, wrong
    wrong = client.get(URL, HTTP_AUTHORIZATION="Bearer guess")
    assert wrong["WWW-Authenticate"].endswith('error="invalid_token"')
    assert wrong.content.decode().startswith("The bearer token is not")

    # Staff users still may, without the token.
    client.force_login(User.objects.create_user("ops", password="x", is_staff=True))
    assert scrape(client)


def test_allowed_addresses(client, world, settings):
    settings.METRONOME = {**settings.METRONOME, "METRICS_ALLOWED_IPS": ["10.0.0.0/8", "::1"]}
    assert scrape(client, REMOTE_ADDR="10.20.30.40")
    assert scrape(client, REMOTE_ADDR="::1")
    assert client.get(URL, REMOTE_ADDR="192.0.2.1").status_code == 403
    assert client.get(URL, REMOTE_ADDR="not an address").status_code == 403
    # A forwarded-for header is whatever the client says: never believed.
    assert (
        client.get(URL, REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.0.0.1").status_code == 403
    )


@pytest.mark.parametrize(
    ("address", "allowed", "expected"),
    [
        ("127.0.0.1", ["127.0.0.1"], True),
        ("::ffff:127.0.0.1", ["127.0.0.1"], True),  # a dual-stack server's IPv4 client
        ("127.0.0.2", ["127.0.0.1"], False),
        ("10.9.8.7", ["10.0.0.1/8"], True),  # host bits set: the network still
        ("fe80::1%eth0", ["fe80::/10"], True),
        ("2001:db8::1", ["10.0.0.0/8"], False),
        ("", ["0.0.0.0/0"], False),
    ],
)
def test_address_allowed(address, allowed, expected):
    assert access.address_allowed(address, access.parse_networks(allowed)) is expected


def check_ids(settings, **metronome) -> list[str]:
    settings.METRONOME = {"MIN_INTERVAL": 0.05, **metronome}
    return [m.id for m in run_checks() if m.id and m.id.startswith("django_metronome.E01")]


def test_checks_of_the_access_settings(settings):
    assert check_ids(settings, METRICS_TOKEN=TOKEN, METRICS_ALLOWED_IPS=["10.0.0.0/8"]) == []
    assert check_ids(settings, METRICS_TOKEN="  ") == ["django_metronome.E012"]
    assert check_ids(settings, METRICS_TOKEN=12345) == ["django_metronome.E012"]
    assert check_ids(settings, METRICS_ALLOWED_IPS="10.0.0.0/8") == ["django_metronome.E013"]
    assert check_ids(settings, METRICS_ALLOWED_IPS=["10.0.0.0/8", "intranet", 7]) == [
        "django_metronome.E013",
        "django_metronome.E013",
    ]
    (message,) = [
        m for m in run_checks() if m.id == "django_metronome.E013" and "'intranet'" in m.msg
    ]
    assert message.msg == (
        "METRONOME['METRICS_ALLOWED_IPS'] has 'intranet', which is not an IP address or network."
    )
    assert "host names are not resolved" in message.hint


# --- manage.py metronome metrics ----------------------------------------------------------------


def metronome(*args: str) -> str:
    out = io.StringIO()
    call_command("metronome", "metrics", *args, stdout=out)
    return out.getvalue()


def test_the_command_prints_what_the_view_serves(staff, world):
    printed = samples(metronome())
    served = scrape(staff)
    # Only the heartbeat ages moved between the two.
    moving = "metronome_scheduler_heartbeat_age_seconds"
    assert {k: v for k, v in printed.items() if k[0] != moving} == {
        k: v for k, v in served.items() if k[0] != moving
    }
    openmetrics = metronome("--openmetrics")
    assert openmetrics.endswith("# EOF\n")
    assert (
        value(
            samples(openmetrics, parse=openmetrics_families),
            "metronome_job_fires_total",
            job_id="active",
            outcome="succeeded",
        )
        == 3
    )


def test_the_command_as_json(world):
    data = json.loads(metronome("--json"))
    assert {
        "name": "metronome_job_fires_total",
        "labels": {"job_id": "active", "outcome": "failed"},
        "value": 1,
    } in data
    assert all(set(sample) == {"name", "labels", "value"} for sample in data)


def test_the_counter_reports_every_final_status():
    assert set(metrics.OUTCOMES) == FINAL_STATUSES
