"""
Which processes start a scheduler by themselves, and that four web workers
doing so still run each fire once.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from django_metronome.autostart import decide
from django_metronome.models import DjangoJobExecution, SchedulerNode
from tests.conftest import wait_for
from tests.proctools import ROOT, duplicates
from tests.testapp.models import FireRecord

ON = {"METRONOME_AUTOSTART": ""}


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["/venv/bin/gunicorn", "mysite.wsgi"], {}, (True, "a gunicorn server process")),
        (["/venv/bin/uvicorn", "mysite.asgi:app"], {}, (True, "a uvicorn server process")),
        (["/venv/bin/daphne", "mysite.asgi:app"], {}, (True, "a daphne server process")),
        (["manage.py", "runserver"], {"RUN_MAIN": "true"}, (True, "runserver")),
        (["manage.py", "runserver", "--noreload"], {}, (True, "runserver")),
        (
            ["manage.py", "runserver"],
            {},
            (False, "the autoreloader's parent process of runserver"),
        ),
        (["manage.py", "migrate"], {}, (False, "the management command 'migrate'")),
        (["manage.py", "shell"], {}, (False, "the management command 'shell'")),
        (["manage.py", "runscheduler"], {}, (False, "the management command 'runscheduler'")),
        (["/venv/bin/celery", "worker"], {}, (False, "not a server process")),
        (["/venv/bin/pytest"], {}, (False, "not a server process")),
        (["manage.py", "migrate"], {"METRONOME_AUTOSTART": "1"}, (True, "METRONOME_AUTOSTART=1")),
        (["/venv/bin/gunicorn"], {"METRONOME_AUTOSTART": "0"}, (False, "METRONOME_AUTOSTART=0")),
    ],
)
def test_which_processes_start_a_scheduler(argv, environ, expected):
    assert decide(argv, environ, enabled=True) == expected


def test_nothing_starts_unless_the_setting_is_on():
    assert decide(["/venv/bin/gunicorn"], {}, enabled=False) == (
        False,
        "METRONOME['AUTOSTART'] is off",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def runserver(processes, **env):
    return processes.start(
        [
            "-m",
            "django",
            "runserver",
            "--noreload",
            f"127.0.0.1:{free_port()}",
            "--settings=tests.settings_autostart",
        ],
        handles_sigterm=False,
        METRONOME_PROC_JOBS="every-second",
        **env,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_four_web_workers_run_each_fire_once(processes):
    for _ in range(4):
        runserver(processes)
    wait_for(lambda: SchedulerNode.objects.filter(stopped_at__isnull=True).count() == 4, timeout=60)
    wait_for(lambda: FireRecord.objects.filter(job_id="every-second").count() >= 5, timeout=30)
    processes.stop()

    assert duplicates() == []
    # runserver dies on SIGTERM: a fire may have run with its outcome not yet written.
    every = DjangoJobExecution.objects.filter(job_id="every-second")
    ran = set(FireRecord.objects.values_list("run_time", flat=True))
    assert set(every.filter(status="succeeded").values_list("run_time", flat=True)) <= ran
    assert ran <= set(every.values_list("run_time", flat=True))


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_other_commands_start_nothing(processes):
    for command in (["check"], ["showmigrations", "django_metronome"]):
        result = subprocess.run(
            [sys.executable, "-m", "django", *command, "--settings=tests.settings_autostart"],
            cwd=ROOT,
            env=processes.env(METRONOME_PROC_JOBS="every-second"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    assert not SchedulerNode.objects.exists()


@pytest.mark.slow
def test_the_scheduler_waits_for_the_migrations(tmp_path, processes):
    database = str(Path(tmp_path) / "fresh.sqlite3")
    env = {"METRONOME_TEST_DB": "sqlite", "METRONOME_TEST_DB_NAME": database}
    server = runserver(processes, **env)

    wait_for(lambda: "waits for django_metronome's migrations" in processes.logs(), timeout=60)
    migrate = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--settings=tests.settings_autostart"],
        cwd=ROOT,
        env=processes.env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr

    def nodes():
        db = sqlite3.connect(database)
        try:
            return db.execute("SELECT count(*) FROM django_metronome_schedulernode").fetchone()[0]
        finally:
            db.close()

    wait_for(nodes, timeout=30)
    assert server.poll() is None
