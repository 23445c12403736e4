"""
The admin pages, their actions and their permissions, with Django's test client.

Jobs are stored through the job store, as a scheduler would store them; ledger
rows and scheduler processes are written directly.

The clock stands still at ``NOW`` in every test (``frozen_clock``; a test that
needs time to pass moves it): the pages judge "overdue", "alive" and "in the
future" by the clock, the tests compare them with fixed dates, and the test
client's session must not expire under a test that travels to another day.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_metronome.models import (
    DjangoJob,
    DjangoJobExecution,
    ExecutionStatus,
    JobSource,
    SchedulerNode,
)
from django_metronome.store import taskfires
from django_metronome.triggers import CrontabTrigger
from tests.testapp import jobs

pytestmark = pytest.mark.django_db

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

JOBS_URL = reverse("admin:django_metronome_djangojob_changelist")
RUNS_URL = reverse("admin:django_metronome_djangojobexecution_changelist")
NODES_URL = reverse("admin:django_metronome_schedulernode_changelist")
DASHBOARD_URL = reverse("admin:django_metronome_dashboard")


def job_url(job_id: str, view: str = "change") -> str:
    return reverse(f"admin:django_metronome_djangojob_{view}", args=(quote(job_id),))


def run_url(run_id: int) -> str:
    return reverse("admin:django_metronome_djangojobexecution_change", args=(run_id,))


@pytest.fixture(autouse=True)
def frozen_clock():
    """Every test of the module runs at ``NOW``, from its first fixture on."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Users are made in most tests: hash their passwords cheaply."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def add_job(store, make_job):
    """Store a job as a scheduler would; return its row."""

    def add(job_id, trigger, *, next_run_time=None, name=None, func=jobs.noop, **options):
        if next_run_time is None and trigger is not None:
            next_run_time = trigger.get_next_fire_time(None, NOW)
        store.add_job(
            make_job(
                func,
                id=job_id,
                name=name or job_id,
                trigger=trigger,
                next_run_time=next_run_time,
                **options,
            )
        )
        return DjangoJob.objects.get(pk=job_id)

    return add


@pytest.fixture
def seoul_job(add_job):
    """The brief's campaign job: 08:00 every day in Seoul."""
    return add_job(
        "check_campaign_status",
        CronTrigger(hour=8, timezone=SEOUL),
        next_run_time=datetime(2026, 11, 26, 8, 0, tzinfo=SEOUL),
        name="Check campaign status",
    )


def record(job, run_time, status=ExecutionStatus.SUCCEEDED, **fields):
    fields.setdefault("duration", timedelta(milliseconds=420))
    fields.setdefault("lateness", timedelta(milliseconds=12))
    fields.setdefault("node", "web-1:4242:abcdef")
    return DjangoJobExecution.objects.create(
        job_id=job if isinstance(job, str) else job.pk,
        job_name="" if isinstance(job, str) else job.name,
        run_time=run_time,
        status=status,
        **fields,
    )


def live_node(**fields):
    now = datetime.now(UTC)
    fields.setdefault("id", "web-1:4242:abcdef")
    return SchedulerNode.objects.create(
        hostname="web-1", pid=4242, started_at=now, last_heartbeat=now, **fields
    )


def staff(*codenames: str, username: str = "operator") -> User:
    """A staff user who may see the app's pages, plus the given permissions."""
    user = User.objects.create_user(username, password="pw", is_staff=True)
    wanted = {"view_djangojob", "view_djangojobexecution", "view_schedulernode", *codenames}
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_metronome", codename__in=wanted)
    )
    return user


