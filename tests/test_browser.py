"""
The admin in a real browser: headless Chromium (Debian's) driven by Selenium,
against pytest-django's live server, with a django-metronome scheduler running
in this process.

Chromium and its driver come from ``scripts/install_browser.sh``; without them
the test fails (it does not skip) and says so. Screenshots go to
``$METRONOME_ARTIFACTS`` (default ``test-artifacts/`` at the top of the
repository).

``METRONOME_DOCS_SCREENSHOTS=1`` also runs ``test_docs_screenshots``, which
fills the tables with a few realistic jobs and their history and saves the
README's pictures to ``docs/images/``.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import re_path
from django.views.static import serve

from django_metronome.models import DjangoJob, DjangoJobExecution, SchedulerNode
from django_metronome.schedulers import BackgroundScheduler
from tests import urls as test_urls
from tests.testapp import jobs

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Chromium as root in a container: no sandbox, no GPU, nothing fetched in the background.
CHROMIUM_ARGUMENTS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--lang=en-US",
]
WIDTH = 1400
#: Seconds the browser waits for a page, and for a run to succeed.
PAGE_TIMEOUT = 20
RUN_TIMEOUT = 30


# Static files are served by a view of this module, found by Django's finders, so
# that the pages are styled whether or not django.contrib.staticfiles is installed
# (the live server's own handler serves /static/ from STATIC_ROOT only, or with
# the staticfiles app).
STATIC_URL = "/assets/"


def static_file(request: HttpRequest, path: str) -> HttpResponse:
    found = finders.find(path)
    if not found:
        raise Http404(path)
    found = str(found)
    return serve(request, os.path.basename(found), document_root=os.path.dirname(found))


urlpatterns = [*test_urls.urlpatterns, re_path(r"^assets/(?P<path>.+)$", static_file)]


@pytest.fixture
def fast_scheduler_settings(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.STATIC_URL = STATIC_URL
    settings.METRONOME = {
        "POLL_INTERVAL": 0.05,
        "HEARTBEAT_INTERVAL": 0.2,
        "DEAD_AFTER": 5,
        "SHUTDOWN_TIMEOUT": 2,
    }


@pytest.fixture
def scheduler(fast_scheduler_settings: None) -> Iterator[BackgroundScheduler]:
    running = BackgroundScheduler(timezone=UTC)
    running.start()
    yield running
    running.shutdown(wait=True, timeout=5)


@pytest.fixture
def artifacts() -> Path:
    directory = Path(os.environ.get("METRONOME_ARTIFACTS") or ROOT / "test-artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium through chromedriver; fails, saying how to install them, if missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: the browser test needs Debian's chromium and "
            "chromium-driver. Install them with scripts/install_browser.sh (as root).",
            pytrace=False,
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(
            "selenium is not installed: install the test extra (pip install -e '.[test]').",
            pytrace=False,
        )
    profile = tempfile.mkdtemp(prefix="metronome-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in [
        *CHROMIUM_ARGUMENTS,
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},1000",
    ]:
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    # Elements are looked for until they appear: a click that submits a form returns
    # before the next page has loaded.
    driver.implicitly_wait(PAGE_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: Any, path: Path, width: int = WIDTH) -> Path:
    """Save the whole page as a PNG: the viewport is set to the page's size for the shot."""

    def page_height() -> int:
        return int(driver.execute_script("return document.documentElement.scrollHeight;"))

    height = 0
    for _ in range(3):  # a taller viewport can change the layout: measure again
        wanted = min(max(page_height(), 600), 6000)
        if wanted == height:
            break
        height = wanted
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
    try:
        assert driver.save_screenshot(str(path)), f"could not save {path}"
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)


def log_in(driver: Any, live_server: Any) -> None:
    from selenium.webdriver.common.by import By

    User.objects.create_superuser("admin", "admin@example.com", "correct horse")
    driver.get(f"{live_server.url}/admin/login/?next=/admin/")
    driver.find_element(By.ID, "id_username").send_keys("admin")
    driver.find_element(By.ID, "id_password").send_keys("correct horse")
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # Not endswith("/admin/"): the login page's own URL ends so (?next=/admin/).
    wait_until(lambda: "/login/" not in driver.current_url, PAGE_TIMEOUT, "login")
    assert "Log out" in driver.page_source or "logout" in driver.page_source


