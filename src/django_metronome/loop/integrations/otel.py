"""
OpenTelemetry: each fire is a span, ``metronome.fire <job id>``.

Only when opentelemetry-api is installed (and ``TRACING`` is on); without an
SDK configured the API's spans cost next to nothing. The span is current while
the job runs, so the job's own spans are its children. Attributes:
``metronome.job_id``, ``metronome.run_time`` (the nominal time, ISO 8601),
``metronome.lateness_s`` (start minus nominal time), ``metronome.execution_id``
(the ledger row, which the claim wrote) and ``metronome.outcome``
(``succeeded`` or ``failed``; a failure also records the exception and an
error status).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...store.claims import Fire


class Tracing:
    """One span per fire, from the ``django_metronome`` tracer."""

    def __init__(self) -> None:
        from opentelemetry import context, trace

        self._trace = trace
        self._context = context
        self._tracer = trace.get_tracer("django_metronome")

    def begin(self, job_id: str, fire: Fire, started: datetime) -> Any:
        span = self._tracer.start_span(
            f"metronome.fire {job_id}",
            kind=self._trace.SpanKind.CONSUMER,
            attributes={
                "metronome.job_id": job_id,
                "metronome.run_time": fire.run_time.isoformat(),
                "metronome.lateness_s": (started - fire.run_time).total_seconds(),
                "metronome.execution_id": fire.execution_id,
            },
        )
        token = self._context.attach(self._trace.set_span_in_context(span))
        return (span, token)

    def end(self, token: Any, exc: BaseException | None, finished: datetime) -> None:
        span, attached = token
        try:
            if exc is None:
                span.set_attribute("metronome.outcome", "succeeded")
            else:
                span.set_attribute("metronome.outcome", "failed")
                span.record_exception(exc)
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, str(exc)))
        finally:
            self._context.detach(attached)
            span.end()


def tracing() -> Tracing | None:
    """Spans for fires, if the OpenTelemetry API is installed."""
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return None
    return Tracing()