def client_for(user: User, **options) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def text(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def action_names(client: Client) -> set[str]:
    """The actions the jobs changelist offers to the client's user."""
    form = client.get(JOBS_URL).context["action_form"]
    if form is None:
        return set()
    return {name for name, _ in form.fields["action"].choices} - {""}


def action_post(action: str, *ids: str, **extra) -> dict:
    return {"action": action, "_selected_action": list(ids), "index": "0", **extra}


# --- every page renders ---------------------------------------------------------------


def test_every_page_renders_for_a_superuser(admin_client, seoul_job, add_job):
    add_job("tick", IntervalTrigger(minutes=5, timezone=UTC))
    run = record(seoul_job, NOW, ExecutionStatus.FAILED, exception="RuntimeError: boom")
    node = live_node()
    app_index = reverse("admin:app_list", args=["django_metronome"])

    pages = [
        reverse("admin:index"),
        app_index,
        JOBS_URL,
        job_url(seoul_job.pk),
        job_url(seoul_job.pk, "pause_until"),
        job_url(seoul_job.pk, "delete"),
        job_url(seoul_job.pk, "history"),
        RUNS_URL,
        run_url(run.pk),
        NODES_URL,
        reverse("admin:django_metronome_schedulernode_change", args=(quote(node.pk),)),
        DASHBOARD_URL,
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url

    assert DASHBOARD_URL in text(admin_client.get(app_index))
    assert DASHBOARD_URL in text(admin_client.get(JOBS_URL))


def test_jobs_cannot_be_added_or_edited(admin_client, seoul_job):
    assert admin_client.get(reverse("admin:django_metronome_djangojob_add")).status_code == 403
    response = admin_client.post(job_url(seoul_job.pk), {"name": "renamed"})
    assert response.status_code == 403
    assert DjangoJob.objects.get().name == "Check campaign status"
    run = record(seoul_job, NOW)
    assert admin_client.post(run_url(run.pk), {"status": "failed"}).status_code == 403
    assert (
        admin_client.get(reverse("admin:django_metronome_djangojobexecution_add")).status_code
        == 403
    )


# --- the job list ------------------------------------------------------------------------


def row_of(page: str, job_id: str) -> str:
    """The HTML of the changelist row of a job."""
    rows = re.findall(r"<tr.*?</tr>", page, re.S)
    matching = [row for row in rows if f'value="{job_id}"' in row]
    assert len(matching) == 1, f"no single row for {job_id}"
    return matching[0]


def test_job_list_columns(admin_client, seoul_job, add_job):
    record(seoul_job, NOW - timedelta(days=1), ExecutionStatus.SUCCEEDED)
    record(seoul_job, NOW, ExecutionStatus.FAILED)
    add_job("tick", IntervalTrigger(minutes=5, timezone=UTC), name="Tick")
    paused = add_job("paused", CronTrigger(hour=3, timezone=NEW_YORK))
    paused.pause()

    page = text(admin_client.get(JOBS_URL))

    seoul = row_of(page, "check_campaign_status")
    assert "Check campaign status" in seoul
    assert "check_campaign_status" in seoul
    assert "At 08:00 every day (Asia/Seoul)" in seoul
    assert "2026-11-26 08:00 +09:00" in seoul
    # The latest run's badge, linking to it.
    assert 'class="metronome-badge metronome-failed"' in seoul
    latest = DjangoJobExecution.objects.get(status="failed")
    assert run_url(latest.pk) in seoul
    assert "metronome-succeeded" not in seoul

    tick = row_of(page, "tick")
    assert "Every 5 minutes (UTC)" in tick
    assert "never run" in tick
    assert "active" in tick

    paused_row = row_of(page, "paused")
    assert "America/New_York" in paused_row
    assert ">paused<" in paused_row


def test_job_list_shows_paused_until_quarantined_and_orphaned(admin_client, add_job):
    until = add_job("until", CronTrigger(hour=8, timezone=SEOUL))
    until.pause(datetime(2026, 12, 1, 9, 0, tzinfo=SEOUL))
    add_job("broken", CronTrigger(hour=8, timezone=UTC))
    DjangoJob.objects.quarantine("broken", "ImportError: No module named 'gone'")
    add_job("orphan", CronTrigger(hour=8, timezone=UTC))
    DjangoJob.objects.filter(pk="orphan").update(source=JobSource.CODE, orphaned_at=NOW)

    page = text(admin_client.get(JOBS_URL))

    assert "until 2026-12-01 09:00 +09:00" in row_of(page, "until")
    broken = row_of(page, "broken")
    assert "metronome-quarantined" in broken
    assert "No module named" in broken
    assert "metronome-orphaned" in row_of(page, "orphan")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"paused": "yes"}, {"paused", "until"}),
        ({"paused": "until"}, {"until"}),
        ({"paused": "no"}, {"ok", "failing", "broken", "orphan"}),
        ({"last": "failed"}, {"failing"}),
        ({"last": "succeeded"}, {"ok"}),
        ({"last": "never"}, {"paused", "until", "broken", "orphan"}),
        ({"quarantined": "yes"}, {"broken"}),
        ({"orphaned": "yes"}, {"orphan"}),
        ({"orphaned": "no", "quarantined": "no", "paused": "no"}, {"ok", "failing"}),
        ({"source": "code"}, {"orphan"}),
        ({"q": "fail"}, {"failing"}),
        ({"q": "tests.testapp.jobs:fail_loudly"}, {"failing"}),
        ({"next": "overdue"}, {"ok"}),
    ],
)
def test_job_list_filters_and_search(admin_client, add_job, query, expected):
    ok = add_job("ok", CronTrigger(hour=8, timezone=UTC), next_run_time=NOW - timedelta(hours=1))
    record(ok, NOW - timedelta(hours=1))
    failing = add_job("failing", CronTrigger(hour=9, timezone=UTC), func=jobs.fail_loudly)
    record(failing, NOW - timedelta(days=1), ExecutionStatus.SUCCEEDED)
    record(failing, NOW - timedelta(hours=2), ExecutionStatus.FAILED)
    add_job("paused", CronTrigger(hour=8, timezone=UTC)).pause()
    add_job("until", CronTrigger(hour=8, timezone=UTC)).pause(NOW + timedelta(days=1))
    add_job("broken", CronTrigger(hour=8, timezone=UTC))
    DjangoJob.objects.quarantine("broken", "gone")
    add_job("orphan", CronTrigger(hour=8, timezone=UTC))
    DjangoJob.objects.filter(pk="orphan").update(source=JobSource.CODE, orphaned_at=NOW)

    response = admin_client.get(JOBS_URL, query)

    assert response.status_code == 200
    assert {job.pk for job in response.context["cl"].result_list} == expected


