"""Sentry cron check-ins per fire: real sentry-sdk on one line, absent on the other."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta

import pytest

from django_metronome.loop import integrations
from django_metronome.loop.integrations.sentry import monitor_slug
from django_metronome.models import DjangoJobExecution, ExecutionStatus
from django_metronome.schedulers import BackgroundScheduler
from tests.conftest import wait_for
from tests.testapp import jobs

HAS_SENTRY = importlib.util.find_spec("sentry_sdk") is not None


def test_monitor_slugs():
    assert monitor_slug("Nightly report") == "nightly-report"
    assert monitor_slug("tests.jobs:send_mail#2") == "testsjobssend_mail2"
    assert monitor_slug("???") == "job"
    assert len(monitor_slug("x" * 300)) == 50


@pytest.mark.skipif(HAS_SENTRY, reason="sentry-sdk is installed on this line")
def test_without_sentry_nothing_happens(settings):
    settings.METRONOME = {"SENTRY_CRONS": True, "TRACING": False}
    assert integrations.active() == ()


@pytest.fixture
def envelopes():
    """sentry-sdk initialised with a transport that keeps the envelopes in this process."""
    sentry_sdk = pytest.importorskip("sentry_sdk")
    from sentry_sdk.transport import Transport

    captured: list = []

    class Keep(Transport):
        def capture_envelope(self, envelope):
            captured.append(envelope)

    sentry_sdk.init(
        dsn="https://public@sentry.invalid/1",
        transport=Keep,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    yield captured
    sentry_sdk.init()  # no DSN: an inactive client again


def check_ins(envelopes) -> list[dict]:
    return [
        item.payload.json
        for envelope in envelopes
        for item in envelope.items
        if item.type == "check_in"
    ]


def test_not_initialised_no_check_ins(settings):
    sentry_sdk = pytest.importorskip("sentry_sdk")
    sentry_sdk.init()
    settings.METRONOME = {"SENTRY_CRONS": True, "TRACING": False}
    assert integrations.active() == ()


@pytest.mark.django_db(transaction=True)
def test_each_fire_checks_in_then_ok_or_error(envelopes, settings):
    settings.METRONOME = {"SENTRY_CRONS": ["Nightly report", "fails"], "TRACING": False}
    scheduler = BackgroundScheduler(timezone=UTC)
    soon = datetime.now(UTC) + timedelta(seconds=0.2)
    scheduler.add_job(jobs.noop, "date", run_date=soon, id="Nightly report")
    scheduler.add_job(jobs.fail_loudly, "date", run_date=soon, id="fails")
    scheduler.add_job(jobs.noop, "date", run_date=soon, id="not chosen")
    scheduler.start()
    try:
        wait_for(lambda: len(check_ins(envelopes)) >= 4)
        wait_for(
            lambda: DjangoJobExecution.objects.filter(
                job_id="not chosen", status=ExecutionStatus.SUCCEEDED
            ).exists()
        )
    finally:
        scheduler.shutdown(wait=True, timeout=5)
    by_monitor: dict[str, list[dict]] = {}
    for check_in in check_ins(envelopes):
        by_monitor.setdefault(check_in["monitor_slug"], []).append(check_in)
    assert sorted(by_monitor) == ["fails", "nightly-report"]
    for slug, final in (("nightly-report", "ok"), ("fails", "error")):
        started, ended = by_monitor[slug]
        assert (started["status"], ended["status"]) == ("in_progress", final)
        assert started["check_in_id"] == ended["check_in_id"]
        assert ended["duration"] >= 0
