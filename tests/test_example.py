"""
The example project (``example/``) on a real database.

The example is a Django project of its own, so each test runs its
``manage.py`` (or Python with its settings) in subprocesses, on a SQLite file
of the test's own: a copy of one migrated at the start of the module.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# The example project keeps its own SQLite file, whatever database the run is
# for: running it once, in the SQLite run, is enough.
pytestmark = pytest.mark.skipif(
    os.environ.get("METRONOME_TEST_DB", "sqlite") != "sqlite",
    reason="the example project runs on SQLite: tested in the SQLite run",
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example"

PRELUDE = """
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import django
django.setup()
from django.db import transaction
from django.utils import timezone

from campaigns.models import Campaign, Funding
from django_metronome.models import DjangoJob, DjangoJobExecution, SchedulerNode

now = timezone.now()

def job_of(campaign):
    job = DjangoJob.objects.filter(pk=f"campaign-{campaign.pk}-end").first()
    if job is None:
        return None
    return {
        "id": job.id, "func_ref": job.func_ref, "source": job.source, "args": job.state["args"],
        "next_run_time": None if job.next_run_time is None else job.next_run_time.isoformat(),
        "run_date": job.trigger().run_date.astimezone(UTC).isoformat(),
        "timezone": job.state["timezone"],
        "updated_at": job.updated_at.isoformat(),
    }

def statuses():
    return dict(Campaign.objects.values_list("title", "status"))
