"""
The example project's worker mode (``EXAMPLE_WORKERS=1``): a campaign's end job
targets a ``django.tasks`` task, ``runscheduler`` enqueues it and django-tasks-db's
``db_worker`` runs it, each a real process, as the example's README says.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("django_tasks_db", reason="the test extra installs django-tasks-db")

from tests.test_example import EXAMPLE, Example
from tests.test_example import pytestmark as sqlite_only

pytestmark = [sqlite_only, pytest.mark.slow]

CREATE = """
campaign = Campaign.objects.create(
    title="Worker mode", goal=Decimal(100), end_date=now + timedelta(seconds=1)
)
Funding.objects.create(campaign=campaign, amount=Decimal(150))
print(json.dumps({"pk": campaign.pk, "job": job_of(campaign)}))
"""


def test_the_worker_mode_enqueues_each_campaign_end_and_the_task_worker_runs_it(tmp_path):
    example = Example(tmp_path / "workers.sqlite3")
    workers = {"EXAMPLE_WORKERS": "1"}
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=EXAMPLE,
        env=example.env(**workers),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    original = example.env
    example.env = lambda **extra: original(**workers, **extra)  # type: ignore[method-assign]
    created = example.python(CREATE)
    assert created["job"]["func_ref"] == "campaigns.queued:close_campaign"

    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", *command],
            cwd=EXAMPLE,
            env=example.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for command in (
            ["runscheduler"],
            ["db_worker", "--interval=0.1", "--no-startup-delay"],
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = example.query(
                "SELECT status FROM campaigns_campaign WHERE id = ?", created["pk"]
            )
            if status == [("closed",)]:
                break
            time.sleep(0.1)
        assert status == [("closed",)]
        job_id = f"campaign-{created['pk']}-end"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = example.query(
                "SELECT status, task_backend, task_result_id FROM "
                "django_metronome_djangojobexecution WHERE job_id = ?",
                job_id,
            )
            if rows and rows[0][0] == "succeeded":
                break
            time.sleep(0.1)
        ((ledger_status, backend, result_id),) = rows
        assert (ledger_status, backend) == ("succeeded", "default")
        # SQLite keeps django-tasks-db's UUID key as 32 hex digits.
        tasks = example.query(
            "SELECT status FROM django_tasks_database_dbtaskresult WHERE id = ?",
            result_id.replace("-", ""),
        )
        assert tasks == [("SUCCESSFUL",)]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
