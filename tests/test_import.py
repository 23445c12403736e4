"""
``manage.py import_django_apscheduler`` on a real django-apscheduler 0.7.0 database.

A subprocess with ``tests.settings_legacy`` (both apps installed, a fresh
SQLite file) adds jobs with django-apscheduler's own ``DjangoJobStore`` on
APScheduler's ``BackgroundScheduler``, lets two of them run, and adds the run
statuses a short run does not produce through django-apscheduler's models.
The tests then run the import in subprocesses and look at the result.
"""

from __future__ import annotations

import getpass
import json
import os
import pickle
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytest.importorskip("django_apscheduler", reason="needs django-apscheduler==0.7.0")

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


# The functions of the legacy jobs (importable, and allowed: "tests" is the
# package of the settings module).
def tick(*args, **kwargs):
    return None


def explode():
    raise ValueError("the legacy job failed")


SETUP = r"""
import json, os, pickle, time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import time_machine

# The legacy scheduler runs at a set day, ticking (the jobs run every second), so
# that the date job ("once", at `far`) is years ahead whatever the day of the run.
time_machine.travel(datetime(2026, 11, 24, 12, tzinfo=timezone.utc), tick=True).start()

import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from django_apscheduler.jobstores import DjangoJobStore
from django_apscheduler.models import DjangoJob, DjangoJobExecution

SEOUL = ZoneInfo("Asia/Seoul")
far = datetime(2030, 1, 2, 3, 4, 5, tzinfo=SEOUL)
scheduler = BackgroundScheduler(timezone=SEOUL)
scheduler.add_jobstore(DjangoJobStore(), "default")
add = scheduler.add_job
add("tests.test_import:tick", "interval", seconds=1, id="every-second", name="every second")
add("tests.test_import:explode", "interval", seconds=1, id="explodes")
add("tests.test_import:tick", "interval", minutes=30, id="half-hourly", args=["a", 1],
    kwargs={"k": [1, 2.5, None]}, misfire_grace_time=120, max_instances=2, coalesce=False)
add("tests.test_import:tick", CronTrigger(hour=8, minute=10, day_of_week="mon-fri",
    timezone=SEOUL), id="weekday-mornings", name="weekday mornings")
add("tests.test_import:tick", "date", run_date=far, id="once", kwargs={"note": "new year"})
add("tests.test_import:tick", "cron", hour=3, id="paused", next_run_time=None)
add("legacy_jobs:run", "interval", hours=1, id="module-gone")
add("json:dumps", "interval", hours=1, id="not-allowed", args=[[1]])
add("tests.test_import:tick", "interval", hours=2, id="datetime-arg", args=[far])
scheduler.start()
time.sleep(2.6)
scheduler.shutdown(wait=True)

# Rows APScheduler cannot load: garbage, and a pickle that would run a command.
DjangoJob.objects.create(id="garbage", next_run_time=None, job_state=b"not a pickle")

class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + os.environ["EVIL_MARKER"],))

evil = {"version": 1, "id": "evil", "func": "tests.test_import:tick", "trigger": Evil(),
        "executor": "default", "args": (), "kwargs": {}, "name": "evil",
        "misfire_grace_time": 1, "coalesce": True, "max_instances": 1, "next_run_time": None}
DjangoJob.objects.create(id="evil", next_run_time=None, job_state=pickle.dumps(evil))

# The statuses a short run does not produce, as django-apscheduler writes them.
base = datetime(2026, 11, 20, 8, 10, tzinfo=SEOUL)
def run(job_id, status, offset, duration=None, **fields):
    run_time = base + timedelta(days=offset)
    finished = None
    if duration is not None:
        finished = Decimal(str(round(run_time.timestamp() + float(duration), 2)))
    DjangoJobExecution.objects.create(job_id=job_id, status=status, run_time=run_time,
        duration=duration, finished=finished, **fields)
run("weekday-mornings", "Executed", 0, Decimal("0.25"))
run("weekday-mornings", "Missed!", 1, Decimal("12.50"))
run("weekday-mornings", "Max instances!", 2, Decimal("0.01"))
run("weekday-mornings", "Error!", 3, Decimal("1.75"), exception="boom",
    traceback="Traceback (most recent call last):\n  ...\nValueError: boom\n")
run("once", "Started execution", 4)
run("module-gone", "Executed", 5, Decimal("3.00"))
run("half-hourly", "Lost in space", 6, Decimal("1.00"))
print(json.dumps({"jobs": DjangoJob.objects.count(), "runs": DjangoJobExecution.objects.count()}))
"""