def badge_of_run_page(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, ".field-status_badge .metronome-badge").text


def test_run_pause_and_resume_a_job_in_a_browser(browser, live_server, scheduler, artifacts):
    from selenium.webdriver.common.by import By

    started = time.monotonic()
    scheduler.add_job(
        jobs.noop,
        "cron",
        hour=8,
        timezone="Asia/Seoul",
        id="check_campaign_status",
        name="Check campaign status",
    )
    scheduled = DjangoJob.objects.get().next_run_time
    log_in(browser, live_server)

    # The job list: the job, its schedule in words, its next run in Seoul.
    browser.get(f"{live_server.url}/admin/django_metronome/djangojob/")
    assert "At 08:00 every day (Asia/Seoul)" in browser.page_source
    assert "+09:00" in browser.page_source
    screenshot(browser, artifacts / "job-list.png")

    # Run it now from its page: the page comes back at once, naming the pending run.
    browser.find_element(By.PARTIAL_LINK_TEXT, "Check campaign status").click()
    browser.find_element(By.ID, "metronome-run-now").click()
    message = browser.find_element(By.CSS_SELECTOR, ".messagelist .success")
    assert "Run now asked for" in message.text
    run_link = message.find_element(By.PARTIAL_LINK_TEXT, "run ")
    run_link.click()

    # The ledger row appears, and the running scheduler takes it to "succeeded".
    assert badge_of_run_page(browser) in {"pending", "running", "succeeded"}

    def succeeded() -> bool:
        browser.refresh()
        return badge_of_run_page(browser) == "succeeded"

    wait_until(succeeded, RUN_TIMEOUT, "the run-now fire succeeding")
    (run,) = DjangoJobExecution.objects.all()
    assert (run.status, run.manual, run.node) == ("succeeded", True, scheduler.identity)
    assert DjangoJob.objects.get().next_run_time == scheduled  # the schedule did not move

    # Pause, then resume, from the job's page.
    browser.find_element(By.PARTIAL_LINK_TEXT, "Check campaign status").click()
    assert "succeeded" in browser.find_element(By.CSS_SELECTOR, ".metronome-runs").text
    browser.find_element(By.ID, "metronome-pause").click()
    assert browser.find_element(By.CSS_SELECTOR, ".metronome-summary .metronome-paused")
    assert DjangoJob.objects.get().next_run_time is None
    assert scheduler.get_job("check_campaign_status").next_run_time is None

    browser.find_element(By.ID, "metronome-resume").click()
    next_run = browser.find_element(By.CSS_SELECTOR, ".metronome-next-run").text
    assert next_run.endswith("+09:00") and "08:00" in next_run
    assert DjangoJob.objects.get().next_run_time >= scheduled  # the next 08:00 in Seoul
    screenshot(browser, artifacts / "job-page.png")

    # The dashboard: this process alive, the job's run drawn.
    browser.get(f"{live_server.url}/admin/django_metronome/djangojob/dashboard/")
    assert browser.find_element(By.ID, "metronome-live-count").text == "1"
    assert browser.find_elements(By.CSS_SELECTOR, "svg.metronome-strip rect")
    screenshot(browser, artifacts / "dashboard.png")

    for name in ["job-list.png", "job-page.png", "dashboard.png"]:
        assert (artifacts / name).stat().st_size > 10_000
    print(f"browser test: {time.monotonic() - started:.1f} s, screenshots in {artifacts}")


# --- the README's pictures ----------------------------------------------------------------


SEOUL = ZoneInfo("Asia/Seoul")