# --- a job's page ------------------------------------------------------------------------


def test_job_page_shows_next_fires_in_the_jobs_zone(admin_client, seoul_job):
    page = text(admin_client.get(job_url(seoul_job.pk)))

    fires = re.findall(r'<td class="metronome-time">(2026-1[12]-\d\d \d\d:\d\d \+09:00)</td>', page)
    assert fires == [
        f"2026-{day} 08:00 +09:00"
        for day in [
            "11-26",
            "11-27",
            "11-28",
            "11-29",
            "11-30",
            "12-01",
            "12-02",
            "12-03",
            "12-04",
            "12-05",
        ]
    ]
    assert "2026-11-25 23:00:00 UTC" in page
    assert "next run <strong" in page and "2026-11-26 08:00 +09:00" in page


def test_job_page_shows_dst_changes(admin_client, add_job):
    job = add_job("nightly", CrontabTrigger("30 2 * * *", "America/New_York"))
    with time_machine.travel(datetime(2026, 3, 5, 12, tzinfo=UTC), tick=False):
        page = text(admin_client.get(job_url(job.pk)))

    fires = re.findall(
        r'<td class="metronome-time">(2026-03-\d\d \d\d:\d\d [+-]\d\d:\d\d)</td>', page
    )
    assert fires[:5] == [
        "2026-03-06 02:30 -05:00",
        "2026-03-07 02:30 -05:00",
        "2026-03-08 03:00 -04:00",  # 02:30 does not exist that night: the first instant after
        "2026-03-09 02:30 -04:00",
        "2026-03-10 02:30 -04:00",
    ]
    assert page.count('class="metronome-dst"') == 1
    assert "UTC offset changes from -05:00 to -04:00" in page
    assert "EST" in page and "EDT" in page


def test_job_page_shows_recent_runs_and_read_only_state(admin_client, seoul_job):
    runs = [record(seoul_job, NOW - timedelta(days=day)) for day in range(25)]
    record("another", NOW)

    page = text(admin_client.get(job_url(seoul_job.pk)))

    shown = [int(pk) for pk in re.findall(r'<td><a href="[^"]+">#(\d+)</a></td>', page)]
    assert shown == [run.pk for run in runs[:20]]
    assert f"{RUNS_URL}?job=check_campaign_status" in page
    # The state is pretty-printed JSON, read-only; the function is shown, not editable.
    assert '<pre class="metronome-json">' in page
    assert "&quot;timezone&quot;: &quot;Asia/Seoul&quot;" in page
    assert "tests.testapp.jobs:noop" in page
    assert 'name="func_ref"' not in page and 'name="state"' not in page


def test_quarantined_job_shows_its_reason_and_cannot_run(admin_client, seoul_job):
    DjangoJob.objects.quarantine(seoul_job.pk, "ImportError: No module named 'campaigns'")

    page = text(admin_client.get(job_url(seoul_job.pk)))

    assert "metronome-quarantine" in page
    assert "ImportError: No module named &#x27;campaigns&#x27;" in page
    assert 'id="metronome-run-now"' not in page
    response = admin_client.post(job_url(seoul_job.pk, "run"), follow=True)
    assert DjangoJobExecution.objects.count() == 0
    assert any("quarantined" in message for message in messages_of(response))


def test_a_row_edited_to_a_refused_function_shows_as_refused_at_once(admin_client, seoul_job):
    DjangoJob.objects.filter(pk=seoul_job.pk).update(func_ref="tests.testapp.attack:os.system")

    page = text(admin_client.get(reverse("admin:django_metronome_djangojob_changelist")))

    assert "refused" in page
    assert "is the module &#x27;os&#x27;" in page


def test_orphaned_job_says_so_and_can_be_removed(admin_client, seoul_job):
    DjangoJob.objects.filter(pk=seoul_job.pk).update(source=JobSource.CODE, orphaned_at=NOW)
    record(seoul_job, NOW)

    page = text(admin_client.get(job_url(seoul_job.pk)))
    assert "metronome-orphan" in page
    assert job_url(seoul_job.pk, "delete") in page

    confirm = text(admin_client.get(job_url(seoul_job.pk, "delete")))
    assert "run history (1 run)" in confirm
    assert "is kept" in confirm
    response = admin_client.post(job_url(seoul_job.pk, "delete"), {"post": "yes"})
    assert response.status_code == 302
    assert not DjangoJob.objects.exists()
    assert DjangoJobExecution.objects.filter(job_id=seoul_job.pk).count() == 1


# --- run now -----------------------------------------------------------------------------