# What both sides hold after an import, as JSON.
INSPECT = r"""
import hashlib, json, pickle
from datetime import datetime, timezone

import django
django.setup()
from django.db import connection
from django_metronome.models import DjangoJob, DjangoJobExecution

START = datetime(2026, 11, 25, tzinfo=timezone.utc)

def fires(trigger, count=6):
    out, previous, now = [], None, START
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        out.append(fire.isoformat())
        previous = now = fire
    return out

def iso(value):
    return None if value is None else value.astimezone(timezone.utc).isoformat()

def seconds(value):
    return None if value is None else value.total_seconds()

result = {"jobs": {}, "runs": [], "legacy": {}}
for job in DjangoJob.objects.all():
    trigger = job.trigger()
    result["jobs"][job.id] = {
        "name": job.name, "source": job.source, "func_ref": job.func_ref,
        "next_run_time": iso(job.next_run_time), "state": job.state,
        "trigger": repr(trigger), "fires": fires(trigger),
    }
for run in DjangoJobExecution.objects.order_by("job_id", "run_time"):
    result["runs"].append({
        "job_id": run.job_id, "job_name": run.job_name, "run_time": iso(run.run_time),
        "status": run.status, "duration": seconds(run.duration),
        "lateness": seconds(run.lateness), "finished_at": iso(run.finished_at),
        "reason": run.reason, "exception": run.exception, "traceback": run.traceback,
        "node": run.node,
    })
digest = hashlib.sha256()
with connection.cursor() as cursor:
    cursor.execute(
        "SELECT id, next_run_time, job_state FROM django_apscheduler_djangojob ORDER BY id"
    )
    for job_id, next_run_time, state in cursor.fetchall():
        digest.update(repr((job_id, next_run_time, bytes(state))).encode())
        if job_id in ("evil", "garbage"):  # the test's own pickle.loads must not run it
            continue
        try:
            legacy = pickle.loads(state)
        except Exception:
            continue
        result["legacy"][job_id] = {
            "next_run_time": iso(legacy["next_run_time"]), "trigger": repr(legacy["trigger"]),
            "fires": fires(legacy["trigger"]), "args": list(legacy["args"]),
            "kwargs": legacy["kwargs"], "name": legacy["name"],
        }
    cursor.execute(
        "SELECT job_id, status, run_time, duration, finished, exception, traceback "
        "FROM django_apscheduler_djangojobexecution ORDER BY id"
    )
    rows = cursor.fetchall()
    digest.update(repr(rows).encode())
    result["legacy_runs"] = [
        {"job_id": row[0], "status": row[1], "run_time": iso(row[2].replace(tzinfo=timezone.utc)),
         "duration": None if row[3] is None else float(row[3]),
         "finished": None if row[4] is None else float(row[4])}
        for row in rows
    ]
result["legacy_digest"] = digest.hexdigest()
print(json.dumps(result, default=repr))
"""

IMPORTABLE = {"every-second", "explodes", "half-hourly", "weekday-mornings", "once", "paused"}
NOT_IMPORTABLE = {"module-gone", "not-allowed", "datetime-arg", "garbage", "evil"}


class Servers:
    """
    Databases for the legacy project, on the database kind of this test run.

    SQLite and PostgreSQL copy one prepared database for each test (a file copy;
    ``CREATE DATABASE ... TEMPLATE``); on MariaDB each test prepares its own.
    """

    def __init__(self) -> None:
        kind = os.environ.get("METRONOME_TEST_DB", "sqlite")
        self.kind = kind if kind in ("postgres", "mariadb") else "sqlite"
        self.tag = f"{os.environ.get('METRONOME_TEST_TAG', '')}_{os.getpid()}"
        self.count = 0
        self.created: list[str] = []

    def new_name(self, directory: Path) -> str:
        self.count += 1
        if self.kind == "sqlite":
            return str(directory / f"legacy-{self.count}.sqlite3")
        # The tests' MariaDB user may create databases named test_metronome*.
        return f"test_metronome_legacy{self.tag}_{self.count}"

    def _execute(self, sql: str) -> None:
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(
                dbname="postgres",
                user=os.environ.get("PGUSER", getpass.getuser()),
                host=os.environ.get("PGHOST") or None,
                port=os.environ.get("PGPORT") or None,
                autocommit=True,
            ) as connection:
                connection.execute(sql)
        else:
            import MySQLdb

            connection = MySQLdb.connect(
                user=os.environ.get("MYSQL_USER", "metronome"),
                password=os.environ.get("MYSQL_PASSWORD", "metronome"),
                host=os.environ.get("MYSQL_HOST", "127.0.0.1"),
                port=int(os.environ.get("MYSQL_PORT", "3306")),
            )
            try:
                connection.cursor().execute(sql)
            finally:
                connection.close()

    def create(self, name: str, template: str | None = None) -> bool:
        """Make an empty database (or a copy of ``template``); False if it cannot copy."""
        if self.kind == "sqlite":
            if template is not None:
                shutil.copy(template, name)
            return True
        if template is not None and self.kind == "mariadb":
            return False
        if self.kind == "postgres":
            copy = f' TEMPLATE "{template}"' if template else ""
            self._execute(f'CREATE DATABASE "{name}"{copy}')
        else:
            self._execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        self.created.append(name)
        return True

    def drop_all(self) -> None:
        for name in self.created:
            if self.kind == "postgres":
                self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                self._execute(f"DROP DATABASE IF EXISTS `{name}`")
        self.created.clear()


