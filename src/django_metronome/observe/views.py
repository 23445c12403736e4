"""
The metrics endpoint: mount it in the project's URLconf.

    from django_metronome.observe.views import metrics_view

    urlpatterns = [..., path("metronome/metrics", metrics_view)]

It answers Prometheus' text format, or OpenMetrics when the scraper asks for it
(``Accept: application/openmetrics-text``), to those :mod:`.access` lets in.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .access import refusal
from .metrics import exposition

__all__ = ["metrics_view"]


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """django-metronome's metrics, computed from the database now."""
    refused = refusal(request)
    if refused is not None:
        return refused
    body, content_type = exposition(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
