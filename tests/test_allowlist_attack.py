"""
Guarantee 8 under attack: a reference cannot walk around the allow-list.

The module before the colon is allowed in every shape below; what the
reference leads to is not a function defined there. Each shape is tried as a
run-time job (``scheduler.add_job`` and ``django_metronome.add_job``), as a
hand edit of a stored job's row under a running scheduler, and through the
django-apscheduler importer. The command each would run touches a witness
file, which must never appear. The suite runs on SQLite, PostgreSQL and
MariaDB (``scripts/test``).
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import django_metronome
from django_metronome.allowlist import resolve
from django_metronome.exceptions import ForbiddenFunction
from django_metronome.legacy import LegacyImport, NotImportable
from django_metronome.models import DjangoJob, DjangoJobExecution
from django_metronome.schedulers import BackgroundScheduler
from tests.conftest import wait_for
from tests.testapp import attack, jobs

#: (reference, what the refusal says). Every module before the colon is allowed.
ATTACKS = [
    ("django_metronome.runner:os.system", "is the module 'os'"),
    ("tests.testapp.attack:os.system", "is the module 'os'"),
    ("tests.testapp.attack:subprocess.call", "is the module 'subprocess'"),
    ("tests.testapp.attack:builtins.exec", "is the module 'builtins'"),
    ("tests.testapp.attack:system", "it is a builtin"),
    ("tests.testapp.attack:Holder.run", "it is a builtin"),
    ("tests.testapp.attack:shell", "a partial object, defined elsewhere"),
    ("tests.testapp.attack:instance", "a Runner object, defined elsewhere"),
    ("tests.testapp.attack:logger.info", "logging:Logger.info, defined elsewhere"),
    ("tests.testapp.attack:alias", "tests.testapp.attack:allowed, defined elsewhere"),
    ("tests.testapp.attack:functools.partial", "is the module 'functools'"),
    ("tests.testapp.attack:__builtins__", "special attribute '__builtins__'"),
    ("tests.testapp.attack:Holder.__init__", "special attribute '__init__'"),
    ("tests.testapp.attack:Holder.__class__.__subclasses__", "special attribute"),
    ("tests.testapp.attack:Holder.mro", "it is a builtin"),
    ("tests.testapp.attack:allowed.__globals__", "special attribute"),
    ("tests.testapp.attack:os", "is the module 'os'"),
    ("tests.testapp:attack.os.system", "is the module 'tests.testapp.attack'"),
    ("tests.testapp.attack:allowed()", "is not a Python name"),
    ("tests.testapp.attack: allowed", "is not a Python name"),
    ("tests.testapp.attack", "not a 'module:qualname' reference"),
    ("os:system", "not in an installed app"),
    ("posix:system", "not in an installed app"),
    ("builtins:exec", "not in an installed app"),
]


def command(witness: Path) -> str:
    return f"touch {witness}"


@pytest.fixture
def witness(tmp_path: Path) -> Path:
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "an attack ran its command"


@pytest.mark.parametrize(("reference", "why"), ATTACKS)
def test_the_reference_is_judged_by_what_it_leads_to(reference, why):
    with pytest.raises(ForbiddenFunction) as info:
        resolve("x", reference)
    assert why in str(info.value)


@pytest.mark.parametrize(
    "reference",
    [
        "tests.testapp.attack:allowed",
        "tests.testapp.attack:Holder.allowed_static",
        "tests.testapp.jobs:Tasks.class_method",
        "tests.testapp.jobs:noop",
    ],
)
def test_functions_defined_where_the_reference_says_are_allowed(reference):
    module, _, qualname = reference.partition(":")
    func = resolve("x", reference)
    assert func.__module__ == module
    assert func.__qualname__ == qualname


@pytest.mark.django_db
@pytest.mark.parametrize(("reference", "why"), ATTACKS)
def test_django_metronome_add_job_refuses_it(reference, why, witness):
    soon = datetime.now(UTC) + timedelta(seconds=1)
    with pytest.raises((ForbiddenFunction, LookupError)):
        django_metronome.add_job(reference, "date", run_date=soon, args=[command(witness)])
    assert not DjangoJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_running_scheduler_refuses_each_shape_and_quarantines_each_edit(settings, witness):
    settings.METRONOME = {"POLL_INTERVAL": 0.05, "HEARTBEAT_INTERVAL": 0.2, "DEAD_AFTER": 2}
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start()
    try:
        soon = datetime.now(UTC) + timedelta(seconds=0.2)
        for reference, _why in ATTACKS:
            with pytest.raises((ForbiddenFunction, LookupError)):
                scheduler.add_job(reference, "date", run_date=soon, args=[command(witness)])
        assert not DjangoJob.objects.exists()

        # Database edits: allowed jobs, then their function changed by hand, and due now.
        far = datetime(2100, 1, 1, tzinfo=UTC)
        for number, (reference, _why) in enumerate(ATTACKS):
            job_id = f"edited-{number}"
            scheduler.add_job(jobs.noop, "date", run_date=far, id=job_id)
            row = DjangoJob.objects.get(pk=job_id)
            row.state["args"] = [command(witness)]
            DjangoJob.objects.filter(pk=job_id).update(
                func_ref=reference, state=row.state, next_run_time=datetime.now(UTC)
            )
        # Control: an allowed function edited in runs, so the loop did look at the rows.
        scheduler.add_job(jobs.noop, "date", run_date=far, id="control")
        DjangoJob.objects.filter(pk="control").update(
            func_ref="tests.testapp.attack:allowed", next_run_time=datetime.now(UTC)
        )

        wait_for(
            lambda: DjangoJob.objects.filter(quarantined_at__isnull=False).count() == len(ATTACKS),
            timeout=20,
        )
        wait_for(lambda: DjangoJobExecution.objects.filter(job_id="control", status="succeeded"))
        scheduler.wait_for_outcomes(5)
    finally:
        scheduler.shutdown()

    for number, (reference, _why) in enumerate(ATTACKS):
        row = DjangoJob.objects.get(pk=f"edited-{number}")
        assert row.quarantined_at is not None, reference
        assert reference in row.quarantine_reason
    assert not DjangoJobExecution.objects.exclude(job_id="control").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("reference", "why"), ATTACKS)
def test_the_django_apscheduler_importer_refuses_it(reference, why, witness):
    state = {
        "version": 1,
        "id": "x",
        "func": reference,
        "trigger": None,
        "executor": "default",
        "args": (command(witness),),
        "kwargs": {},
        "name": "x",
        "misfire_grace_time": 1,
        "coalesce": True,
        "max_instances": 1,
        "next_run_time": None,
    }
    importer = LegacyImport("default", dry_run=True)
    with pytest.raises(NotImportable) as info:
        importer.rebuild("x", pickle.dumps(state))
    assert reference in str(info.value)


def test_an_attack_module_really_holds_the_dangerous_things():
    # The shapes above are refused for what they are, not because they do not exist.
    import os

    assert attack.os.system is os.system
    assert attack.Holder.run is os.system
    assert attack.alias is attack.allowed


@pytest.mark.django_db(transaction=True)
def test_an_edited_row_is_quarantined_before_it_falls_due(settings, witness):
    """The heart sweeps the run-time jobs' functions: the edit shows long before 2100."""
    settings.METRONOME = {
        "POLL_INTERVAL": 0.05,
        "HEARTBEAT_INTERVAL": 0.2,
        "DEAD_AFTER": 2,
        "PRUNE_INTERVAL": 0.2,
    }
    far = datetime(2100, 1, 1, tzinfo=UTC)
    django_metronome.add_job(jobs.noop, "date", run_date=far, id="edited", args=["x"])
    django_metronome.add_job(jobs.noop, "date", run_date=far, id="untouched")
    DjangoJob.objects.filter(pk="edited").update(
        func_ref="tests.testapp.attack:subprocess.call",
        state={**DjangoJob.objects.get(pk="edited").state, "args": [command(witness)]},
    )
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start()
    try:
        row = wait_for(
            lambda: DjangoJob.objects.filter(pk="edited", quarantined_at__isnull=False).first()
        )
    finally:
        scheduler.shutdown()
    assert "is the module 'subprocess'" in row.quarantine_reason
    assert DjangoJob.objects.get(pk="untouched").quarantined_at is None
    assert not DjangoJobExecution.objects.exists()