class Legacy:
    """A django-apscheduler database of its own, and commands run on it."""

    def __init__(self, servers: Servers, directory: Path, name: str) -> None:
        self.servers = servers
        self.directory = directory
        self.name = name
        self.marker = directory / "evil-was-run"

    def env(self, *extra_path: Path, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), *map(str, extra_path)])
        env["DJANGO_SETTINGS_MODULE"] = "tests.settings_legacy"
        env["LEGACY_DB_KIND"] = self.servers.kind
        env["LEGACY_DB"] = self.name
        env["EVIL_MARKER"] = str(self.marker)
        env.update(extra)
        return env

    def python(self, code: str, *extra_path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=self.env(*extra_path),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def manage(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=ROOT,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def set_up(self, jobs_dir: Path) -> None:
        """Fill the database with django-apscheduler (legacy_jobs.py is in jobs_dir)."""
        done = self.python(SETUP, jobs_dir)
        assert done.returncode == 0, done.stdout + done.stderr
        counts = json.loads(done.stdout.strip().splitlines()[-1])
        assert counts["jobs"] == 11

    def import_(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.manage("import_django_apscheduler", *args, **env)

    def inspect(self) -> dict:
        done = self.python(INSPECT)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture(scope="module")
def servers():
    servers = Servers()
    yield servers
    servers.drop_all()


@pytest.fixture(scope="module")
def jobs_dir(tmp_path_factory) -> Path:
    """Where legacy_jobs.py is while django-apscheduler schedules it (and only then)."""
    directory = tmp_path_factory.mktemp("legacy-jobs")
    (directory / "legacy_jobs.py").write_text("def run():\n    return None\n")
    return directory


@pytest.fixture(scope="module")
def template(servers, jobs_dir) -> str:
    """A django-apscheduler 0.7.0 database made by django-apscheduler itself."""
    name = servers.new_name(jobs_dir)
    servers.create(name)
    Legacy(servers, jobs_dir, name).set_up(jobs_dir)
    return name


@pytest.fixture
def legacy(servers, jobs_dir, template, tmp_path) -> Legacy:
    name = servers.new_name(tmp_path)
    legacy = Legacy(servers, tmp_path, name)
    if not servers.create(name, template):
        servers.create(name)
        legacy.set_up(jobs_dir)
    # legacy_jobs.py is not on the path of the import: "module-gone" cannot be imported.
    return legacy


def lines_of(output: str) -> dict[str, str]:
    """The report's job lines, by job id."""
    found = {}
    for line in output.splitlines():
        words = line.split()
        for job_id in IMPORTABLE | NOT_IMPORTABLE:
            if job_id in words[:4]:
                found[job_id] = line
    return found


def test_the_jobs_and_history_are_imported_and_the_rest_listed(legacy):
    before = legacy.inspect()
    assert before["jobs"] == {}
    assert before["runs"] == []

    done = legacy.import_()

    assert done.returncode == 1, done.stdout + done.stderr
    assert "5 of 11 job(s) could not be imported" in done.stderr
    assert "6 imported, 0 replaced, 0 already there, 0 kept, 5 could not be imported" in (
        done.stdout
    )
    report = lines_of(done.stdout)
    for job_id in IMPORTABLE:
        assert report[job_id].split()[0] == "imported"
    for job_id in NOT_IMPORTABLE:
        assert report[job_id].split()[0] == "FAILED"
    assert "legacy_jobs:run cannot be imported: ModuleNotFoundError" in report["module-gone"]
    assert "json:dumps is not in an installed app" in report["not-allowed"]
    assert (
        "args[0] is a datetime.datetime, which cannot be stored as JSON" in (report["datetime-arg"])
    )
    assert "its pickled state cannot be read" in report["garbage"]
    assert "refers to posix.system, which the import does not load" in report["evil"]
    assert not legacy.marker.exists(), "unpickling the evil row ran its command"

    after = legacy.inspect()
    assert after["legacy_digest"] == before["legacy_digest"], "the legacy tables changed"
    jobs, old = after["jobs"], after["legacy"]
    assert set(jobs) == IMPORTABLE
    for job_id in IMPORTABLE:
        job = jobs[job_id]
        assert job["source"] == "runtime"
        assert job["name"] == old[job_id]["name"]
        assert job["next_run_time"] == old[job_id]["next_run_time"]
        assert job["trigger"] == old[job_id]["trigger"]
        assert job["fires"] == old[job_id]["fires"]
        assert job["state"]["args"] == old[job_id]["args"]
        assert job["state"]["kwargs"] == old[job_id]["kwargs"]
    assert jobs["every-second"]["func_ref"] == "tests.test_import:tick"
    assert jobs["explodes"]["func_ref"] == "tests.test_import:explode"
    assert jobs["paused"]["next_run_time"] is None
    assert jobs["weekday-mornings"]["state"]["timezone"] == "Asia/Seoul"
    assert jobs["weekday-mornings"]["fires"][0] == "2026-11-26T08:10:00+09:00"
    assert jobs["once"]["next_run_time"] == "2030-01-01T18:04:05+00:00"
    half = jobs["half-hourly"]["state"]
    assert (half["misfire_grace_time"], half["max_instances"], half["coalesce"]) == (120, 2, False)

    runs = after["runs"]
    assert len(runs) == len(after["legacy_runs"])
    legacy_keys = {(r["job_id"], r["run_time"]) for r in after["legacy_runs"]}
    assert {(r["job_id"], r["run_time"]) for r in runs} == legacy_keys
    assert {r["node"] for r in runs} == {"django-apscheduler (imported)"}
    ran = [r for r in runs if r["job_id"] == "every-second"]
    assert ran and {r["status"] for r in ran} == {"succeeded"}
    assert all(r["job_name"] == "every second" for r in ran)
    failed = [r for r in runs if r["job_id"] == "explodes"]
    assert failed and {r["status"] for r in failed} == {"failed"}
    assert all("the legacy job failed" in r["exception"] for r in failed)
    assert all("ValueError" in r["traceback"] for r in failed)

    morning = {r["status"]: r for r in runs if r["job_id"] == "weekday-mornings"}
    assert set(morning) == {"succeeded", "missed", "skipped", "failed"}
    assert morning["succeeded"]["duration"] == 0.25
    assert morning["succeeded"]["finished_at"] == "2026-11-19T23:10:00.250000+00:00"
    assert morning["missed"]["lateness"] == 12.5
    assert morning["missed"]["duration"] is None
    assert "missed" in morning["missed"]["reason"]
    assert "maximum number of instances" in morning["skipped"]["reason"]
    assert morning["failed"]["exception"] == "boom"
    assert morning["failed"]["traceback"].endswith("ValueError: boom\n")
    (started,) = [r for r in runs if r["job_id"] == "once"]
    assert started["status"] == "interrupted"
    assert "found it unfinished" in started["reason"]
    assert started["finished_at"] is None
    (gone,) = [r for r in runs if r["job_id"] == "module-gone"]
    assert gone["status"] == "succeeded"  # the history of a job not imported is kept too
    (odd,) = [r for r in runs if r["job_id"] == "half-hourly"]
    assert odd["status"] == "interrupted"
    assert "'Lost in space'" in odd["reason"]
    assert "1 legacy run(s) have the unknown status 'Lost in space'" in done.stdout


def test_running_it_again_adds_nothing(legacy):
    first = legacy.import_()
    assert first.returncode == 1
    once = legacy.inspect()

    # (Without django_apscheduler installed, this time: the tables are enough.)
    again = legacy.import_(LEGACY_APP_REMOVED="1")

    assert again.returncode == 1, again.stdout + again.stderr
    assert "0 imported, 0 replaced, 6 already there, 0 kept, 5 could not be imported" in (
        again.stdout
    )
    assert f"0 run(s) added to the ledger; {len(once['runs'])} already there." in again.stdout
    for job_id in IMPORTABLE:
        assert "already in django-metronome" in lines_of(again.stdout)[job_id]
    twice = legacy.inspect()
    assert twice["jobs"] == once["jobs"]
    assert twice["runs"] == once["runs"]


def test_a_dry_run_writes_nothing(legacy):
    done = legacy.import_("--dry-run")

    assert done.returncode == 1
    assert "dry run: nothing is written" in done.stdout
    assert "6 would import" in done.stdout
    assert lines_of(done.stdout)["once"].split()[:2] == ["would", "import"]
    runs = len(legacy.inspect()["legacy_runs"])
    assert f"{runs} run(s) would be added to the ledger" in done.stdout
    after = legacy.inspect()
    assert after["jobs"] == {}
    assert after["runs"] == []


CHANGE_JOBS = r"""
import django
django.setup()
from django_metronome.models import DjangoJob
DjangoJob.objects.filter(pk="half-hourly").update(name="renamed", next_run_time=None)
DjangoJob.objects.filter(pk="weekday-mornings").update(source="code", name="declared")
"""


def test_replace_overwrites_imported_jobs_but_not_jobs_declared_in_code(legacy):
    assert legacy.import_().returncode == 1
    imported = legacy.inspect()["jobs"]
    done = legacy.python(CHANGE_JOBS)
    assert done.returncode == 0, done.stderr

    skipped = legacy.import_()
    assert "already in django-metronome, and different" in lines_of(skipped.stdout)["half-hourly"]
    assert legacy.inspect()["jobs"]["half-hourly"]["name"] == "renamed"

    replaced = legacy.import_("--replace")

    report = lines_of(replaced.stdout)
    assert report["half-hourly"].split()[0] == "replaced"
    assert report["weekday-mornings"].split()[0] == "kept"
    assert "declared in your code" in report["weekday-mornings"]
    jobs = legacy.inspect()["jobs"]
    assert jobs["half-hourly"] == imported["half-hourly"]
    assert jobs["weekday-mornings"]["name"] == "declared"


def test_a_database_without_the_legacy_tables_is_refused(servers, tmp_path):
    legacy = Legacy(servers, tmp_path, servers.new_name(tmp_path))
    servers.create(legacy.name)
    assert legacy.manage("migrate", "django_metronome", "--verbosity", "0").returncode == 0

    done = legacy.import_()

    assert done.returncode == 1
    assert "has no table django_apscheduler_djangojob" in done.stderr


# --- the unpickler, in this process ---------------------------------------------------


def state_of(trigger, **changes) -> bytes:
    state = {
        "version": 1,
        "id": "x",
        "func": "tests.test_import:tick",
        "trigger": trigger,
        "executor": "default",
        "args": (),
        "kwargs": {},
        "name": "x",
        "misfire_grace_time": 1,
        "coalesce": True,
        "max_instances": 1,
        "next_run_time": None,
        **changes,
    }
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def test_the_unpickler_loads_triggers_datetimes_and_zones():
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    from django_metronome.legacy import load_job_state

    trigger = OrTrigger(
        [
            CronTrigger(hour="8-10", minute="*/15", timezone="Asia/Seoul"),
            IntervalTrigger(hours=2, start_date=datetime(2026, 1, 1, tzinfo=UTC)),
        ]
    )
    when = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    state = load_job_state(state_of(trigger, next_run_time=when, args=(1, "a", [2])))

    assert repr(state["trigger"]) == repr(trigger)
    assert state["next_run_time"] == when
    assert state["args"] == (1, "a", [2])


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not a pickle", "its pickled state cannot be read"),
        (pickle.dumps({"version": 1}), "is not an APScheduler job state"),
        (state_of(None, version=2), "has version 2"),
    ],
)
def test_the_unpickler_reports_unreadable_states(payload, reason):
    from django_metronome.legacy import NotImportable, load_job_state

    with pytest.raises(NotImportable, match=reason):
        load_job_state(payload)


class Plain:
    """An object argument: django-apscheduler pickled it by its class."""


class RunsACommand:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


class WalksToGlobals:
    """getattr(ZoneInfo, '__init__') and the like: the general getattr is not given."""

    def __reduce__(self):
        from zoneinfo import ZoneInfo

        return (getattr, (ZoneInfo, "__init__"))


def test_the_unpickler_refuses_what_a_job_state_does_not_hold():
    from django_metronome.legacy import NotImportable, load_job_state

    with pytest.raises(NotImportable, match=r"refers to posix\.system"):
        load_job_state(state_of(RunsACommand()))
    with pytest.raises(NotImportable, match="asks for the attribute '__init__'"):
        load_job_state(state_of(WalksToGlobals()))
    with pytest.raises(NotImportable, match=r"refers to tests\.test_import\.Plain"):
        load_job_state(state_of(None, args=(Plain(),)))
    with pytest.raises(NotImportable, match=r"refers to datetime\.sys"):
        load_job_state(b"\x80\x04\x8c\x08datetime\x94\x8c\x03sys\x94\x93\x94.")
