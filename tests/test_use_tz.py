"""USE_TZ = False works: the whole cycle, in a process with those settings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.proctools import ROOT, Processes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_scheduler_under_use_tz_false(tmp_path):
    env = Processes(tmp_path).env()
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings_notz"
    result = subprocess.run(
        [sys.executable, "-m", "tests.proc_notz"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["problems"] == []
    assert report["runs"] >= 3
