"""
``manage.py import_django_apscheduler``: bring a django-apscheduler database's
jobs and run history into django-metronome, once.

The reading (and the only unpickling in the package) is in
:mod:`django_metronome.legacy`; this command wires the options and prints the
report. Security: unpickling can run code, so only import a database you trust.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.utils import timezone

from ...autostart import migrations_applied
from ...legacy import JOB_TABLE, RUN_TABLE, ImportReport, LegacyImport
from ...store.db import database_alias

ACTIONS = {
    # action: (label, label in a dry run)
    "imported": ("imported", "would import"),
    "replaced": ("replaced", "would replace"),
    "present": ("already there", "already there"),
    "declared": ("kept", "would keep"),
    "failed": ("FAILED", "FAILED"),
}


class Command(BaseCommand):
    help = (
        "Import the jobs and the run history of a django-apscheduler database into "
        "django-metronome, once. SECURITY: django-apscheduler stores its jobs as pickle, "
        "and reading pickle can run code; the import loads only APScheduler triggers, "
        "datetimes, time zones and plain values, but only import a database you trust. "
        "Each job keeps its id and next run time and is stored as JSON; a job that "
        "cannot be (its function is gone or not allowed, its arguments or trigger are "
        "not JSON, its state is unreadable) is listed with the reason, and the command "
        "then exits with status 1. Runs are added to the run ledger with their outcome. "
        "The django-apscheduler tables are only read, and running the command again "
        "adds nothing twice: jobs already in django-metronome are skipped (see "
        "--replace), runs already in the ledger too. Stop the django-apscheduler "
        "scheduler first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database",
            default=None,
            help="The database that holds the django_apscheduler_djangojob and "
            "django_apscheduler_djangojobexecution tables (default: django-metronome's "
            "database). Jobs and runs are written to django-metronome's database.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Read and check everything, write nothing, and report what would be done.",
        )
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Overwrite jobs already in django-metronome with the same id (jobs "
            "declared in code are never overwritten).",
        )

    def handle(
        self, *args: Any, database: str | None, dry_run: bool, replace: bool, **options: Any
    ) -> None:
        target = database_alias()
        source = database or target
        if source not in connections:
            raise CommandError(f"There is no database {source!r} in settings.DATABASES.")
        if not migrations_applied():
            raise CommandError(
                f"django_metronome's migrations are not applied to database {target!r}. "
                "Run: python manage.py migrate django_metronome"
            )
        importer = LegacyImport(source, replace=replace, dry_run=dry_run)
        missing = importer.missing_tables()
        if missing:
            raise CommandError(
                f"Database {source!r} has no table {', '.join(missing)}: it does not hold a "
                "django-apscheduler database (give the one that does with --database)."
            )
        self.say(
            f"Reading django-apscheduler's tables in database {source!r}"
            f"{' (dry run: nothing is written)' if dry_run else ''}; writing into "
            f"django-metronome's in database {target!r}."
        )
        self.say(
            f"{importer.count(JOB_TABLE)} job(s) and {importer.count(RUN_TABLE)} run(s) found."
        )
        report = importer.run()
        self.print_report(report, source)

    def say(self, text: str = "") -> None:
        self.stdout.write(text)

    def print_report(self, report: ImportReport, source: str) -> None:
        dry = report.dry_run
        self.say("\nJobs:")
        width = max((len(outcome.job_id) for outcome in report.jobs), default=0)
        for outcome in report.jobs:
            label = ACTIONS[outcome.action][dry]
            line = f"  {label:<14}{outcome.job_id:<{width}}"
            if outcome.action in ("imported", "replaced"):
                line += f"  {outcome.func_ref}, next run " + (
                    "(paused)"
                    if outcome.next_run_time is None
                    else timezone.localtime(outcome.next_run_time).isoformat(sep=" ")
                )
            if outcome.detail:
                line += f"  {outcome.detail}"
            self.say(self.style.ERROR(line) if outcome.action == "failed" else line)
        if not report.jobs:
            self.say("  (none)")

        added = sum(report.runs_added.values())
        by_status = ", ".join(f"{n} {s}" for s, n in sorted(report.runs_added.items()))
        verb = "would be added" if dry else "added"
        self.say(
            f"\nHistory: {added} run(s) {verb} to the ledger"
            f"{f' ({by_status})' if by_status else ''}; "
            f"{report.runs_present} already there."
        )
        for text, count in sorted(report.unknown_statuses.items()):
            self.say(
                f"  {count} legacy run(s) have the unknown status {text!r}: imported as "
                "interrupted, with that status in the reason."
            )

        failed = report.failed
        counts = ", ".join(
            f"{report.count(action)} {ACTIONS[action][dry]}"
            for action in ("imported", "replaced", "present", "declared")
        )
        self.say(f"\nJobs: {counts}, {len(failed)} could not be imported.")
        self.say(f"The tables {JOB_TABLE} and {RUN_TABLE} were only read.")
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(report.jobs)} job(s) could not be imported (listed "
                f"above as FAILED, with the reason). They are still in {JOB_TABLE} of "
                f"database {source!r}: fix the cause and run the command again (what was "
                "imported is not imported twice), or add them in your code."
            )
