"""The package as a Django app: checks, migrations, settings, connection hygiene, no pickle."""

from __future__ import annotations

import asyncio
from io import StringIO
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import connection

from django_metronome import checks
from django_metronome.util import close_old_connections

PACKAGE = Path(checks.__file__).parent


def error_ids() -> list[str]:
    return [error.id for error in checks.check_settings()]


def test_settings_are_read_once_and_follow_changes(settings):
    from django.test import override_settings

    from django_metronome.conf import conf

    settings.METRONOME = {"POLL_INTERVAL": 2}
    assert conf.POLL_INTERVAL == 2.0
    settings.METRONOME["BATCH_SIZE"] = 7  # the same dict, changed in place
    assert conf.BATCH_SIZE == 7
    with override_settings(METRONOME={"POLL_INTERVAL": 0.25}):
        assert conf.POLL_INTERVAL == 0.25
        assert conf.BATCH_SIZE == 500  # the default: not in this dict
    assert conf.POLL_INTERVAL == 2.0


def test_default_settings_pass_the_checks():
    assert error_ids() == []


@pytest.mark.parametrize(
    ("metronome", "expected"),
    [
        (["TIME_ZONE"], ["django_metronome.E001"]),
        ({"TIME_ZOEN": "UTC"}, ["django_metronome.E002"]),
        ({"TIME_ZONE": "Mars/Olympus_Mons"}, ["django_metronome.E003"]),
        ({"DATABASE": "replica"}, ["django_metronome.E004"]),
        (
            {"TIME_ZONE": "Nowhere", "DATABSE": "x"},
            ["django_metronome.E002", "django_metronome.E003"],
        ),
        ({"POLL_INTERVAL": 0}, ["django_metronome.E005"]),
        ({"BATCH_SIZE": "500"}, ["django_metronome.E005"]),
        ({"HISTORY_MAX_AGE": None, "HISTORY_MAX_PER_JOB": -1}, ["django_metronome.E005"]),
        ({"DEAD_AFTER": float("inf")}, ["django_metronome.E005"]),
        ({"MISFIRE_POLICY": "never"}, ["django_metronome.E006"]),
        ({"DEAD_AFTER": 5, "HEARTBEAT_INTERVAL": 5}, ["django_metronome.E007"]),
        ({"CLOCK": "ntp"}, ["django_metronome.E011"]),
        ({"MAX_CLOCK_OFFSET": 0}, ["django_metronome.E005"]),
    ],
)
def test_bad_settings_have_stable_check_ids(settings, metronome, expected):
    settings.METRONOME = metronome
    assert error_ids() == expected


def test_check_messages_say_what_to_do(settings):
    settings.METRONOME = {"TIME_ZOEN": "UTC", "TIME_ZONE": "Asia/Seol"}
    unknown_key, bad_zone = checks.check_settings()
    assert unknown_key.msg == "METRONOME has an unknown key 'TIME_ZOEN'."
    assert unknown_key.hint == "Did you mean 'TIME_ZONE'?"
    assert (
        bad_zone.msg == "The default time zone of jobs, 'Asia/Seol', is not a known IANA time zone."
    )


def test_unknown_django_time_zone_is_reported(settings):
    settings.METRONOME = {}
    settings.TIME_ZONE = "Asia/Seol"
    assert error_ids() == ["django_metronome.E003"]


@pytest.mark.django_db
def test_manage_py_check_is_clean():
    out = StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()


@pytest.mark.django_db
def test_migrations_match_the_models():
    out = StringIO()
    call_command("makemigrations", "django_metronome", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_no_pickle_in_the_package():
    """
    Job state is JSON: nothing in the package pickles or unpickles, except the
    explicit one-time import of a django-apscheduler database (whose job state
    is pickled), in the one module written for it (legacy/unpickle.py).
    """
    users = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "import pickle" in path.read_text() or "pickle." in path.read_text()
    )
    assert set(users) <= {"legacy/unpickle.py"}, users