def test_run_now_writes_one_pending_manual_row_and_keeps_the_schedule(admin_client, seoul_job):
    live_node()
    before = DjangoJob.objects.get().next_run_time

    response = admin_client.post(job_url(seoul_job.pk, "run"))

    assert response.status_code == 302
    assert response.url == job_url(seoul_job.pk)
    (run,) = DjangoJobExecution.objects.all()
    assert (run.status, run.manual, run.job_id) == ("pending", True, seoul_job.pk)
    assert "admin" in run.reason
    assert DjangoJob.objects.get().next_run_time == before
    page = admin_client.get(response.url)
    (message,) = messages_of(page)
    assert f'<a href="{run_url(run.pk)}">run {run.pk}</a>' in message
    assert "poll interval" in message
    assert LogEntry.objects.get().change_message == f"Asked for a run now (run {run.pk})."


def test_run_now_says_when_no_scheduler_can_take_it(admin_client, seoul_job, frozen_clock):
    response = admin_client.post(job_url(seoul_job.pk, "run"), follow=True)
    assert any("No scheduler process is running" in m for m in messages_of(response))

    frozen_clock.shift(1)  # a run's time is when it was asked for: ask a second later
    live_node(declared=[])
    DjangoJob.objects.filter(pk=seoul_job.pk).update(source=JobSource.CODE)
    response = admin_client.post(job_url(seoul_job.pk, "run"), follow=True)
    assert any("declares this job" in m for m in messages_of(response))
    assert DjangoJobExecution.objects.filter(status="pending").count() == 2


def test_run_now_action_on_the_changelist(admin_client, seoul_job, add_job):
    add_job("tick", IntervalTrigger(minutes=5, timezone=UTC))
    add_job("other", IntervalTrigger(minutes=5, timezone=UTC))

    response = admin_client.post(JOBS_URL, action_post("run_now", seoul_job.pk, "tick"))

    assert response.status_code == 302
    rows = DjangoJobExecution.objects.order_by("job_id")
    assert [(row.job_id, row.status, row.manual) for row in rows] == [
        ("check_campaign_status", "pending", True),
        ("tick", "pending", True),
    ]


def test_pending_run_page_says_it_waits(admin_client, seoul_job, settings):
    settings.APSCHEDULER_RUN_NOW_TIMEOUT = 15
    run = seoul_job.run_now()
    page = text(admin_client.get(run_url(run.pk)))
    assert "Pending for" in page
    assert "No scheduler process is running" in page

    DjangoJobExecution.objects.filter(pk=run.pk).update(
        run_time=datetime.now(UTC) - timedelta(minutes=1)
    )
    page = text(admin_client.get(run_url(run.pk)))
    assert "Still pending after 1 min" in page


def test_run_now_needs_post(admin_client, seoul_job):
    assert admin_client.get(job_url(seoul_job.pk, "run")).status_code == 405
    assert admin_client.get(job_url(seoul_job.pk, "pause")).status_code == 405
    assert admin_client.get(job_url(seoul_job.pk, "resume")).status_code == 405
    assert not DjangoJobExecution.objects.exists()


def test_actions_on_a_missing_job_redirect(admin_client):
    response = admin_client.post(job_url("nope", "run"))
    assert response.status_code == 302
    assert not DjangoJobExecution.objects.exists()


# --- pause, pause until, resume ---------------------------------------------------------------


def test_pause_button_and_action(admin_client, seoul_job, add_job):
    response = admin_client.post(job_url(seoul_job.pk, "pause"))
    assert response.status_code == 302
    assert DjangoJob.objects.get(pk=seoul_job.pk).next_run_time is None
    assert DjangoJob.objects.get(pk=seoul_job.pk).paused_until is None

    add_job("tick", IntervalTrigger(minutes=5, timezone=UTC))
    admin_client.post(JOBS_URL, action_post("pause", "tick"))
    assert DjangoJob.objects.get(pk="tick").next_run_time is None


def test_pause_until_is_read_in_the_chosen_zone(admin_client, seoul_job):
    url = job_url(seoul_job.pk, "pause_until")
    # The job's page offers the job's zone first, then the admin's (here UTC).
    page = text(admin_client.get(job_url(seoul_job.pk)))
    assert '<option value="Asia/Seoul" selected>' in page
    assert "UTC (your current time zone)" in page

    response = admin_client.post(url, {"until": "2026-12-01T09:00", "zone": "Asia/Seoul"})

    assert response.status_code == 302
    job = DjangoJob.objects.get()
    assert job.next_run_time is None
    assert job.paused_until == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    message = messages_of(admin_client.get(response.url))[0]
    assert "until 2026-12-01 09:00 +09:00" in message

    admin_client.post(url, {"until": "2026-12-01T09:00", "zone": "UTC"})
    assert DjangoJob.objects.get().paused_until == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("until", "zone", "error"),
    [
        ("2020-01-01T00:00", "UTC", "Choose a time in the future."),
        ("2099-03-08T02:30", "America/New_York", "may be ambiguous or it may not exist"),
        ("2099-11-01T01:30", "America/New_York", "may be ambiguous or it may not exist"),
        ("tomorrow", "UTC", "Enter a valid date/time."),
        ("2099-01-01T00:00", "Mars/Olympus", "Select a valid choice."),
    ],
)
def test_pause_until_refuses_a_bad_time(admin_client, add_job, until, zone, error):
    job = add_job("nightly", CrontabTrigger("30 2 * * *", "America/New_York"))
    response = admin_client.post(job_url(job.pk, "pause_until"), {"until": until, "zone": zone})
    assert response.status_code == 200
    assert error in text(response)
    assert DjangoJob.objects.get().next_run_time is not None


