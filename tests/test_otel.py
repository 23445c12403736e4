"""OpenTelemetry spans per fire: the SDK's in-memory exporter on one line, absent on the other."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.executors.pool import ThreadPoolExecutor

from django_metronome.loop import integrations
from django_metronome.schedulers import BackgroundScheduler
from tests.conftest import wait_for
from tests.testapp import jobs

HAS_OTEL = importlib.util.find_spec("opentelemetry") is not None


@pytest.mark.skipif(HAS_OTEL, reason="opentelemetry is installed on this line")
def test_without_opentelemetry_nothing_happens(settings):
    settings.METRONOME = {"TRACING": True}
    assert integrations.active() == ()


@pytest.fixture(scope="module")
def exporter():
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    return memory


def test_tracing_can_be_turned_off(settings, exporter):
    settings.METRONOME = {"TRACING": False}
    assert integrations.active() == ()


class OtherPool(ThreadPoolExecutor):
    """An executor of APScheduler's own kind: fires go through its submit_job."""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("executor", [None, "other"], ids=["ours", "apscheduler-submit"])
def test_each_fire_is_a_span(exporter, settings, executor):
    from opentelemetry.trace import StatusCode

    exporter.clear()
    settings.METRONOME = {"TRACING": True}
    options = {} if executor is None else {"executors": {"default": OtherPool(2)}}
    scheduler = BackgroundScheduler(timezone=UTC, **options)
    soon = datetime.now(UTC) + timedelta(seconds=0.2)
    scheduler.add_job(jobs.noop, "date", run_date=soon, id="ok")
    scheduler.add_job(jobs.fail_loudly, "date", run_date=soon, id="fails")
    scheduler.start()
    try:
        wait_for(lambda: len([s for s in exporter.get_finished_spans() if "fire" in s.name]) >= 2)
    finally:
        scheduler.shutdown(wait=True, timeout=5)
    spans = {
        span.attributes["metronome.job_id"]: span
        for span in exporter.get_finished_spans()
        if span.name.startswith("metronome.fire")
    }
    assert sorted(spans) == ["fails", "ok"]
    ok, fails = spans["ok"], spans["fails"]
    assert ok.name == "metronome.fire ok"
    assert ok.attributes["metronome.outcome"] == "succeeded"
    assert ok.attributes["metronome.run_time"] == soon.isoformat()
    assert 0 <= ok.attributes["metronome.lateness_s"] < 30
    assert ok.attributes["metronome.execution_id"] > 0
    assert fails.attributes["metronome.outcome"] == "failed"
    assert fails.status.status_code == StatusCode.ERROR
    assert [event.name for event in fails.events] == ["exception"]
    # Each fire's span links to the span of the claim that took it.
    claims = {
        span.context.span_id: span
        for span in exporter.get_finished_spans()
        if span.name == "metronome.claim"
    }
    for span in (ok, fails):
        [link] = span.links
        claim = claims[link.context.span_id]
        assert claim.attributes["metronome.node"] == scheduler.identity
        assert claim.attributes["metronome.fires"] >= 1
