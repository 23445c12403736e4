"""
The admin: pause with a note (who, when and why shown until resumed), and each
job's history of changes on its page.
"""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from django_metronome.api import add_job
from django_metronome.models import DjangoJob, JobChange

pytestmark = pytest.mark.django_db

JOBS_URL = reverse("admin:django_metronome_djangojob_changelist")


def job_url(job_id: str, view: str = "change") -> str:
    return reverse(f"admin:django_metronome_djangojob_{view}", args=(quote(job_id),))


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def job():
    add_job("tests.testapp.jobs:noop", "interval", hours=1, id="export", name="Export")
    return DjangoJob.objects.get(pk="export")


def test_the_pause_button_takes_a_note_and_the_pages_show_who_when_and_why(
    admin_client, admin_user, job
):
    page = admin_client.get(job_url(job.pk)).content.decode()
    assert 'name="note" id="metronome-pause-note" form="metronome-pause-form"' in page

    response = admin_client.post(job_url(job.pk, "pause"), {"note": "Supplier outage"})
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.pause_note, job.paused_by) == ("Supplier outage", admin_user.get_username())

    page = admin_client.get(job_url(job.pk)).content.decode()
    assert f"by {admin_user.get_username()}" in page
    assert "Supplier outage" in page
    listing = admin_client.get(JOBS_URL).content.decode()
    assert 'class="metronome-pause-note"' in listing
    assert "Supplier outage" in listing

    admin_client.post(job_url(job.pk, "resume"))
    assert "Supplier outage" not in admin_client.get(JOBS_URL).content.decode()


def test_pause_until_and_the_bulk_action_take_the_note(admin_client, job):
    response = admin_client.post(
        job_url(job.pk, "pause_until"),
        {"until": "2099-01-01T09:00", "zone": "UTC", "note": "Until the new year"},
    )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.pause_note == "Until the new year"
    admin_client.post(job_url(job.pk, "resume"))
    admin_client.post(
        JOBS_URL,
        {"action": "pause", "_selected_action": [job.pk], "index": "0", "note": "Freeze"},
    )
    job.refresh_from_db()
    assert (job.is_paused, job.pause_note) == (True, "Freeze")


def test_the_job_page_shows_its_history_of_changes(admin_client, admin_user, job):
    admin_client.post(job_url(job.pk, "pause"), {"note": "outage"})
    admin_client.post(job_url(job.pk, "resume"))
    admin_client.post(job_url(job.pk, "run"))
    changes = list(JobChange.objects.filter(job_id=job.pk).order_by("at", "id"))
    assert [(c.action, c.origin) for c in changes] == [
        ("added", "api"),
        ("paused", "admin"),
        ("resumed", "admin"),
        ("run_now", "admin"),
    ]
    assert {c.actor for c in changes[1:]} == {admin_user.get_username()}

    page = admin_client.get(job_url(job.pk)).content.decode()
    assert "History of changes" in page
    section = page[page.index("History of changes") :]
    # Newest first: run now, resumed, paused (with its note), added.
    order = [section.index(word) for word in ("run now", "resumed", "outage", "added")]
    assert order == sorted(order)


def test_deleting_a_job_in_the_admin_is_recorded(admin_client, admin_user, job):
    response = admin_client.post(job_url(job.pk, "delete"), {"post": "yes"})
    assert response.status_code == 302
    removed = JobChange.objects.get(job_id=job.pk, action="removed")
    assert (removed.origin, removed.actor) == ("admin", admin_user.get_username())
    assert removed.before["name"] == "Export"