def test_pause_until_action_asks_for_the_time_then_pauses(admin_client, seoul_job, add_job):
    add_job("tick", IntervalTrigger(minutes=5, timezone=SEOUL))

    form = admin_client.post(JOBS_URL, action_post("pause_until", seoul_job.pk, "tick"))
    assert form.status_code == 200
    assert "Pause until a date and time" in text(form)
    assert DjangoJob.objects.filter(next_run_time__isnull=True).count() == 0
    # Both jobs are in Seoul: that zone is offered first.
    assert '<option value="Asia/Seoul" selected>' in text(form)

    data = action_post("pause_until", seoul_job.pk, "tick", apply="yes")
    data.update(until="2026-12-24T18:00", zone="Asia/Seoul")
    response = admin_client.post(JOBS_URL, data)

    assert response.status_code == 302
    assert set(DjangoJob.objects.values_list("paused_until", flat=True)) == {
        datetime(2026, 12, 24, 9, 0, tzinfo=UTC)
    }


def test_resume_computes_the_next_run(admin_client, seoul_job):
    seoul_job.pause(datetime(2027, 1, 1, tzinfo=UTC))
    response = admin_client.post(job_url(seoul_job.pk, "resume"), follow=True)
    job = DjangoJob.objects.get()
    assert job.next_run_time == datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    assert job.paused_until is None
    assert any("next run 2026-11-26 08:00 +09:00" in m for m in messages_of(response))


def test_resume_action_leaves_running_jobs_and_ended_schedules(admin_client, seoul_job, add_job):
    before = seoul_job.next_run_time
    done = add_job(
        "done",
        CronTrigger(hour=8, end_date=datetime(2026, 1, 1, tzinfo=UTC), timezone=UTC),
        next_run_time=datetime(2025, 12, 31, 8, tzinfo=UTC),
    )
    done.pause()

    response = admin_client.post(JOBS_URL, action_post("resume", seoul_job.pk, "done"), follow=True)

    assert DjangoJob.objects.get(pk=seoul_job.pk).next_run_time == before
    assert DjangoJob.objects.get(pk="done").next_run_time is None
    said = " ".join(messages_of(response))
    assert "No fire is left" in said and "Not paused" in said


# --- permissions and CSRF ----------------------------------------------------------------------


BUTTONS = {
    "run": 'id="metronome-run-now"',
    "pause": 'id="metronome-pause"',
    "pause_until": 'id="metronome-pause-until"',
}


def test_staff_without_permissions_see_pages_but_no_buttons(seoul_job):
    record(seoul_job, NOW)
    client = client_for(staff())

    for url in [JOBS_URL, job_url(seoul_job.pk), RUNS_URL, DASHBOARD_URL, NODES_URL]:
        assert client.get(url).status_code == 200, url
    page = text(client.get(job_url(seoul_job.pk)))
    for button in [*BUTTONS.values(), 'id="metronome-resume"']:
        assert button not in page
    assert action_names(client) == set()


@pytest.mark.parametrize(
    ("codename", "buttons", "actions"),
    [
        ("run_djangojob", {"run"}, {"run_now", "backfill"}),
        ("pause_djangojob", {"pause", "pause_until"}, {"pause", "pause_until"}),
        ("resume_djangojob", set(), {"resume"}),
        ("delete_djangojob", set(), {"delete_selected"}),
    ],
)
def test_each_permission_shows_its_own_buttons(seoul_job, codename, buttons, actions):
    client = client_for(staff(codename))
    page = text(client.get(job_url(seoul_job.pk)))
    assert {name for name, html in BUTTONS.items() if html in page} == buttons
    assert action_names(client) == actions


def test_resume_button_shows_on_a_paused_job_with_the_permission(seoul_job):
    seoul_job.pause()
    assert 'id="metronome-resume"' in text(
        client_for(staff("resume_djangojob")).get(job_url(seoul_job.pk))
    )
    assert 'id="metronome-resume"' not in text(
        client_for(staff(username="viewer")).get(job_url(seoul_job.pk))
    )


