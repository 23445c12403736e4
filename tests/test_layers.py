"""
The layout is the architecture: the time core stands without Django, and every
import path the README and the docs show keeps working.

The import-linter contracts in ``pyproject.toml`` (run by ``scripts/test``)
check the layers themselves.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

NO_DJANGO = r"""
import sys


class NoDjango:
    def find_spec(self, name, path=None, target=None):
        if name == "django" or name.startswith("django.") or name == "asgiref":
            raise ImportError(f"{name} is not importable in this process")
        return None


sys.meta_path.insert(0, NoDjango())

import pkgutil
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import django_metronome.time as time_core

names = [m.name for m in pkgutil.iter_modules(time_core.__path__)]
for name in names:
    __import__(f"django_metronome.time.{name}")

from django_metronome.time.crontab import next_after
from django_metronome.time.firing import plan_fires
from django_metronome.time.preview import describe_trigger, next_fire_times
from django_metronome.time.triggers import CrontabTrigger

trigger = CrontabTrigger("0 8 * * 1-5", "Asia/Seoul")
after = datetime(2026, 3, 5, 0, 0, tzinfo=UTC)  # 09:00 on Thursday in Seoul
print(next_after("0 8 * * 1-5", ZoneInfo("Asia/Seoul"), after).isoformat())
print(describe_trigger(trigger))
assert not any(m == "django" or m.startswith("django.") for m in sys.modules), "Django was imported"
print(len(names), "modules")
"""


def test_the_time_core_imports_without_django():
    done = subprocess.run(
        [sys.executable, "-c", NO_DJANGO],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    first, words, count = done.stdout.splitlines()
    assert first == "2026-03-06T08:00:00+09:00"
    assert words == "At 08:00 on Monday through Friday (Asia/Seoul)"
    assert int(count.split()[0]) >= 10


#: Every name the README and the docs import, from the path they show.
DOCUMENTED = {
    "django_metronome": ["scheduler", "add_job"],
    "django_metronome.schedulers": ["AsyncIOScheduler", "BackgroundScheduler", "BlockingScheduler"],
    "django_metronome.jobstores": ["DjangoJobStore", "register_events"],
    "django_metronome.triggers": ["CrontabTrigger", "next_fire_time", "seek_function"],
    "django_metronome.preview": ["MAX_PREVIEW", "describe_trigger", "next_fire_times"],
    "django_metronome.firing": ["MISFIRE_POLICIES", "FirePlan", "plan_fires"],
    "django_metronome.crontab": ["CronError", "describe", "next_after", "parse", "as_zoneinfo"],
    "django_metronome.context": ["FireContext", "current_fire"],
    "django_metronome.executors": ["ThreadPoolExecutor"],
    "django_metronome.util": ["close_old_connections"],
    "django_metronome.serialization": [
        "register_trigger_codec",
        "encode_trigger",
        "decode_trigger",
        "trigger_timezone",
    ],
    "django_metronome.allowlist": ["is_allowed", "resolve"],
    "django_metronome.autostart": ["decide", "decide_while_loading", "maybe_autostart"],
    "django_metronome.models": [
        "DjangoJob",
        "DjangoJobExecution",
        "SchedulerNode",
        "ExecutionStatus",
        "FINAL_STATUSES",
        "JobSource",
        # The migrations name the fields through this module.
        "AwareDateTimeField",
        "JobIdField",
    ],
}


@pytest.mark.parametrize(
    ("module", "name"),
    [(module, name) for module, names in DOCUMENTED.items() for name in names],
)
def test_every_documented_name_imports_from_its_documented_path(module, name):
    assert getattr(importlib.import_module(module), name) is not None


def test_the_compatibility_paths_are_the_same_objects():
    from django_metronome.jobstores import DjangoJobStore
    from django_metronome.loop.flavours import BackgroundScheduler
    from django_metronome.schedulers import BackgroundScheduler as Compatible
    from django_metronome.store.jobstore import DjangoJobStore as Stored

    assert Compatible is BackgroundScheduler
    assert DjangoJobStore is Stored
