"""Open incidents on the admin's dashboard and on the job's page; resolved ones are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from django_metronome.models import DjangoJob, Incident, IncidentKind

pytestmark = pytest.mark.django_db

DASHBOARD_URL = reverse("admin:django_metronome_dashboard")


@pytest.fixture
def report() -> DjangoJob:
    return DjangoJob.objects.create(
        id="nightly report", func_ref="tests.testapp.jobs:noop", state={}, next_run_time=None
    )


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_open_incidents_show_on_the_dashboard_and_the_job_page(admin_client, report):
    now = datetime.now(UTC)
    Incident.objects.create(
        job_id=report.pk,
        kind=IncidentKind.FAILING,
        opened_at=now - timedelta(minutes=5),
        detail="The last 3 runs failed; at most 2 in a row are expected.",
    )
    Incident.objects.create(job_id="", kind=IncidentKind.NO_SCHEDULER, opened_at=now)
    Incident.objects.create(
        job_id=report.pk,
        kind=IncidentKind.OVERDUE,
        opened_at=now - timedelta(days=2),
        resolved_at=now - timedelta(days=1),
        is_open=None,
        detail="resolved long ago",
    )
    dashboard = page(admin_client, DASHBOARD_URL)
    assert 'id="incidents"' in dashboard
    assert "The last 3 runs failed; at most 2 in a row are expected." in dashboard
    assert "no scheduler alive" in dashboard
    assert "5 min ago" in dashboard
    assert "resolved long ago" not in dashboard
    job_page = reverse("admin:django_metronome_djangojob_change", args=(quote(report.pk),))
    assert f'href="{job_page}"' in dashboard

    content = page(admin_client, job_page)
    assert "metronome-incident" in content
    assert "<strong>Open incident:</strong> failing, opened 5 min ago." in content
    assert "The last 3 runs failed" in content
    assert "resolved long ago" not in content and "no scheduler alive" not in content


def test_no_incident_no_panel(admin_client, report):
    assert 'id="incidents"' not in page(admin_client, DASHBOARD_URL)
    job_page = reverse("admin:django_metronome_djangojob_change", args=(quote(report.pk),))
    assert "metronome-incident" not in page(admin_client, job_page)