@pytest.mark.parametrize(
    ("view", "data", "codename"),
    [
        ("run", {}, "run_djangojob"),
        ("pause", {}, "pause_djangojob"),
        ("pause_until", {"until": "2099-01-01T00:00", "zone": "UTC"}, "pause_djangojob"),
        ("resume", {}, "resume_djangojob"),
    ],
)
def test_buttons_refuse_a_post_without_the_permission(seoul_job, view, data, codename):
    seoul_job.pause() if view == "resume" else None
    before = list(DjangoJob.objects.values_list("next_run_time", "paused_until"))
    others = {"run_djangojob", "pause_djangojob", "resume_djangojob"} - {codename}
    client = client_for(staff(*others))

    response = client.post(job_url(seoul_job.pk, view), data)

    assert response.status_code == 403
    assert list(DjangoJob.objects.values_list("next_run_time", "paused_until")) == before
    assert not DjangoJobExecution.objects.exists()
    # With the permission, the same request goes through.
    allowed = client_for(staff(codename, username="allowed"))
    assert allowed.post(job_url(seoul_job.pk, view), data).status_code == 302


@pytest.mark.parametrize(
    ("action", "codename"),
    [
        ("run_now", "run_djangojob"),
        ("pause", "pause_djangojob"),
        ("pause_until", "pause_djangojob"),
        ("resume", "resume_djangojob"),
        ("delete_selected", "delete_djangojob"),
    ],
)
def test_actions_refuse_a_crafted_post_without_the_permission(seoul_job, action, codename):
    others = {"run_djangojob", "pause_djangojob", "resume_djangojob", "delete_djangojob"}
    client = client_for(staff(*(others - {codename})))

    response = client.post(JOBS_URL, action_post(action, seoul_job.pk, post="yes"))

    assert response.status_code == 403
    assert DjangoJob.objects.get().next_run_time is not None
    assert not DjangoJobExecution.objects.exists()


def test_pause_until_form_needs_the_permission_to_be_shown(seoul_job):
    client = client_for(staff("run_djangojob"))
    assert client.get(job_url(seoul_job.pk, "pause_until")).status_code == 403


def test_delete_needs_the_delete_permission(seoul_job):
    client = client_for(staff("run_djangojob", "pause_djangojob", "resume_djangojob"))
    assert client.get(job_url(seoul_job.pk, "delete")).status_code == 403
    assert client.post(job_url(seoul_job.pk, "delete"), {"post": "yes"}).status_code == 403
    assert DjangoJob.objects.exists()
    run = record(seoul_job, NOW)
    delete_run = reverse("admin:django_metronome_djangojobexecution_delete", args=(run.pk,))
    assert client.post(delete_run, {"post": "yes"}).status_code == 403
    assert DjangoJobExecution.objects.exists()


def test_non_staff_are_sent_to_the_login_page(seoul_job):
    client = Client()
    for url in [JOBS_URL, DASHBOARD_URL, job_url(seoul_job.pk, "run")]:
        response = client.post(url) if url.endswith("/run/") else client.get(url)
        assert response.status_code == 302
        assert "/login/" in response.url
    assert not DjangoJobExecution.objects.exists()


@pytest.mark.parametrize("view", ["run", "pause", "pause_until", "resume"])
def test_buttons_need_the_csrf_token(admin_user, seoul_job, view):
    seoul_job.pause() if view == "resume" else None
    client = client_for(admin_user, enforce_csrf_checks=True)
    data = {"until": "2099-01-01T00:00", "zone": "UTC"} if view == "pause_until" else {}

    assert client.post(job_url(seoul_job.pk, view), data).status_code == 403
    assert not DjangoJobExecution.objects.exists()

    # The token of the job's page makes the same request work.
    client.get(job_url(seoul_job.pk))
    data["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    assert client.post(job_url(seoul_job.pk, view), data).status_code == 302


def test_actions_need_the_csrf_token(admin_user, seoul_job):
    client = client_for(admin_user, enforce_csrf_checks=True)
    response = client.post(JOBS_URL, action_post("run_now", seoul_job.pk))
    assert response.status_code == 403
    assert not DjangoJobExecution.objects.exists()


# --- the ledger -------------------------------------------------------------------------------


def test_ledger_list_and_run_page(admin_client, seoul_job, settings):
    settings.APSCHEDULER_DATETIME_FORMAT = "Y-m-d H:i:s"
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "jobs.py", line 3\n'
        '    raise RuntimeError("<boom>")\n'
        "RuntimeError: <boom>"
    )
    failed = record(
        seoul_job,
        datetime(2026, 11, 25, 23, 0, tzinfo=UTC),
        ExecutionStatus.FAILED,
        exception="RuntimeError: <boom>\nwith a second line",
        traceback=traceback,
        duration=timedelta(seconds=2.5),
        lateness=timedelta(milliseconds=35),
    )
    gone = record(
        "removed-job", NOW, ExecutionStatus.MISSED, reason="Missed by 3 min.", duration=None
    )
    manual = record(seoul_job, NOW + timedelta(hours=1), ExecutionStatus.SUCCEEDED, manual=True)

    page = text(admin_client.get(RUNS_URL))
    order = [
        int(pk) for pk in re.findall(r'<th class="field-run"><a href="[^"]+">#(\d+)</a>', page)
    ]
    assert order == [failed.pk, manual.pk, gone.pk]  # newest scheduled time first
    assert 'class="metronome-badge metronome-failed"' in page
    assert 'class="metronome-badge metronome-missed"' in page
    assert "2026-11-25 23:00:00" in page  # APSCHEDULER_DATETIME_FORMAT
    assert "2.50 s" in page and "35 ms" in page
    assert "web-1:4242:abcdef" in page
    assert job_url(seoul_job.pk) in page
    assert "(removed)" in page

    run_page = text(admin_client.get(run_url(failed.pk)))
    assert '<pre class="metronome-pre metronome-traceback">' in run_page
    assert "raise RuntimeError(&quot;&lt;boom&gt;&quot;)" in run_page
    assert "RuntimeError: &lt;boom&gt;\nwith a second line</pre>" in run_page
    assert text(admin_client.get(run_url(gone.pk))).count("(removed)") == 1


