"""
OpenTelemetry: each fire is a span, ``metronome.fire <job id>``, linked to
the span of the claim that took it (``metronome.claim``: the claiming process,
how many jobs and fires; recorded when the claim has committed).

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

from ...store.claims import ClaimBatch, Fire

#: Claims whose span a fire not started yet will link to, at most (a bound for fires
#: that never start here: handed back after a crash).
MAX_CLAIM_LINKS = 10_000


class Tracing:
    """One span per fire, from the ``django_metronome`` tracer, linked to its claim's."""

    def __init__(self) -> None:
        from opentelemetry import context, trace

        self._trace = trace
        self._context = context
        self._tracer = trace.get_tracer("django_metronome")
        #: The claim span's context of each claimed fire, by its ledger row.
        self._claims: dict[int, Any] = {}

    def claimed(self, node: str, batch: ClaimBatch) -> None:
        """A span for one claim (after its commit), for its fires' spans to link to."""
        fires = [fire for claimed in batch.claimed for fire in claimed.fires]
        span = self._tracer.start_span(
            "metronome.claim",
            attributes={
                "metronome.node": node,
                "metronome.jobs": len(batch.claimed),
                "metronome.fires": len(fires),
            },
        )
        span.end()
        if len(self._claims) > MAX_CLAIM_LINKS:
            self._claims.clear()
        context = span.get_span_context()
        for fire in fires:
            self._claims[fire.execution_id] = context

    def begin(self, job_id: str, fire: Fire, started: datetime) -> Any:
        claim = self._claims.pop(fire.execution_id, None)
        span = self._tracer.start_span(
            f"metronome.fire {job_id}",
            kind=self._trace.SpanKind.CONSUMER,
            links=[self._trace.Link(claim)] if claim is not None else None,
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