"""


class Example:
    """The example project on a SQLite file of its own."""

    def __init__(self, db: Path) -> None:
        self.db = db

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "SCHEDULER_DEFAULT"}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(EXAMPLE)])
        env["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
        env["EXAMPLE_DATABASE"] = str(self.db)
        env.update(extra)
        return env

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=EXAMPLE,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def python(self, code: str) -> Any:
        """Run ``code`` after the prelude; it ends by printing JSON, which is returned."""
        done = subprocess.run(
            [sys.executable, "-c", PRELUDE + code],
            cwd=EXAMPLE,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the database directly (while processes of the project use it)."""
        connection = sqlite3.connect(self.db, timeout=20)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("example") / "migrated.sqlite3"
    done = Example(db).manage("migrate", "--verbosity", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    return db


@pytest.fixture
def example(migrated, tmp_path) -> Example:
    db = tmp_path / "example.sqlite3"
    shutil.copy(migrated, db)
    return Example(db)


def test_the_checker_closes_ended_campaigns_and_fails_those_short_of_their_goal(example):
    result = example.python("""
from campaigns.checker import CampaignStatusChecker
hour = timedelta(hours=1)
def make(title, end, goal, funded, status="open"):
    campaign = Campaign.objects.create(title=title, end_date=now + end, goal=goal, status=status)
    for amount in funded:
        Funding.objects.create(campaign=campaign, amount=amount)
make("ended, funded", -hour, 100, [60, 40])
make("ended, short", -hour, 100, [50])
make("ended, nothing raised", -hour, 100, [])
make("running, short", hour, 100, [10])
make("running, funded", hour, 100, [200])
make("failed before", -hour, 100, [500], status="failed")
out = {}
out["closed"] = CampaignStatusChecker.check_campaign_status()
out["after status"] = statuses()
out["failed"] = CampaignStatusChecker.check_funding_success()
out["after funding"] = statuses()
out["again"] = [CampaignStatusChecker.check_campaign_status(),
                CampaignStatusChecker.check_funding_success()]
print(json.dumps(out))
""")

    assert result["closed"] == 3
    assert result["after status"] == {
        "ended, funded": "closed",
        "ended, short": "closed",
        "ended, nothing raised": "closed",
        "running, short": "open",
        "running, funded": "open",
        "failed before": "failed",
    }
    assert result["failed"] == 2
    assert result["after funding"] == {
        **result["after status"],
        "ended, short": "failed",
        "ended, nothing raised": "failed",
    }
    assert result["again"] == [0, 0]


def test_a_campaign_gets_a_one_off_job_moved_with_its_end_date_and_removed_with_it(example):
    result = example.python("""
from campaigns.schedule import schedule_campaign_end
out = {}
end = (now + timedelta(days=3)).replace(microsecond=0)
campaign = Campaign.objects.create(title="Solar lamps", end_date=end, goal=1000)
out["created"] = job_of(campaign)
out["nodes"] = SchedulerNode.objects.count()  # no scheduler runs in this process

campaign.title = "Solar lamps for Bukchon"
campaign.save()
out["edited"] = job_of(campaign)

DjangoJob.objects.get(pk=campaign.end_job_id).pause()
campaign.title = "Solar lamps (paused job)"
campaign.save()
out["paused, edited"] = job_of(campaign)

campaign.end_date = end + timedelta(days=2)
campaign.save()
out["moved while paused"] = job_of(campaign)
DjangoJob.objects.get(pk=campaign.end_job_id).resume()

campaign.end_date = end - timedelta(days=1)
out["moved"] = schedule_campaign_end(campaign)
campaign.save()
out["moved job"] = job_of(campaign)

campaign.status = "closed"
campaign.save()
out["closed"] = job_of(campaign)
campaign.status = "open"
campaign.save()
out["reopened"] = job_of(campaign)

pk = campaign.pk
campaign.delete()
out["deleted"] = DjangoJob.objects.filter(pk=f"campaign-{pk}-end").exists()

try:
    with transaction.atomic():
        doomed = Campaign.objects.create(title="rolled back", end_date=end, goal=1)
        doomed_id = doomed.end_job_id
        raise RuntimeError
except RuntimeError:
    pass
out["rolled back"] = DjangoJob.objects.filter(pk=doomed_id).exists()
out["end"] = end.isoformat()
out["later"] = (end + timedelta(days=2)).isoformat()
out["earlier"] = (end - timedelta(days=1)).isoformat()
out["pk"] = pk
print(json.dumps(out))
""")

    pk, end = result["pk"], result["end"]
    created = result["created"]
    assert created["id"] == f"campaign-{pk}-end"
    assert created["func_ref"] == "campaigns.tasks:close_campaign"
    assert created["source"] == "runtime"
    assert created["args"] == [pk]
    assert created["next_run_time"] == end
    assert created["timezone"] == "Asia/Seoul"
    assert result["nodes"] == 0

    assert result["edited"] == created  # not even rewritten
    assert result["paused, edited"]["next_run_time"] is None  # the pause survives an edit
    moved_paused = result["moved while paused"]
    assert moved_paused["run_date"] == result["later"]
    assert moved_paused["next_run_time"] is None  # moved, and still paused
    assert result["moved"] == "moved"
    moved = result["moved job"]
    assert moved["run_date"] == moved["next_run_time"] == result["earlier"]
    assert result["closed"] is None
    assert result["reopened"]["next_run_time"] == result["earlier"]
    assert result["deleted"] is False
    assert result["rolled back"] is False


def test_close_campaign_ends_a_campaign_by_its_funding(example):
    result = example.python("""
from campaigns.tasks import close_campaign
def make(title, end, goal, funded):
    campaign = Campaign.objects.create(title=title, end_date=now + end, goal=goal)
    for amount in funded:
        Funding.objects.create(campaign=campaign, amount=amount)
    return campaign.pk
ago, ahead = timedelta(seconds=-1), timedelta(days=1)
funded = make("funded", ago, 100, [100])
short = make("short", ago, 100, [99])
running = make("running", ahead, 1, [])
out = {"funded": close_campaign(funded), "short": close_campaign(short),
       "running": close_campaign(running), "again": close_campaign(funded),
       "gone": close_campaign(10**9), "statuses": statuses()}
print(json.dumps(out))
""")

    assert result == {
        "funded": "closed",
        "short": "failed",
        "running": None,
        "again": None,
        "gone": None,
        "statuses": {"funded": "closed", "short": "failed", "running": "open"},
    }


LEDGER = """
SELECT job_id, status, exception, traceback FROM django_metronome_djangojobexecution
ORDER BY run_time
"""


@pytest.mark.slow
def test_the_demo_runs_jobs_fills_the_ledger_and_can_be_run_again(example):
    first = example.manage("demo", "--seconds", "15")

    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "Everything went as expected." in out
    assert "FAILED" in out
    assert "ImproperlyConfigured: FUNDING_REPORT_URL is not set" in out
    assert "moved to" in out
    assert "manage.py createsuperuser" in out
    assert "manage.py runserver" in out
    # Commands to type from where the demo was started (here: example/), and a
    # server that runs the scheduler, so that the admin shows one at work.
    assert "./manage.py createsuperuser" in out
    assert "SCHEDULER_DEFAULT=1 " in out and "./manage.py runserver" in out
    shown = out.split("The failed run's traceback")[1].split("\n\n")[0]
    assert shown.count("ImproperlyConfigured: FUNDING_REPORT_URL is not set") == 1, shown
    assert "http://127.0.0.1:8000/admin/" in out
    ledger = example.query(LEDGER)
    statuses = {status for _, status, _, _ in ledger}
    assert statuses == {"succeeded", "failed"}
    (failed,) = [row for row in ledger if row[1] == "failed"]
    assert failed[0] == "demo-send_funding_report"
    assert "raise ImproperlyConfigured(" in failed[3]
    jobs = {row[0] for row in ledger}
    assert {"demo-check_campaign_status", "demo-check_funding_success"} <= jobs
    assert sum(job.startswith("campaign-") for job in jobs) == 3
    campaigns = dict(example.query("SELECT title, status FROM campaigns_campaign"))
    assert campaigns == {
        "Neighbourhood library": "closed",
        "Solar lamps for Bukchon": "failed",
        "Community garden": "closed",
        "Rooftop cinema": "failed",
        "Han river clean-up": "closed",
        "Winter coats drive": "open",
    }
    # Left behind: only the job of the campaign that has not ended.
    left = example.query("SELECT id FROM django_metronome_djangojob")
    (pk,) = example.query("SELECT id FROM campaigns_campaign WHERE title = 'Winter coats drive'")
    assert left == [(f"campaign-{pk[0]}-end",)]

    again = example.manage("demo", "--seconds", "15")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "Everything went as expected." in again.stdout
    assert example.query("SELECT COUNT(*) FROM campaigns_campaign") == [(6,)]
    rerun = [row[0] for row in example.query(LEDGER)]
    assert rerun.count("demo-send_funding_report") == 1
    first_campaign_jobs = {job for job in jobs if job.startswith("campaign-")}
    assert not first_campaign_jobs & set(rerun)  # the first run's campaigns and runs are gone
    assert len(example.query("SELECT id FROM django_metronome_djangojob")) == 1


WEB_WORKER = """
import os, signal, sys, threading
from datetime import datetime
import time_machine
time_machine.travel(datetime.fromisoformat(sys.argv[1]), tick=True).start()
import django
from django.conf import settings
# The clock is moved on purpose: the database's (the default) would undo it.
settings.METRONOME["CLOCK"] = "local"
django.setup()  # campaigns' ready() starts the reference usage's scheduler
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
print("ready", flush=True)
stop.wait()
os._exit(0)
"""

STATUS_JOB = "campaigns.operator:start.<locals>.check_campaign_status_job"
FUNDING_JOB = "campaigns.operator:start.<locals>.check_funding_success_job"


def wait_for(predicate: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"Timed out after {timeout} s waiting for {predicate}")


@pytest.mark.slow
def test_three_web_workers_of_the_example_run_each_daily_fire_once(example, tmp_path):
    pytest.importorskip("time_machine")
    example.python("""
day = datetime(2026, 12, 1, tzinfo=timezone.get_default_timezone())
def make(title, end, goal, funded):
    # bulk_create: no end-date job, so only the daily checks change these.
    (campaign,) = Campaign.objects.bulk_create([Campaign(title=title, end_date=end, goal=goal)])
    Funding.objects.bulk_create(Funding(campaign=campaign, amount=a) for a in funded)
make("ended, funded", day - timedelta(days=1), 100, [100])
make("ended, short", day - timedelta(days=1), 100, [10])
make("ends later", day + timedelta(days=7), 100, [])
print(json.dumps(statuses()))
""")

    logs: list[Path] = []

    def web_workers(wall_time: str) -> list[subprocess.Popen]:
        procs = []
        for number in range(3):
            path = tmp_path / f"worker-{wall_time[11:16]}-{number}.log"
            logs.append(path)
            with open(path, "w") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-c", WEB_WORKER, wall_time],
                        cwd=EXAMPLE,
                        env=example.env(SCHEDULER_DEFAULT="1"),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        return procs

    def stop(procs: list[subprocess.Popen]) -> None:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(30) for proc in procs]
        output = "\n".join(f"--- {log.name}\n{log.read_text()}" for log in logs)
        assert codes == [0, 0, 0], output

    def fires(job_id: str) -> list[tuple[str, str]]:
        return example.query(
            "SELECT run_time, status FROM django_metronome_djangojobexecution WHERE job_id = ?",
            job_id,
        )

    def statuses() -> dict[str, str]:
        return dict(example.query("SELECT title, status FROM campaigns_campaign"))

    # Three web workers start a few seconds before 08:00 in Seoul.
    workers = web_workers("2026-12-01T07:59:55+09:00")
    try:
        wait_for(lambda: fires(STATUS_JOB) and fires(STATUS_JOB)[0][1] == "succeeded", 60)
        time.sleep(2)  # give a duplicate every chance to show up
        nodes = example.query("SELECT COUNT(*) FROM django_metronome_schedulernode")
    finally:
        stop(workers)
    assert fires(STATUS_JOB) == [("2026-11-30 23:00:00", "succeeded")]  # 08:00 in Seoul
    assert nodes == [(3,)]
    assert statuses() == {
        "ended, funded": "closed",
        "ended, short": "closed",
        "ends later": "open",
    }

    # A redeploy: three new workers start before 08:10.
    workers = web_workers("2026-12-01T08:09:55+09:00")
    try:
        wait_for(lambda: fires(FUNDING_JOB) and fires(FUNDING_JOB)[0][1] == "succeeded", 60)
        time.sleep(2)
    finally:
        stop(workers)
    assert fires(FUNDING_JOB) == [("2026-11-30 23:10:00", "succeeded")]
    assert len(fires(STATUS_JOB)) == 1
    assert statuses()["ended, short"] == "failed"
    jobs = example.query("SELECT id, next_run_time FROM django_metronome_djangojob ORDER BY id")
    assert jobs == [
        (STATUS_JOB, "2026-12-01 23:00:00"),
        (FUNDING_JOB, "2026-12-01 23:10:00"),
    ]