def test_ledger_list_shows_where_each_task_fire_went(admin_client, seoul_job):
    enqueued = record(
        seoul_job,
        NOW,
        ExecutionStatus.FAILED,
        task_backend="rq",
        task_queue="reports",
        task_result_id="result-7",
        task_worker="worker-&-1",
    )
    waiting = record(
        seoul_job,
        NOW - timedelta(hours=1),
        ExecutionStatus.ENQUEUED,
        task_backend="default",
        task_queue="default",
        task_result_id="result-8",
    )
    in_process = record(seoul_job, NOW - timedelta(hours=2), ExecutionStatus.SUCCEEDED)

    page = text(admin_client.get(RUNS_URL))

    def cell(run) -> str:
        (row,) = [row for row in re.findall(r"<tr.*?</tr>", page, re.S) if f"#{run.pk}</a>" in row]
        found = re.search(r'<td class="field-task_text">(.*?)</td>', row, re.S)
        assert found, row
        return found.group(1)

    assert cell(enqueued) == (
        '<code class="metronome-id" title="result-7">rq/reports</code>'
        '<br><span class="metronome-muted">worker-&amp;-1</span>'
    )
    assert cell(waiting) == '<code class="metronome-id" title="result-8">default/default</code>'
    assert cell(in_process) == "-"  # the admin's empty value: run in the scheduler
    assert 'class="metronome-badge metronome-failed"' in page  # and its outcome, as for any


@pytest.mark.skipif(
    taskfires.framework() is None, reason="no task framework: the filter is not shown"
)
def test_ledger_filter_by_task_backend_offers_the_settings_aliases(admin_client, seoul_job):
    record(seoul_job, NOW, task_backend="default", task_queue="default")
    record(seoul_job, NOW - timedelta(hours=1))

    page = text(admin_client.get(RUNS_URL))
    assert "?task=-" in page and "?task=default" in page and "?task=immediate" in page
    went = admin_client.get(RUNS_URL, {"task": "default"}).context["cl"].result_list
    assert [run.task_backend for run in went] == ["default"]
    stayed = admin_client.get(RUNS_URL, {"task": "-"}).context["cl"].result_list
    assert [run.task_backend for run in stayed] == [None]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "failed"}, {"failed"}),
        ({"job": "check_campaign_status"}, {"failed", "old"}),
        ({"job": "removed-job"}, {"missed"}),
        ({"when": "24h"}, {"failed", "missed"}),
        ({"when": "older"}, {"old"}),
        ({"manual__exact": "1"}, {"missed"}),
        ({"node": "web-2:1:aaaaaa"}, {"missed"}),
        ({"job": "check_campaign_status", "status": "succeeded"}, {"old"}),
    ],
)
def test_ledger_filters(admin_client, seoul_job, query, expected):
    now = datetime.now(UTC)
    record(seoul_job, now - timedelta(hours=1), ExecutionStatus.FAILED)
    record(seoul_job, now - timedelta(days=40), ExecutionStatus.SUCCEEDED)
    record(
        "removed-job",
        now - timedelta(hours=2),
        ExecutionStatus.MISSED,
        manual=True,
        node="web-2:1:aaaaaa",
    )
    names = {"failed": "failed", "succeeded": "old", "missed": "missed"}

    response = admin_client.get(RUNS_URL, query)

    assert response.status_code == 200
    assert {names[row.status] for row in response.context["cl"].result_list} == expected


def test_job_filter_is_a_text_box_keeping_the_other_filters(admin_client, seoul_job):
    page = text(admin_client.get(RUNS_URL, {"status": "failed", "job": "check_campaign_status"}))
    assert '<input type="search" name="job" value="check_campaign_status"' in page
    assert '<input type="hidden" name="status" value="failed">' in page


# --- the dashboard ------------------------------------------------------------------------------


