"""A database edit cannot choose the code: run-time jobs only call allowed functions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from django_metronome.allowlist import allowed_prefixes, is_allowed
from django_metronome.exceptions import ForbiddenFunction
from django_metronome.models import DjangoJob, DjangoJobExecution
from django_metronome.schedulers import BackgroundScheduler
from tests.conftest import wait_for
from tests.testapp import jobs


def test_installed_apps_and_the_project_package_are_allowed(settings):
    settings.METRONOME = {"ALLOWED_MODULES": ["vendor.tasks"]}
    prefixes = allowed_prefixes()
    assert {"django_metronome", "tests.testapp", "tests", "vendor.tasks"} <= prefixes
    assert is_allowed("tests.testapp.jobs:noop")
    assert is_allowed("vendor.tasks.mail:send")
    assert not is_allowed("vendor.tasksmith:send")
    assert not is_allowed("os:system")
    assert not is_allowed("subprocess:run")


def test_the_allow_list_follows_a_change_of_settings(settings):
    # Worked out once and kept: a change of settings must still reach it.
    assert not is_allowed("vendor.tasks:send")
    settings.METRONOME = {"ALLOWED_MODULES": ["vendor"]}
    assert is_allowed("vendor.tasks:send")
    settings.METRONOME = {}
    assert not is_allowed("vendor.tasks:send")


def test_adding_a_job_outside_the_allowed_modules_is_refused(store, make_job):
    with pytest.raises(ForbiddenFunction) as info:
        store.add_job(make_job("os:system", args=["true"]))
    assert str(info.value) == (
        "Job 'téstïd' calls os:system, which is not in an installed app, the project's "
        "package or METRONOME['ALLOWED_MODULES']. If this is your code, add 'os' (or its "
        "package) to METRONOME['ALLOWED_MODULES']; a job declared in code (before the "
        "scheduler starts) needs no such permission."
    )
    assert not DjangoJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_hand_edited_row_is_quarantined_and_its_arguments_reach_nothing(settings, tmp_path):
    settings.METRONOME = {"POLL_INTERVAL": 0.05, "HEARTBEAT_INTERVAL": 0.2, "DEAD_AFTER": 2}
    witness = Path(tmp_path) / "ran"
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start()
    try:
        scheduler.add_job(jobs.noop, "date", run_date=datetime(2100, 1, 1, tzinfo=UTC), id="x")
        # Someone with database access points the job at os.system.
        row = DjangoJob.objects.get(pk="x")
        row.state["args"] = [f"touch {witness}"]
        DjangoJob.objects.filter(pk="x").update(
            func_ref="os:system", state=row.state, next_run_time=datetime.now(UTC)
        )

        quarantined = wait_for(lambda: DjangoJob.objects.get(pk="x").quarantined_at)
        scheduler.wait_for_outcomes(5)
    finally:
        scheduler.shutdown()

    assert quarantined is not None
    assert "calls os:system" in DjangoJob.objects.get(pk="x").quarantine_reason
    assert not witness.exists()
    assert not DjangoJobExecution.objects.filter(job_id="x").exists()