def realistic_history(now: datetime) -> None:
    """Ledger rows such as a few weeks of a small project leave behind."""
    rng = random.Random(5)
    rows: list[DjangoJobExecution] = []

    def add(job_id: str, name: str, run_time: datetime, status: str, **fields: Any) -> None:
        if status in ("succeeded", "failed"):
            fields.setdefault("duration", timedelta(milliseconds=rng.randint(120, 2400)))
            fields.setdefault("lateness", timedelta(milliseconds=rng.randint(3, 60)))
        rows.append(
            DjangoJobExecution(
                job_id=job_id,
                job_name=name,
                run_time=run_time,
                status=status,
                node="app-1:812:4f2a9c",
                **fields,
            )
        )

    today_eight = now.astimezone(SEOUL).replace(hour=8, minute=0, second=0, microsecond=0)
    for day in range(1, 31):
        at = today_eight - timedelta(days=day)
        add("check_campaign_status", "check_campaign_status", at, "succeeded")
        status = "failed" if day in (3, 11) else "succeeded"
        add(
            "check_funding_success",
            "check_funding_success",
            at + timedelta(minutes=10),
            status,
            exception="ConnectionError: payment gateway timed out" if status == "failed" else "",
        )
    last_five = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 5)
    for k in range(1, 31):
        status = "missed" if k == 17 else "succeeded"
        add(
            "refresh_exchange_rates",
            "Refresh exchange rates",
            last_five - timedelta(minutes=5 * k),
            status,
            reason="Missed by 3 min 12 s (grace time 60 s)." if status == "missed" else "",
        )
    last_hour = now.replace(minute=0, second=0, microsecond=0)
    for k in range(1, 25):
        status = "failed" if k <= 3 or k in (9, 10) else "succeeded"
        add(
            "sync_payments",
            "Sync payments",
            last_hour - timedelta(hours=k),
            status,
            exception="ValueError: settlement file has 0 rows" if status == "failed" else "",
            traceback=(
                "Traceback (most recent call last):\n"
                '  File "billing/jobs.py", line 42, in sync_payments\n'
                "    raise ValueError('settlement file has 0 rows')\n"
                "ValueError: settlement file has 0 rows"
                if status == "failed"
                else ""
            ),
        )
    for day in range(2, 20):
        at = (now - timedelta(days=day)).replace(hour=1, minute=0, second=0, microsecond=0)
        add("close_expired_campaigns", "Close expired campaigns", at, "succeeded")
    DjangoJobExecution.objects.bulk_create(rows)


@pytest.mark.skipif(
    not os.environ.get("METRONOME_DOCS_SCREENSHOTS"),
    reason="set METRONOME_DOCS_SCREENSHOTS=1 to remake docs/images/*.png",
)
def test_docs_screenshots(browser, live_server, scheduler):
    from selenium.webdriver.common.by import By

    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)

    # The brief's campaign jobs, and a few neighbours.
    scheduler.add_job(
        jobs.noop,
        "cron",
        hour=8,
        timezone="Asia/Seoul",
        id="check_campaign_status",
        name="check_campaign_status",
    )
    scheduler.add_job(
        jobs.noop,
        "cron",
        hour=8,
        minute=10,
        timezone="Asia/Seoul",
        id="check_funding_success",
        name="check_funding_success",
    )
    scheduler.add_job(
        jobs.noop,
        "interval",
        minutes=5,
        id="refresh_exchange_rates",
        name="Refresh exchange rates",
    )
    scheduler.add_job(
        jobs.fail_loudly,
        "cron",
        minute=0,
        timezone="UTC",
        id="sync_payments",
        name="Sync payments",
    )
    scheduler.add_job(
        jobs.noop,
        "0 9 * * 1-5",
        timezone="Europe/Berlin",
        id="morning_digest",
        name="Send the morning digest",
    )
    scheduler.add_job(
        jobs.noop,
        "30 2 * * *",
        timezone="America/New_York",
        id="nightly_report",
        name="Nightly report",
    )
    scheduler.add_job(
        jobs.noop,
        "cron",
        hour=1,
        timezone="Asia/Seoul",
        id="close_expired_campaigns",
        name="Close expired campaigns",
    )
    DjangoJob.objects.get(pk="close_expired_campaigns").pause(
        (now + timedelta(days=2))
        .astimezone(SEOUL)
        .replace(hour=9, minute=0, second=0, microsecond=0)
    )
    realistic_history(now)
    SchedulerNode.objects.create(
        id="app-2:977:1c0de5",
        hostname="app-2",
        pid=977,
        started_at=now - timedelta(days=3),
        last_heartbeat=now - timedelta(hours=2, minutes=14),
        stopped_at=now - timedelta(hours=2, minutes=14),
    )
    log_in(browser, live_server)

    browser.get(f"{live_server.url}/admin/django_metronome/djangojob/")
    # The pictures are about the app: fold Django's navigation sidebar away.
    browser.find_element(By.ID, "toggle-nav-sidebar").click()
    assert browser.find_elements(By.CSS_SELECTOR, ".metronome-failed")
    screenshot(browser, images / "job-list.png", width=1280)
    browser.get(f"{live_server.url}/admin/django_metronome/djangojob/dashboard/")
    screenshot(browser, images / "dashboard.png", width=1280)