def test_dashboard(admin_client, seoul_job, add_job):
    now = datetime.now(UTC)
    live_node(declared=["check_campaign_status"], clock_offset=-30.25)
    SchedulerNode.objects.create(
        id="web-2:99:dead00",
        hostname="web-2",
        pid=99,
        started_at=now - timedelta(hours=3),
        last_heartbeat=now - timedelta(hours=1),
        stopped_at=now - timedelta(hours=1),
    )
    tick = add_job(
        "tick", IntervalTrigger(minutes=5, timezone=UTC), next_run_time=now + timedelta(minutes=1)
    )
    late = add_job(
        "late",
        CronTrigger(month=1, day=1, hour=0, timezone=UTC),
        next_run_time=now - timedelta(minutes=10),
    )
    for minutes in range(40, 0, -5):
        record(tick, now - timedelta(minutes=minutes))
    record(
        late,
        now - timedelta(minutes=70),
        ExecutionStatus.FAILED,
        exception="ValueError: this job always fails",
    )
    record(late, now - timedelta(minutes=130), ExecutionStatus.MISSED, duration=None)
    late.run_now()

    response = admin_client.get(DASHBOARD_URL)
    page = text(response)

    assert [row.node.pk for row in response.context["alive"]] == ["web-1:4242:abcdef"]
    assert [row.clock for row in response.context["alive"]] == ["30.250 s ahead of the database's"]
    assert "metronome-clock-off" in response.content.decode()
    assert [row.node.pk for row in response.context["gone"]] == ["web-2:99:dead00"]
    assert [line.job_id for line in response.context["overdue"]] == ["late"]
    assert response.context["failed_count"] == 1
    assert "ValueError: this job always fails" in page
    assert response.context["pending_count"] == 1
    # The next fires across jobs: the overdue one, then the 5-minute job's fires in turn.
    fires = [line.job_id for line in response.context["next_fires"]]
    assert fires[:3] == ["late", "tick", "tick"]
    assert len(fires) == 10
    # A picture of the recent runs of each job that ran.
    assert {row.job_id for row in response.context["activity"]} == {"tick", "late"}
    assert page.count('<svg class="metronome-strip"') == 2
    tick_row = next(row for row in response.context["activity"] if row.job_id == "tick")
    assert tick_row.svg.count("<rect") == 8
    assert tick_row.svg.count('fill="#2e8540"') == 8


def test_dashboard_says_when_no_scheduler_runs(admin_client):
    page = text(admin_client.get(DASHBOARD_URL))
    assert "No scheduler process is alive" in page
    assert "No run recorded yet." in page


def test_dashboard_needs_the_view_permission():
    client = client_for(User.objects.create_user("nobody", password="pw", is_staff=True))
    assert client.get(DASHBOARD_URL).status_code == 403


# --- bounded queries ---------------------------------------------------------------------


def populate(add_job, count: int) -> None:
    now = datetime.now(UTC)
    live_node(declared=[f"job-{n}" for n in range(count)])
    for n in range(count):
        job = add_job(
            f"job-{n}",
            CronTrigger(hour=n % 24, timezone=SEOUL if n % 2 else NEW_YORK),
            next_run_time=now + timedelta(minutes=n + 1),
        )
        for k in range(3):
            status = ExecutionStatus.FAILED if (n + k) % 4 == 0 else ExecutionStatus.SUCCEEDED
            # Every third fire went to a task backend: its column costs no query either.
            went = (
                {"task_backend": "default", "task_queue": "default", "task_worker": f"w-{n}"}
                if (n + k) % 3 == 0
                else {}
            )
            record(job, now - timedelta(hours=k + 1, minutes=n), status, **went)
        if n % 5 == 0:
            job.pause()


def count_queries(client: Client, url: str, **query) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, query)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("url", "query"),
    [
        (JOBS_URL, {}),
        (JOBS_URL, {"last": "failed", "paused": "no"}),
        (JOBS_URL, {"q": "job"}),
        (RUNS_URL, {}),
        (RUNS_URL, {"status": "failed", "when": "24h"}),
        (RUNS_URL, {"task": "default"}),
        (DASHBOARD_URL, {}),
    ],
)
def test_query_count_does_not_grow_with_the_number_of_jobs(admin_client, add_job, url, query):
    populate(add_job, 5)
    few = count_queries(admin_client, url, **query)
    DjangoJobExecution.objects.all().delete()
    DjangoJob.objects.all().delete()
    SchedulerNode.objects.all().delete()
    populate(add_job, 50)

    many = count_queries(admin_client, url, **query)

    assert many == few
    # Jobs: session, user, live processes, count, page. Runs: session, user, count, page.
    assert many <= {JOBS_URL: 5, RUNS_URL: 4, DASHBOARD_URL: 13}[url]


def test_job_page_query_count_is_bounded(admin_client, seoul_job):
    for day in range(40):
        record(seoul_job, NOW - timedelta(days=day))
    # Session, user, the job, its last runs, the live processes, its open incidents, its
    # last changes, its missed fires (the catch-up window's count); and the content type,
    # which Django caches after a process's first request.
    assert count_queries(admin_client, job_url(seoul_job.pk)) <= 9
