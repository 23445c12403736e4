"""
The package speaks the project's language: the admin, the dashboard, messages,
system checks and the command line's words in Korean with ``LANGUAGE_CODE =
"ko"``; English by default; ``--json`` always English.

The Korean catalogue is ``locale/ko`` (scripts/check_messages keeps it
complete); the descriptions of every trigger shape are tested in
tests/time/test_describe.py.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from apscheduler.triggers.cron import CronTrigger
from django.contrib.admin.utils import quote
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

import django_metronome
from django_metronome import checks, present
from django_metronome.admin.base import format_instant
from django_metronome.models import DjangoJob, DjangoJobExecution, ExecutionStatus, SchedulerNode
from tests.testapp import jobs

SEOUL = ZoneInfo("Asia/Seoul")
BERLIN = ZoneInfo("Europe/Berlin")
#: A Wednesday; Berlin moves its clocks on Sunday 2027-03-28.
NOW = datetime(2027, 3, 24, 12, 0, tzinfo=UTC)
JOBS_URL = reverse("admin:django_metronome_djangojob_changelist")
DASHBOARD_URL = reverse("admin:django_metronome_dashboard")

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def korean(settings):
    settings.LANGUAGE_CODE = "ko"


@pytest.fixture
def add_job(store, make_job):
    def add(job_id, trigger, name):
        store.add_job(
            make_job(
                jobs.noop,
                id=job_id,
                name=name,
                trigger=trigger,
                next_run_time=trigger.get_next_fire_time(None, NOW),
            )
        )
        return DjangoJob.objects.get(pk=job_id)

    return add


@pytest.fixture
def weekday_job(add_job):
    return add_job(
        "check_campaign_status",
        CronTrigger(day_of_week="mon-fri", hour=8, timezone=SEOUL),
        "Check campaign status",
    )


def job_url(job_id: str) -> str:
    return reverse("admin:django_metronome_djangojob_change", args=(quote(job_id),))


def test_the_catalogue_ships_with_the_package() -> None:
    folder = Path(django_metronome.__file__).parent / "locale" / "ko" / "LC_MESSAGES"
    assert (folder / "django.po").is_file() and (folder / "django.mo").is_file()
    with translation.override("ko"):
        assert translation.gettext("Run now") == "지금 실행"
    with translation.override("en"):
        assert translation.gettext("Run now") == "Run now"


def test_the_job_list_and_page_in_korean(korean, admin_client, weekday_job) -> None:
    page = admin_client.get(JOBS_URL).content.decode()
    assert "매주 월요일부터 금요일까지 08:00 (Asia/Seoul)" in page
    assert "다음 실행" in page and "마지막 실행" in page  # the column headers
    assert "2027-03-25 08:00 +09:00" in page  # the job's own zone, as in English
    assert "선택한 작업 지금 실행" in page  # an action
    assert "At 08:00" not in page

    page = admin_client.get(job_url(weekday_job.pk)).content.decode()
    assert ">지금 실행</button>" in page and ">일시 중지</button>" in page
    assert "다음 실행 시각 10개" in page
    assert "매주 월요일부터 금요일까지 08:00 (Asia/Seoul)" in page
    assert "(11시간 후)" in page  # the next run: 08:00 in Seoul is 23:00 UTC


def test_the_english_admin_is_unchanged(admin_client, weekday_job) -> None:
    page = admin_client.get(JOBS_URL).content.decode()
    assert "At 08:00 on Monday through Friday (Asia/Seoul)" in page
    page = admin_client.get(job_url(weekday_job.pk)).content.decode()
    assert ">Run now</button>" in page and "Next 10 fire times" in page


def test_a_dst_change_is_named_in_korean(korean, admin_client, add_job) -> None:
    job = add_job("nightly", CronTrigger(hour=2, minute=30, timezone=BERLIN), "Nightly report")
    page = admin_client.get(job_url(job.pk)).content.decode()
    assert "매일 02:30 (Europe/Berlin)" in page
    # 02:30 does not exist on 2027-03-28: the fire moves to 03:00 and the offset changes.
    assert "UTC 오프셋이 +01:00에서 +02:00(으)로 바뀜" in page


def test_the_dashboard_and_a_message_in_korean(korean, admin_client, weekday_job) -> None:
    SchedulerNode.objects.create(
        id="web-1:42:abc",
        hostname="web-1",
        pid=42,
        started_at=NOW,
        last_heartbeat=NOW,
        declared=[weekday_job.pk],
    )
    page = admin_client.get(DASHBOARD_URL).content.decode()
    assert "스케줄러 대시보드" in page
    assert "살아 있는 스케줄러 프로세스" in page
    assert "다음 실행" in page

    response = admin_client.post(
        reverse("admin:django_metronome_djangojob_run", args=(quote(weekday_job.pk),)),
        follow=True,
    )
    (message,) = [str(m) for m in response.context["messages"]]
    assert message.startswith("지금 실행을 요청했습니다:"), message


def test_instants_follow_the_locale(korean) -> None:
    """The ledger's instants: the language's own format (APSCHEDULER_DATETIME_FORMAT unset)."""
    with translation.override("ko"):
        assert format_instant(NOW) == "2027년 3월 24일 12:00 오후"
    with translation.override("en"):
        assert format_instant(NOW) == "March 24, 2027, 12:00 p.m."


def test_shared_words_in_korean() -> None:
    later = datetime(2027, 3, 24, 15, 0, tzinfo=UTC)
    with translation.override("ko"):
        assert present.relative(later, NOW, translation) == "3시간 후"
        assert present.ago(95, translation) == "1분 35초 전"
        assert present.clock_offset(30.25, translation) == "데이터베이스보다 30.250초 느림"
        assert present.state_label(present.PAUSED, translation) == "일시 중지됨"
        # Without the catalogue they stay English, whatever the language: the pieces that
        # English sentences embed (the health report, alerts) never mix two languages.
        assert present.relative(later, NOW) == "in 3 h"
        assert present.ago(95) == "1 min 35 s ago"
        assert present.clock_offset(30.25) == "30.250 s behind the database's"


def metronome(*args: str) -> str:
    out = io.StringIO()
    call_command("metronome", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_command_line_follows_language_code_but_not_its_json(settings, weekday_job) -> None:
    english = metronome("show", weekday_job.pk, "--count", "0")
    assert "Schedule   At 08:00 on Monday through Friday (Asia/Seoul)" in english
    assert "State      active" in english

    settings.LANGUAGE_CODE = "ko"  # nothing activated: the command follows the setting
    words = metronome("show", weekday_job.pk, "--count", "0")
    data = json.loads(metronome("show", weekday_job.pk, "--count", "0", "--json"))
    assert "Schedule   매주 월요일부터 금요일까지 08:00 (Asia/Seoul)" in words
    assert "State      활성" in words
    assert data["schedule"] == "At 08:00 on Monday through Friday (Asia/Seoul)"
    assert data["source"] == "runtime"


def test_the_command_lines_tables_use_the_shared_words(settings, weekday_job) -> None:
    DjangoJobExecution.objects.create(
        job_id=weekday_job.pk,
        run_time=NOW,
        status=ExecutionStatus.SUCCEEDED,
        duration=timedelta(seconds=1.5),
        lateness=timedelta(milliseconds=12),
    )
    assert re.search(r"succeeded +1\.50 s +12 ms", metronome("history", "--job", weekday_job.pk))
    settings.LANGUAGE_CODE = "ko"
    assert re.search(r"성공 +1\.50초 +12ms", metronome("history", "--job", weekday_job.pk))


def test_system_checks_speak_korean(settings) -> None:
    settings.METRONOME = {"CLOCK": "sundial"}
    with translation.override("ko"):
        (error,) = checks.check_settings()
    assert error.id == "django_metronome.E011"
    assert error.msg == "METRONOME['CLOCK']이 'sundial'입니다."
    assert "데이터베이스 서버의 시계" in error.hint


def visible_english(template: str) -> list[str]:
    """The words a person would read in ``template`` that no translate tag carries."""
    text = re.sub(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", " ", template, flags=re.S)
    text = re.sub(r"{%\s*blocktranslate.*?{%\s*endblocktranslate\s*%}", " ", text, flags=re.S)
    text = re.sub(r"{%\s*block bodyclass\s*%}.*?{%\s*endblock\s*%}", " ", text, flags=re.S)
    text = re.sub(r"{%.*?%}|{{.*?}}", " ", text, flags=re.S)
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
    shown = r'\b(?:title|placeholder|alt|aria-label)="([^"]*)"'
    button = r'^<input[^>]*type="(?:submit|button)"[^>]*value="([^"]*)"'
    found = [
        value
        for tag in re.findall(r"<[^>]*>", text)
        for value in re.findall(shown, tag) + re.findall(button, tag)
        if re.search(r"[A-Za-z]{2}", value)
    ]
    found += re.findall(r"[A-Za-z]{2,}(?:[ \t]+[A-Za-z\u2019'-]+)*", re.sub(r"<[^>]*>", " ", text))
    return [word for word in found if word not in ("UTC", "PID")]


def test_the_templates_have_no_text_outside_translate_tags() -> None:
    """Every word a person reads in the app's templates goes through the catalogue."""
    folder = Path(django_metronome.__file__).parent / "templates"
    untranslated = {
        str(path.relative_to(folder)): words
        for path in sorted(folder.rglob("*.html"))
        if (words := visible_english(path.read_text()))
    }
    assert not untranslated, (
        f"Text outside {{% translate %}}/{{% blocktranslate %}}: {untranslated}. Mark it, then "
        "run scripts/check_messages --update and translate the new entries."
    )
    # The check itself finds what it should.
    sample = '<p title="Hi">Run <b>now</b>{% translate "x" %}<input type="submit" value="Go">'
    assert visible_english(sample) == ["Hi", "Go", "Run  now"]
