"""
A scheduler started from ``AppConfig.ready()`` runs where it should, and only there.

The reference usage calls ``start()`` in ``ready()``, which Django runs in
every process that loads the project: web workers, but also ``migrate``,
``check``, ``shell``, and both processes of ``runserver`` with its
autoreloader. These tests start real processes of a project whose ``ready()``
does that (``tests/readyapp``) and count, in the ledger and in the job's own
side effects, which processes fire. They also check that a second ``start()``
on a running scheduler changes nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC

import pytest
from apscheduler.schedulers import SchedulerAlreadyRunningError

from django_metronome.autostart import decide_while_loading
from django_metronome.models import DjangoJobExecution, SchedulerNode
from django_metronome.schedulers import BackgroundScheduler, BlockingScheduler
from tests.conftest import wait_for
from tests.proctools import ROOT
from tests.test_autostart import free_port
from tests.testapp import jobs
from tests.testapp.models import FireRecord

JOB = "tests.readyapp.operator:start.<locals>.ready_tick"
#: The environment of a process that must decide by itself.
UNFORCED = {"METRONOME_AUTOSTART": "", "READY_FORCE": ""}


# --- the rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["manage.py", "runserver"], {}, (False, "the autoreloader's parent process of runserver")),
        (["manage.py", "runserver"], {"RUN_MAIN": "true"}, (True, "runserver")),
        (["manage.py", "runserver", "--noreload"], {}, (True, "runserver")),
        (["manage.py", "runscheduler"], {}, (True, "the management command 'runscheduler'")),
        (["manage.py", "migrate"], {}, (False, "the management command 'migrate'")),
        (["manage.py", "check"], {}, (False, "the management command 'check'")),
        (["manage.py", "shell"], {}, (False, "the management command 'shell'")),
        (["/x/django/__main__.py", "metronome"], {}, (False, "the management command 'metronome'")),
        (["/venv/bin/gunicorn", "mysite.wsgi"], {}, (True, "gunicorn, not a management command")),
        (["/venv/bin/celery", "worker"], {}, (True, "celery, not a management command")),
        (["/venv/bin/pytest"], {}, (False, "a pytest run")),
        (["/venv/lib/pytest/__main__.py", "-q"], {}, (False, "a pytest run")),
        (["manage.py", "migrate"], {"METRONOME_AUTOSTART": "1"}, (True, "METRONOME_AUTOSTART=1")),
        (["/venv/bin/gunicorn"], {"METRONOME_AUTOSTART": "0"}, (False, "METRONOME_AUTOSTART=0")),
    ],
)
def test_where_a_scheduler_started_in_ready_starts(argv, environ, expected):
    assert decide_while_loading(argv, environ) == expected


def test_more_commands_can_be_named_in_the_settings(settings):
    settings.METRONOME = {"START_IN_COMMANDS": ["runworker"]}
    assert decide_while_loading(["manage.py", "runworker"], {}) == (
        True,
        "the management command 'runworker' (METRONOME['START_IN_COMMANDS'])",
    )
    assert decide_while_loading(["manage.py", "migrate"], {})[0] is False


# --- real processes ----------------------------------------------------------------


def manage(processes, *args, program=None, **env):
    """Run a management command of the project to completion; return its output."""
    command = [sys.executable, *(program or ["-m", "django"]), *args]
    result = subprocess.run(
        [*command, "--settings=tests.settings_ready"],
        cwd=ROOT,
        env=processes.env(**{**UNFORCED, **env}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def fires_by_node():
    counts: dict[str, int] = {}
    for node in DjangoJobExecution.objects.filter(job_id=JOB).values_list("node", flat=True):
        counts[node] = counts.get(node, 0) + 1
    return counts


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_management_commands_start_nothing_and_say_why(processes, tmp_path):
    # A console script of the project's own, not manage.py: the command is found
    # from Django's own frame, not from the script's name.
    script = tmp_path / "mysite-admin"
    script.write_text(
        "import sys\n"
        "from django.core.management import execute_from_command_line\n"
        "execute_from_command_line(sys.argv)\n"
    )
    for args, program in (
        (["check"], [str(script)]),
        (["migrate"], None),
        (["metronome", "list"], None),
        (["shell", "-c", "import time; time.sleep(1.5)"], None),
    ):
        output = manage(processes, *args, program=program)
        assert output.count("Not starting the BackgroundScheduler") == 1, output
        assert (
            "Not starting the BackgroundScheduler started from tests/readyapp/operator.py:"
            in output
        ), output
        assert f"in this process: the management command {args[0]!r}." in output, output
        assert "start(force=True)" in output
        assert "database is locked" not in output
    assert not SchedulerNode.objects.exists()
    assert not DjangoJobExecution.objects.exists()


WAIT_FOR_A_FIRE = (
    "from django_metronome.models import DjangoJobExecution as E\n"
    "import time\n"
    "deadline = time.monotonic() + 60\n"
    "while not E.objects.filter(status='succeeded').exists() and time.monotonic() < deadline:\n"
    "    time.sleep(0.1)\n"
    "print('fired' if E.objects.filter(status='succeeded').exists() else 'nothing')\n"
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.parametrize("how", [{"READY_FORCE": "1"}, {"METRONOME_AUTOSTART": "1"}])
def test_force_starts_it_in_a_command(processes, how):
    output = manage(processes, "shell", "-c", WAIT_FOR_A_FIRE, **how)
    assert "fired" in output, output
    assert "Starting the BackgroundScheduler started from tests/readyapp/operator.py:" in output
    (node,) = SchedulerNode.objects.filter(pk__in=fires_by_node())
    # The process exited cleanly: its schedulers stopped with it (with
    # METRONOME_AUTOSTART=1 the default scheduler started too).
    assert node.stopped_at is not None
    assert not SchedulerNode.objects.filter(stopped_at__isnull=True).exists()


def runserver(processes, *options, settings="tests.settings_ready", **env):
    return processes.start(
        [
            "-m",
            "django",
            "runserver",
            *options,
            f"127.0.0.1:{free_port()}",
            f"--settings={settings}",
        ],
        handles_sigterm=False,
        **{**UNFORCED, **env},
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_runserver_without_the_reloader_runs_one_scheduler(processes):
    server = runserver(processes, "--noreload")
    wait_for(lambda: sum(fires_by_node().values()) >= 2, timeout=60)
    (node,) = SchedulerNode.objects.all()
    assert node.pid == server.pid
    assert set(fires_by_node()) == {node.id}
    assert set(FireRecord.objects.values_list("pid", flat=True)) == {server.pid}


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_after_a_reload_exactly_one_process_fires(processes, tmp_path):
    # A settings module of the test's own, which the autoreloader watches: touching
    # it stands for a code edit.
    (tmp_path / "ready_settings_here.py").write_text("from tests.settings_ready import *\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src"), str(ROOT)])}
    server = runserver(processes, settings="ready_settings_here", **env)

    first = wait_for(lambda: SchedulerNode.objects.first(), timeout=60)
    wait_for(lambda: fires_by_node().get(first.id, 0) >= 2, timeout=60)
    assert first.pid != server.pid  # the serving child, not the reloader's parent

    # File times come from the real clock, whatever this process's says (a shifted run).
    later = (tmp_path / "ready_settings_here.py").stat().st_mtime + 5
    os.utime(tmp_path / "ready_settings_here.py", (later, later))
    second = wait_for(lambda: SchedulerNode.objects.exclude(pk=first.pk).first(), timeout=60)
    wait_for(lambda: fires_by_node().get(second.id, 0) >= 3, timeout=60)

    nodes = {node.id: node for node in SchedulerNode.objects.all()}
    assert set(nodes) == {first.id, second.id}
    assert server.pid not in {node.pid for node in nodes.values()}
    assert second.pid not in (first.pid, server.pid)
    # The old child stopped its scheduler as it exited for the reload ...
    assert nodes[first.id].stopped_at is not None
    assert nodes[first.id].stopped_at <= nodes[second.id].started_at
    # ... and since the new one started, only the new one fires.
    since = DjangoJobExecution.objects.filter(job_id=JOB, run_time__gt=second.started_at)
    assert set(since.values_list("node", flat=True)) == {second.id}
    pids = set(FireRecord.objects.values_list("pid", flat=True))
    assert pids == {first.pid, second.pid}
    # The parent said once why it runs no scheduler.
    log = processes.logs()
    assert log.count("the autoreloader's parent process of runserver") == 1, log


# --- a second start() changes nothing ----------------------------------------------


@pytest.fixture
def fast_settings(settings):
    settings.METRONOME = {
        "POLL_INTERVAL": 0.05,
        "HEARTBEAT_INTERVAL": 0.2,
        "DEAD_AFTER": 2,
        "SHUTDOWN_TIMEOUT": 5,
    }


def succeeded(job_id: str) -> int:
    return DjangoJobExecution.objects.filter(job_id=job_id, status="succeeded").count()


def started_node(scheduler) -> SchedulerNode:
    return wait_for(lambda: SchedulerNode.objects.filter(pk=scheduler.identity).first())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_settings")
@pytest.mark.parametrize("cls", [BackgroundScheduler, BlockingScheduler])
def test_a_second_start_raises_and_changes_nothing(cls):
    scheduler = cls(timezone=UTC)
    scheduler.add_job(jobs.noop, "interval", seconds=1, id="tick")
    runner = None
    if cls is BlockingScheduler:
        runner = threading.Thread(target=scheduler.start, daemon=True)
        runner.start()
    else:
        scheduler.start()
    try:
        wait_for(lambda: succeeded("tick") >= 1, timeout=15)
        before = started_node(scheduler)
        writer = scheduler._writer

        with pytest.raises(SchedulerAlreadyRunningError):
            scheduler.start()

        node = SchedulerNode.objects.get(pk=scheduler.identity)
        assert (node.started_at, node.stopped_at) == (before.started_at, None)
        assert scheduler._writer is writer
        count = succeeded("tick")
        wait_for(lambda: succeeded("tick") >= count + 2, timeout=15)
        assert not DjangoJobExecution.objects.filter(job_id="tick", status="skipped").exists()
    finally:
        began = time.monotonic()
        scheduler.shutdown(wait=True)
        took = time.monotonic() - began
        if runner is not None:
            runner.join(10)
    assert took < 3, f"shutdown took {took:.1f} s"
    assert not DjangoJobExecution.objects.filter(status__in=["running", "interrupted"]).exists()
    assert SchedulerNode.objects.get(pk=scheduler.identity).stopped_at is not None


def test_once_per_process_from_the_same_place(monkeypatch, caplog):
    """ready() run twice (a test runner, a second django.setup()) starts one scheduler."""
    from django_metronome import autostart
    from django_metronome.loop import startrules

    monkeypatch.setenv("METRONOME_AUTOSTART", "1")
    monkeypatch.setattr(startrules, "_loading_starts", set())
    caplog.set_level("INFO", logger="django_metronome.autostart")
    scheduler = BackgroundScheduler(timezone=UTC)
    answers = [autostart.may_start_while_loading(scheduler, False) for _ in range(2)]
    assert answers == [True, False]
    assert "a scheduler was started from there already in this process" in caplog.text
    # force=True is the way to start another from the same place anyway.
    assert autostart.may_start_while_loading(scheduler, True)