@pytest.mark.django_db(transaction=True)
def test_close_old_connections_closes_an_expired_connection(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    connection.close()
    seen = []

    @close_old_connections
    def job(value):
        connection.ensure_connection()
        seen.append(connection.connection)
        return value * 2

    assert job(21) == 42
    assert job.__name__ == "job"
    # CONN_MAX_AGE=0: the connection the job used was closed after it.
    assert seen[0] is not None
    assert connection.connection is None


@pytest.mark.django_db(transaction=True)
def test_close_old_connections_wraps_coroutines(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)

    def open_connection():
        connection.ensure_connection()
        return connection.connection

    @close_old_connections
    async def job():
        return await sync_to_async(open_connection)()

    async def main():
        used = await job()
        left = await sync_to_async(lambda: connection.connection)()
        return used, left

    used, left = asyncio.run(main())
    assert used is not None
    assert left is None


@pytest.mark.django_db
def test_database_checks_pass_on_a_migrated_database():
    assert checks.check_database(databases=["default"]) == []


@pytest.mark.django_db
def test_unapplied_migrations_are_reported():
    from django.db.migrations.recorder import MigrationRecorder

    MigrationRecorder(connection).migration_qs.filter(app="django_metronome").delete()
    (error,) = checks.check_database(databases=["default"])
    assert error.id == "django_metronome.W002"
    assert "0001_initial" in error.msg
    assert error.hint == "Run: python manage.py migrate django_metronome"


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="a warning about SQLite only")
def test_several_processes_on_sqlite_are_warned_about():
    from datetime import UTC, datetime

    from django_metronome.models import SchedulerNode

    now = datetime.now(UTC)
    for pid in (1, 2):
        SchedulerNode.objects.create(
            id=f"h:{pid}", hostname="h", pid=pid, started_at=now, last_heartbeat=now
        )
    assert [e.id for e in checks.check_database(databases=["default"])] == ["django_metronome.W001"]


@pytest.mark.django_db
def test_a_process_whose_clock_is_off_is_warned_about(settings):
    from datetime import UTC, datetime

    from django_metronome.models import SchedulerNode

    settings.METRONOME = {"MAX_CLOCK_OFFSET": 2}
    now = datetime.now(UTC)
    for pid, offset in ((1, 0.01), (2, -30.5), (3, None)):
        SchedulerNode.objects.create(
            id=f"h:{pid}",
            hostname=f"h{pid}",
            pid=pid,
            started_at=now,
            last_heartbeat=now,
            clock_offset=offset,
        )
    warnings = [e for e in checks.check_database(databases=["default"]) if e.id.endswith("W003")]
    (warning,) = warnings
    assert warning.msg == (
        "The clock of scheduler process h:2 is 30.500 s ahead of the database server's "
        "(more than MAX_CLOCK_OFFSET, 2 s)."
    )
    assert "fix the time synchronisation (NTP) of host 'h2'" in warning.hint


def test_a_bad_declaration_in_a_jobs_module_fails_the_check(tmp_path, monkeypatch, settings):
    """A cron typo in jobs.py: manage.py check says where and what, without a scheduler."""
    import sys

    from django_metronome.default import get_scheduler

    package = tmp_path / "typoapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text(
        "from django_metronome import scheduler\n"
        "\n"
        "\n"
        '@scheduler.scheduled_job("cron", day_of_week="MOM", hour=8)\n'
        "def weekly_report():\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "typoapp"]
    pending = len(get_scheduler()._pending_jobs)
    try:
        (error,) = checks.check_job_declarations()
    finally:
        sys.modules.pop("typoapp", None)
    assert error.id == "django_metronome.E010"
    assert error.msg.startswith("The jobs module typoapp.jobs cannot be imported (line 4 of ")
    assert "the day_of_week field has 'MOM'" in error.msg
    assert "Did you mean 'mon'?" in error.msg
    assert not get_scheduler().running
    assert len(get_scheduler()._pending_jobs) == pending


def test_good_jobs_modules_pass_the_check():
    assert checks.check_job_declarations() == []