def test_the_job_list_fits_1400_px_with_the_sidebar_open(browser, live_server, scheduler):
    """No horizontal scrolling: long names, ids and zones wrap instead."""
    now = datetime.now(UTC)
    scheduler.add_job(
        jobs.fail_loudly,
        "cron",
        minute=0,
        timezone="America/Argentina/ComodRivadavia",
        id="sync_payments",
        name="Sync payments",
    )
    scheduler.add_job(
        jobs.noop,
        "cron",
        day_of_week="mon-fri",
        hour="8-18",
        minute="*/15",
        second=30,
        timezone="America/New_York",
        id="reports.partner_api:poll_the_partner_api_for_new_orders_and_refunds",
        name="Poll the partner API for new orders and refunds",
    )
    scheduler.add_job(
        jobs.noop, "cron", hour=1, timezone="Asia/Seoul", id="close", name="Close campaigns"
    )
    DjangoJob.objects.get(pk="close").pause(now + timedelta(days=2, seconds=7))
    realistic_history(now)
    log_in(browser, live_server)
    browser.get(f"{live_server.url}/admin/django_metronome/djangojob/")

    widths = browser.execute_script(
        "const results = document.querySelector('.results');"
        "return [document.documentElement.scrollWidth, window.innerWidth,"
        " results.scrollWidth, results.clientWidth];"
    )
    page, window, table, room = widths
    assert window == WIDTH
    assert page <= window, widths
    assert table <= room, widths


def test_the_admin_in_korean_in_a_browser(browser, live_server, scheduler, artifacts, settings):
    """
    ``LANGUAGE_CODE = "ko"``: the job list, a job's page, the dashboard and a
    confirmation page speak Korean, schedules included. With
    ``METRONOME_DOCS_SCREENSHOTS=1`` the pictures go to ``docs/images/`` too.
    """
    from selenium.webdriver.common.by import By

    settings.LANGUAGE_CODE = "ko"
    scheduler.add_job(
        jobs.noop,
        "cron",
        day_of_week="mon-fri",
        hour=8,
        timezone="Asia/Seoul",
        id="check_campaign_status",
        name="check_campaign_status",
    )
    scheduler.add_job(
        jobs.noop, "interval", minutes=5, id="refresh_exchange_rates", name="환율 갱신"
    )
    realistic_history(datetime.now(UTC))
    log_in(browser, live_server)
    shots = [artifacts]
    if os.environ.get("METRONOME_DOCS_SCREENSHOTS"):
        shots.append(ROOT / "docs" / "images")

    def shoot(name: str) -> None:
        for folder in shots:
            screenshot(browser, folder / name, width=1280)

    browser.get(f"{live_server.url}/admin/django_metronome/djangojob/")
    page = browser.page_source
    assert "매주 월요일부터 금요일까지 08:00 (Asia/Seoul)" in page
    assert "5분마다 (UTC)" in page
    assert "다음 실행" in page and "+09:00" in page
    shoot("job-list-ko.png")

    browser.find_element(By.PARTIAL_LINK_TEXT, "check_campaign_status").click()
    browser.find_element(By.ID, "metronome-run-now").click()
    message = browser.find_element(By.CSS_SELECTOR, ".messagelist .success")
    assert message.text.startswith("지금 실행을 요청했습니다"), message.text
    assert "다음 실행 시각 10개" in browser.page_source
    shoot("job-page-ko.png")

    browser.get(f"{live_server.url}/admin/django_metronome/djangojob/dashboard/")
    assert "스케줄러 대시보드" in browser.page_source
    assert "작업별 최근 실행" in browser.page_source
    shoot("dashboard-ko.png")

    # A confirmation page: removing the job keeps its run history, it says.
    browser.get(
        f"{live_server.url}/admin/django_metronome/djangojob/check_5Fcampaign_5Fstatus/delete/"
    )
    assert "작업의 실행 기록" in browser.find_element(By.CSS_SELECTOR, ".metronome-alert").text
    shoot("delete-confirmation-ko.png")
    for name in ["job-list-ko.png", "job-page-ko.png", "dashboard-ko.png"]:
        assert (artifacts / name).stat().st_size > 10_000
