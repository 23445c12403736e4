"""
``manage.py metronome``: look after the jobs and their run history from a shell.

Subcommands: list, show, run, pause, resume, remove, history, prune, health.
Each prints text for people, or JSON for programs with ``--json``. Exit codes:
0 done (healthy), 1 failed (not healthy, unknown job, a run that did not
succeed), 2 wrong arguments, 3 ``run --wait`` saw no outcome in time, 141 the
reader of the output went away (``| head``), quietly, as when killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections
from django.db.models import Q

from ... import cli
from ...conf import conf
from ...models import (
    DjangoJob,
    DjangoJobExecution,
    ExecutionStatus,
    JobSource,
    SchedulerNode,
    format_exception,
)
from ...store import retention
from ...store.db import database_alias, from_db, to_db, utcnow
from ...store.jobstore import DjangoJobStore

#: The arguments are wrong (argparse exits with 2 for its own errors too).
USAGE = 2
#: ``run --wait``: the run had no outcome within the timeout.
NO_OUTCOME = 3

#: The reader of the output went away (``| head``): the shell's code for SIGPIPE.
BROKEN_PIPE = 128 + 13

#: Seconds between two looks at a run's ledger row while waiting for its outcome.
WAIT_POLL = 0.1


class NotHealthy(CommandError):
    """``health`` found a problem, and its text report is printed already (``reported``)."""

    def __init__(self, message: str, *, reported: bool) -> None:
        super().__init__(message)
        self.reported = reported


class Command(BaseCommand):
    help = (
        "Look after django-metronome's jobs and their run history: list, show, run, pause, "
        "resume, remove, history, prune, health. Add --json for output a program can read. "
        "`manage.py metronome SUBCOMMAND --help` tells more."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        # Both places work: `metronome --json list` and `metronome list --json`.
        self._add_common_options(parser, default=None)
        common = CommandParser(add_help=False)
        self._add_common_options(common, default=argparse.SUPPRESS)
        self._accept_base_options(common)
        subcommands = parser.add_subparsers(
            dest="subcommand", metavar="SUBCOMMAND", title="subcommands", required=True
        )

        def add(name: str, summary: str, description: str = "") -> argparse.ArgumentParser:
            return subcommands.add_parser(
                name,
                help=summary,
                description=f"{summary} {description}".strip(),
                parents=[common],
                formatter_class=parser.formatter_class,
            )

        sub = add("list", "List the jobs: schedule, time zone, next run, state, last outcome.")
        sub.add_argument("--paused", action="store_true", help="Only paused jobs.")
        sub.add_argument(
            "--orphaned",
            action="store_true",
            help="Only jobs declared in code that no running scheduler process declares.",
        )
        sub.add_argument(
            "--quarantined", action="store_true", help="Only jobs that cannot be loaded."
        )
        sub.add_argument(
            "--search",
            metavar="TEXT",
            help="Only jobs whose id, name or function contains TEXT (in any case).",
        )

        sub = add("show", "Show one job: its function, state, next fire times and last runs.")
        sub.add_argument("job_id", metavar="JOB_ID")
        sub.add_argument(
            "--count",
            type=cli.preview_count,
            default=10,
            help=f"How many next fire times to show, 0 to {cli.MAX_PREVIEW} (default: 10).",
        )
        sub.add_argument(
            "--runs",
            type=cli.run_count,
            default=10,
            help="How many of its last runs to show (default: 10).",
        )

        sub = add(
            "run",
            "Ask the scheduler processes to run a job once, now.",
            "The request goes through the database: whichever scheduler process can run "
            "the job takes it within its poll interval. The job's schedule does not move.",
        )
        sub.add_argument("job_id", metavar="JOB_ID")
        sub.add_argument(
            "--wait",
            action="store_true",
            help="Wait for the outcome and print it; exit 1 unless the run succeeded, "
            "3 if it has no outcome within the timeout.",
        )
        sub.add_argument(
            "--timeout",
            type=cli.seconds,
            default=None,
            metavar="SECONDS",
            help="How long --wait waits (default: APSCHEDULER_RUN_NOW_TIMEOUT, 15).",
        )

        sub = add("pause", "Pause a job: it does not fire until it is resumed.")
        sub.add_argument("job_id", metavar="JOB_ID")
        sub.add_argument(
            "--until",
            type=cli.moment,
            metavar="DATETIME",
            help="Resume by itself at this ISO 8601 date and time, e.g. "
            "2026-12-01T09:00+01:00. A time without an offset is read in the job's own "
            "time zone.",
        )

        sub = add(
            "resume",
            "Resume a paused job at the next fire time of its schedule.",
            "Fires it missed while paused are not run.",
        )
        sub.add_argument("job_id", metavar="JOB_ID")

        sub = add("remove", "Remove a job. Its run history is kept.")
        sub.add_argument("job_id", metavar="JOB_ID")
        sub.add_argument(
            "--yes",
            "--no-input",
            "--noinput",
            action="store_true",
            dest="yes",
            help="Remove without asking for confirmation.",
        )

        sub = add("history", "List runs from the ledger, newest first.")
        sub.add_argument(
            "--job", action="append", metavar="JOB_ID", help="Only this job's runs (repeatable)."
        )
        sub.add_argument(
            "--status",
            action="append",
            choices=ExecutionStatus.values,
            metavar="STATUS",
            help=f"Only runs with this status (repeatable): {', '.join(ExecutionStatus.values)}.",
        )
        sub.add_argument(
            "--since",
            type=cli.moment,
            metavar="DATETIME",
            help="Only runs scheduled at or after this ISO 8601 time.",
        )
        sub.add_argument(
            "--until",
            type=cli.moment,
            metavar="DATETIME",
            help="Only runs scheduled before this ISO 8601 time.",
        )
        sub.add_argument(
            "--limit",
            type=cli.positive,
            default=50,
            help="Show at most this many runs (default: 50).",
        )
        sub.epilog = (
            "Times without an offset are read in METRONOME['TIME_ZONE'] (by default "
            "TIME_ZONE). Times are shown in each job's own zone (UTC for removed jobs)."
        )

        sub = add(
            "prune",
            "Delete finished runs from the history, by age and/or by count per job.",
            "Without options, applies METRONOME['HISTORY_MAX_AGE'] and "
            "['HISTORY_MAX_PER_JOB']. Running and pending runs are never deleted.",
        )
        sub.add_argument(
            "--older-than",
            type=cli.duration,
            metavar="DURATION",
            help="Delete runs scheduled longer ago than this: 30d, 12h, 90m, 3600s, 2w, "
            "1d12h (default: METRONOME['HISTORY_MAX_AGE']).",
        )
        sub.add_argument(
            "--keep-per-job",
            type=cli.positive,
            metavar="N",
            help="Keep only each job's N most recent runs "
            "(default: METRONOME['HISTORY_MAX_PER_JOB']).",
        )

        sub = add(
            "health",
            "Check the scheduler for a liveness probe: exit 0 if healthy, else 1.",
            "Healthy: at least one scheduler process has heart-beaten recently, and no job "
            "that should run (not paused, quarantined or orphaned) is overdue.",
        )
        sub.add_argument(
            "--max-heartbeat-age",
            type=cli.seconds,
            default=None,
            metavar="SECONDS",
            help="How recent a heartbeat must be (default: METRONOME['DEAD_AFTER'], 30).",
        )
        sub.add_argument(
            "--max-overdue",
            type=cli.seconds,
            default=60.0,
            metavar="SECONDS",
            help="How late a job's next run may be (default: 60).",
        )
        sub.add_argument(
            "--this-host",
            action="store_true",
            help="Count only the scheduler processes on this host (by its hostname): for the "
            "probe of one container among several. Overdue jobs still count wherever they are.",
        )

    @staticmethod
    def _add_common_options(parser: argparse.ArgumentParser, default: Any) -> None:
        parser.add_argument(
            "--database",
            default=default,
            help="The database alias of the job tables (default: METRONOME['DATABASE'], "
            "else what the database routers choose).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            default=default if default is argparse.SUPPRESS else False,
            help="Print JSON for programs instead of text for people.",
        )

    @staticmethod
    def _accept_base_options(parser: argparse.ArgumentParser) -> None:
        """Let Django's own options come after the subcommand too: `metronome health -v 0`."""
        hidden: dict[str, Any] = {"default": argparse.SUPPRESS, "help": argparse.SUPPRESS}
        parser.add_argument("-v", "--verbosity", type=int, choices=[0, 1, 2, 3], **hidden)
        parser.add_argument("--settings", **hidden)
        parser.add_argument("--pythonpath", **hidden)
        for flag in ("--traceback", "--no-color", "--force-color", "--skip-checks"):
            parser.add_argument(flag, action="store_true", **hidden)

    # -- dispatch -------------------------------------------------------------------------

    def run_from_argv(self, argv: list[str]) -> None:
        """Django's, ending quietly when the output's reader stops reading (``| head``)."""
        try:
            try:
                super().run_from_argv(argv)
            finally:
                sys.stdout.flush()
        except BrokenPipeError:
            # Python would report the pipe again when it flushes at exit: point the
            # standard streams at nothing first.
            devnull = os.open(os.devnull, os.O_WRONLY)
            for stream in (sys.stdout, sys.stderr):
                try:
                    os.dup2(devnull, stream.fileno())
                except (OSError, ValueError):
                    pass
            sys.exit(BROKEN_PIPE)

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except NotHealthy as exc:
            # On the command line, the report printed already says it: exit 1 without
            # Django's "CommandError: Not healthy..." repeating it.
            if exc.reported and getattr(self, "_called_from_command_line", False):
                sys.exit(exc.returncode)
            raise

    def handle(
        self, *args: Any, subcommand: str, database: str | None, as_json: bool, **options: Any
    ) -> None:
        self.using = self._database(database)
        self.as_json = as_json
        handlers: dict[str, Callable[..., None]] = {
            "list": self.list_jobs,
            "show": self.show_job,
            "run": self.run_job,
            "pause": self.pause_job,
            "resume": self.resume_job,
            "remove": self.remove_job,
            "history": self.history,
            "prune": self.prune,
            "health": self.health,
        }
        try:
            handlers[subcommand](**options)
        except DatabaseError as exc:
            raise CommandError(
                f"The database {self.using!r} could not be queried: {exc}. Check that it is "
                "running and reachable, and that its migrations are applied "
                "(`manage.py migrate`)."
            ) from exc

    @staticmethod
    def _database(alias: str | None) -> str:
        alias = database_alias(alias)
        if alias not in set(connections):
            raise CommandError(
                f"There is no database {alias!r}: use one of the aliases in DATABASES "
                f"({', '.join(map(repr, connections))}).",
                returncode=USAGE,
            )
        return alias

    def _job(self, job_id: str) -> DjangoJob:
        jobs = DjangoJob.objects.using(self.using)
        job = jobs.filter(pk=job_id).first()
        if job is not None:
            return job
        similar = list(
            jobs.filter(Q(id__icontains=job_id) | Q(name__icontains=job_id))
            .order_by("id")
            .values_list("id", flat=True)[:3]
        )
        hint = f" Did you mean {' or '.join(map(repr, similar))}?" if similar else ""
        raise CommandError(
            f"There is no job with the id {job_id!r}.{hint} "
            "`manage.py metronome list` shows the jobs."
        )

    def _print(self, text: str = "") -> None:
        self.stdout.write(text)

    def _print_json(self, data: Any) -> None:
        self.stdout.write(cli.to_json(data), style_func=str)

    @staticmethod
    def _cmd(*words: str) -> str:
        return "`manage.py metronome " + " ".join(shlex.quote(word) for word in words) + "`"

    # -- list and show -----------------------------------------------------------------------

    def list_jobs(
        self, *, paused: bool, orphaned: bool, quarantined: bool, search: str | None, **_: Any
    ) -> None:
        jobs = DjangoJob.objects.using(self.using).all()
        if paused:
            jobs = jobs.filter(next_run_time__isnull=True)
        if orphaned:
            jobs = jobs.filter(orphaned_at__isnull=False)
        if quarantined:
            jobs = jobs.quarantined()
        if search:
            jobs = jobs.filter(
                Q(id__icontains=search) | Q(name__icontains=search) | Q(func_ref__icontains=search)
            )
        found = list(cli.with_last_run(jobs).in_run_order())
        last_runs = (
            DjangoJobExecution.objects.using(self.using)
            .only("id", "run_time", "status")
            .in_bulk([job.last_run_id for job in found if job.last_run_id is not None])
        )
        if self.as_json:
            self._print_json(
                {"jobs": [cli.job_data(job, last_runs.get(job.last_run_id)) for job in found]}
            )
            return
        if not found:
            filtered = paused or orphaned or quarantined or search
            self._print("No job matches." if filtered else "No jobs.")
            return
        rows = []
        for job in found:
            last = last_runs.get(job.last_run_id)
            rows.append(
                [
                    job.id,
                    job.name or "-",
                    job.describe_schedule(),
                    job.time_zone,
                    cli.shown(job.next_run_time, cli.job_zone(job)),
                    cli.job_state_words(job),
                    last.status if last is not None else "-",
                ]
            )
        headers = ["ID", "NAME", "SCHEDULE", "TIME ZONE", "NEXT RUN", "STATE", "LAST OUTCOME"]
        self._print(cli.table(headers, rows))

    def show_job(self, *, job_id: str, count: int, runs: int, **_: Any) -> None:
        job = self._job(job_id)
        zone = cli.job_zone(job)
        start = utcnow()
        pause_ends = from_db(job.paused_until)
        if pause_ends is not None and pause_ends > start:
            start = pause_ends  # the preview starts where the job will: when its pause ends
        preview_error = ""
        try:
            fires = [fire.astimezone(zone) for fire in job.next_fire_times(count, now=start)]
        except Exception as exc:
            fires, preview_error = [], format_exception(exc)
        recent = list(
            DjangoJobExecution.objects.using(self.using)
            .filter(job_id=job.id)
            .order_by("-run_time", "-id")[: max(runs, 1)]
        )
        if self.as_json:
            data = cli.job_data(job, recent[0] if recent else None)
            data.update(
                created_at=cli.iso(job.created_at, zone),
                updated_at=cli.iso(job.updated_at, zone),
                stored_state=job.state,
                next_fire_times=[fire.isoformat() for fire in fires],
                preview_error=preview_error or None,
                recent_runs=[cli.run_data(run, zone) for run in recent[:runs]],
            )
            self._print_json(data)
            return
        fields = [
            ("Job", job.id),
            ("Name", job.name or "-"),
            ("Function", job.func_ref),
            ("Source", str(job.get_source_display())),
            ("Schedule", job.describe_schedule()),
            ("Time zone", job.time_zone),
            ("State", cli.job_state_words(job)),
            ("Next run", cli.shown(job.next_run_time, zone)),
        ]
        if job.is_quarantined:
            fields.append(
                (
                    "Quarantined",
                    f"since {cli.shown(job.quarantined_at, zone)}: {job.quarantine_reason}",
                )
            )
        if job.orphaned_at is not None:
            fields.append(
                (
                    "Orphaned",
                    f"since {cli.shown(job.orphaned_at, zone)}: declared in code, and no "
                    "running scheduler process declares it, so it does not run",
                )
            )
        fields += [
            ("Created", cli.shown(job.created_at, zone)),
            ("Updated", cli.shown(job.updated_at, zone)),
        ]
        label_width = max(len(label) for label, _ in fields)
        for label, value in fields:
            self._print(f"{label.ljust(label_width)}  {value}")
        self._print()
        if preview_error:
            self._print(f"Next fire times: cannot be computed ({preview_error}).")
        elif count:
            if job.paused_until is not None:
                heading = f"Next {len(fires)} fire times, after the pause ends"
            elif job.is_paused:
                heading = f"Next {len(fires)} fire times by its schedule, once it is resumed"
            else:
                heading = f"Next {len(fires)} fire times"
            self._print(f"{heading} ({job.time_zone}):" if fires else "No fire time left.")
            for fire in fires:
                self._print(f"  {fire.isoformat(sep=' ', timespec='seconds')}")
        self._print()
        self._print("Stored state (JSON):")
        for line in cli.to_json(job.state).splitlines():
            self._print(f"  {line}")
        if runs:
            self._print()
            if recent:
                self._print(f"Last runs, newest first (times in {job.time_zone}):")
                self._print(cli.runs_table(recent[:runs], {job.id: zone}))
            else:
                self._print("No runs yet.")

    # -- run now -------------------------------------------------------------------------------

    def run_job(self, *, job_id: str, wait: bool, timeout: float | None, **_: Any) -> None:
        job = self._job(job_id)
        if job.is_quarantined:
            raise CommandError(
                f"Job {job.id!r} is quarantined ({cli.one_line(job.quarantine_reason, 200)}), "
                "so no scheduler process would run it. Fix the cause, or remove the job with "
                f"{self._cmd('remove', job.id)}."
            )
        if job.orphaned_at is not None:
            raise CommandError(
                f"Job {job.id!r} is orphaned: it is declared in code, and no running scheduler "
                "process declares it, so none would run it. Deploy the code that declares it, "
                f"or remove the job with {self._cmd('remove', job.id)}."
            )
        zone = cli.job_zone(job)
        run = job.run_now(requested_by=cli.requester())
        if not self.as_json:
            self._print(
                f"Asked for a run of job {job.id!r} now: ledger row {run.id}, pending until a "
                "scheduler process takes it. The job's schedule does not move."
            )
        if not wait:
            if self.as_json:
                self._print_json(cli.run_data(run, zone))
            else:
                self._print(
                    f"Follow it with {self._cmd('history', '--job', job.id)}, or ask with --wait."
                )
            return
        timeout = conf.RUN_NOW_TIMEOUT if timeout is None else timeout
        if not self.as_json:
            self._print(f"Waiting up to {cli.span(timeout)} for its outcome...")
        run = self._wait_for_outcome(run, timeout)
        self._report_outcome(job, run, zone, timeout)

    def _wait_for_outcome(self, run: DjangoJobExecution, timeout: float) -> DjangoJobExecution:
        ledger = DjangoJobExecution.objects.using(self.using)
        deadline = time.monotonic() + timeout
        while True:
            current = ledger.filter(pk=run.pk).first()
            if current is None:
                raise CommandError(
                    f"Ledger row {run.pk} is gone: it was deleted before its outcome was seen."
                )
            left = deadline - time.monotonic()
            if current.is_final or left <= 0:
                return current
            time.sleep(min(WAIT_POLL, left))

    def _report_outcome(
        self, job: DjangoJob, run: DjangoJobExecution, zone: Any, timeout: float
    ) -> None:
        what = f"Run {run.id} of job {job.id!r}"
        if self.as_json:
            self._print_json(cli.run_data(run, zone))
        if run.status == ExecutionStatus.SUCCEEDED:
            if not self.as_json:
                self._print(
                    self.style.SUCCESS(f"{what} succeeded (it ran for {cli.span(run.duration)}).")
                )
            return
        if run.status == ExecutionStatus.PENDING:
            raise CommandError(
                f"{what} is still pending after {cli.span(timeout)}. {self._why_pending()} "
                "The request stays in the ledger: a scheduler process runs it when it takes it.",
                returncode=NO_OUTCOME,
            )
        if run.status == ExecutionStatus.RUNNING:
            raise CommandError(
                f"{what} is still running after {cli.span(timeout)}, in scheduler process "
                f"{run.node}; it goes on. Its outcome will be in "
                f"{self._cmd('history', '--job', job.id)}.",
                returncode=NO_OUTCOME,
            )
        detail = run.exception or run.reason
        if not self.as_json:
            self._print(f"{what} {run.status}: {detail}" if detail else f"{what} {run.status}.")
            if run.traceback:
                traceback = run.traceback.rstrip()
                if not traceback.startswith("Traceback"):
                    traceback = f"Traceback (most recent call last):\n{traceback}\n{detail}"
                self._print(traceback)
        raise CommandError(
            f"{what} {run.status}" + (f": {cli.one_line(detail, 200)}" if detail else ".")
        )

    def _why_pending(self) -> str:
        dead_after = timedelta(seconds=conf.DEAD_AFTER)
        live = SchedulerNode.objects.using(self.using).alive(utcnow(), dead_after).count()
        if not live:
            return "No scheduler process may be running: start one with `manage.py runscheduler`."
        return (
            f"{live} scheduler process(es) are alive, but none has taken it: none of them may "
            "be able to run this job (a job declared in code runs only where it is declared), "
            "or they are busy."
        )

    # -- pause, resume, remove -------------------------------------------------------------------

    def pause_job(self, *, job_id: str, until: Any, **_: Any) -> None:
        job = self._job(job_id)
        zone = cli.job_zone(job)
        if until is not None:
            until = cli.aware(until, zone)
            if until <= utcnow():
                raise CommandError(
                    f"--until {until.isoformat()} is not in the future. Leave --until out to "
                    f"pause with no end, or resume the job with {self._cmd('resume', job.id)}.",
                    returncode=USAGE,
                )
        was_paused = job.is_paused
        job.pause(until)
        if self.as_json:
            self._print_json(cli.job_data(job))
        elif until is not None:
            self._print(
                f"Paused job {job.id!r} until {cli.shown(until, zone)} ({job.time_zone}); "
                "it resumes by itself then."
            )
        else:
            again = " (it was paused already)" if was_paused else ""
            self._print(
                f"Paused job {job.id!r}{again}: it does not fire until "
                f"{self._cmd('resume', job.id)}."
            )

    def resume_job(self, *, job_id: str, **_: Any) -> None:
        job = self._job(job_id)
        zone = cli.job_zone(job)
        if not job.is_paused:
            if self.as_json:
                self._print_json(cli.job_data(job))
            else:
                self._print(
                    f"Job {job.id!r} is not paused; its next run is at "
                    f"{cli.shown(job.next_run_time, zone)}."
                )
            return
        try:
            upcoming = job.resume()
        except DatabaseError:
            raise
        except Exception as exc:
            raise CommandError(
                f"Job {job.id!r} cannot be resumed: its schedule cannot be read "
                f"({format_exception(exc)})."
            ) from exc
        if upcoming is None:
            raise CommandError(
                f"Job {job.id!r} was not resumed: its schedule has ended, so it has no fire "
                "left and stays paused. Remove it with "
                f"{self._cmd('remove', job.id)} if it is no longer wanted."
            )
        if self.as_json:
            self._print_json(cli.job_data(job))
        else:
            self._print(f"Resumed job {job.id!r}: next run at {cli.shown(upcoming, zone)}.")

    def remove_job(self, *, job_id: str, yes: bool, **_: Any) -> None:
        job = self._job(job_id)
        if not yes:
            name = f" ({job.name})" if job.name else ""
            answer = self._ask(f"Remove job {job.id!r}{name}? Its run history is kept. [y/N] ")
            if answer is None:
                raise CommandError(
                    f"Job {job.id!r} was not removed: add --yes to remove it without a "
                    "question (standard input is not a terminal, so none was asked)."
                )
            if answer not in ("y", "yes"):
                if self.as_json:
                    self._print_json({"id": job.id, "removed": False, "runs_kept": None})
                else:
                    self._print("Not removed.")
                return
        try:
            DjangoJobStore(self.using).remove_job(job.id)
        except JobLookupError:
            raise CommandError(f"Job {job.id!r} was removed meanwhile, by someone else.") from None
        kept = DjangoJobExecution.objects.using(self.using).filter(job_id=job.id).count()
        if self.as_json:
            self._print_json({"id": job.id, "removed": True, "runs_kept": kept})
            return
        self._print(
            f"Removed job {job.id!r}. Its run history is kept ({kept} run(s)): "
            f"{self._cmd('history', '--job', job.id)}."
        )
        if job.source == JobSource.CODE and job.orphaned_at is None:
            self._print(
                "It is declared in code: a scheduler process that declares it adds it again "
                "when it starts. Remove it from the code too."
            )

    def _ask(self, question: str) -> str | None:
        """Ask on the terminal; None when standard input is not one."""
        if sys.stdin is None or not sys.stdin.isatty():
            return None
        out = self.stderr if self.as_json else self.stdout  # keep --json output clean
        out.write(question, style_func=str, ending="")
        out.flush()
        return sys.stdin.readline().strip().lower()

    # -- history and retention ------------------------------------------------------------------

    def history(
        self,
        *,
        job: list[str] | None,
        status: list[str] | None,
        since: Any,
        until: Any,
        limit: int,
        **_: Any,
    ) -> None:
        runs = DjangoJobExecution.objects.using(self.using).all()
        if job:
            runs = runs.filter(job_id__in=job)
        if status:
            runs = runs.filter(status__in=status)
        default_zone = cli.zone_named(conf.TIME_ZONE)
        since = None if since is None else cli.aware(since, default_zone)
        until = None if until is None else cli.aware(until, default_zone)
        if since is not None and until is not None and since >= until:
            raise CommandError(
                f"--since {since.isoformat()} is not before --until {until.isoformat()}.",
                returncode=USAGE,
            )
        if since is not None:
            runs = runs.filter(run_time__gte=to_db(since))
        if until is not None:
            runs = runs.filter(run_time__lt=to_db(until))
        found = list(runs.order_by("-run_time", "-id")[: limit + 1])
        more = len(found) > limit
        found = found[:limit]
        zones = cli.zones_of(self.using, {run.job_id for run in found})
        if self.as_json:
            self._print_json(
                {"runs": [cli.run_data(run, zones.get(run.job_id, cli.UTC)) for run in found]}
            )
            return
        if not found:
            self._print("No runs.")
            return
        self._print(cli.runs_table(found, zones))
        self._print(
            f"{len(found)} run(s), newest first"
            + (" (there are more: raise --limit)" if more else "")
            + ". Times are in each job's own zone (UTC for removed jobs)."
        )

    def prune(self, *, older_than: timedelta | None, keep_per_job: int | None, **_: Any) -> None:
        if older_than is None and conf.HISTORY_MAX_AGE is not None:
            older_than = timedelta(seconds=conf.HISTORY_MAX_AGE)
        if keep_per_job is None:
            keep_per_job = conf.HISTORY_MAX_PER_JOB
        if older_than is None and keep_per_job is None:
            raise CommandError(
                "Nothing to prune by: give --older-than (e.g. 30d) and/or --keep-per-job N, "
                "or set METRONOME['HISTORY_MAX_AGE'] (seconds) or "
                "METRONOME['HISTORY_MAX_PER_JOB'] in the settings.",
                returncode=USAGE,
            )
        if keep_per_job is not None and keep_per_job < 1:
            raise CommandError(
                f"METRONOME['HISTORY_MAX_PER_JOB'] is {keep_per_job}: it must be 1 or more "
                "(or None, for no count limit).",
                returncode=USAGE,
            )
        now = utcnow()
        by_age = by_count = 0
        if older_than is not None:
            age = older_than
            by_age = self._until_none_left(lambda: retention.prune_older_than(self.using, now, age))
        if keep_per_job is not None:
            keep = keep_per_job
            by_count = self._until_none_left(lambda: retention.prune_per_job(self.using, keep))
        if self.as_json:
            self._print_json(
                {
                    "deleted": by_age + by_count,
                    "deleted_by_age": by_age,
                    "deleted_by_count": by_count,
                    "older_than_seconds": cli.total_seconds(older_than),
                    "keep_per_job": keep_per_job,
                }
            )
            return
        parts = []
        if older_than is not None:
            parts.append(f"{by_age} scheduled more than {cli.span(older_than)} ago")
        if keep_per_job is not None:
            parts.append(f"{by_count} beyond the {keep_per_job} most recent of each job")
        self._print(
            f"Deleted {by_age + by_count} finished run(s) from the history: "
            f"{' and '.join(parts)}. Running and pending runs are never deleted."
        )

    @staticmethod
    def _until_none_left(step: Callable[[], int]) -> int:
        """Call a bounded pruning step again until it finds nothing more to delete."""
        total = 0
        while deleted := step():
            total += deleted
        return total

    # -- health ------------------------------------------------------------------------------------

    def health(
        self, *, max_heartbeat_age: float | None, max_overdue: float, this_host: bool, **_: Any
    ) -> None:
        report = cli.health_report(
            self.using,
            utcnow(),
            max_heartbeat_age=conf.DEAD_AFTER if max_heartbeat_age is None else max_heartbeat_age,
            max_overdue=max_overdue,
            hostname=socket.gethostname() if this_host else None,
        )
        if self.as_json:
            self._print_json(report.as_data())
        else:
            self._print_health(report)
        if not report.healthy:
            wrong = []
            if not report.live_nodes:
                where = "" if report.hostname is None else f" on host {report.hostname!r}"
                wrong.append(
                    f"no scheduler process{where} has heart-beaten in the last "
                    f"{cli.span(report.max_heartbeat_age)}"
                )
            if report.overdue_count:
                wrong.append(
                    f"{report.overdue_count} job(s) overdue by more than "
                    f"{cli.span(report.max_overdue)}"
                )
            message = f"Not healthy: {'; '.join(wrong)}."
            if self.as_json:
                raise CommandError(message)  # the data says it to programs; this, to people
            raise NotHealthy(message, reported=True)

    def _print_health(self, report: cli.HealthReport) -> None:
        if report.healthy:
            self._print(self.style.SUCCESS("Healthy."))
        else:
            self._print(self.style.ERROR("Not healthy:"))
            for problem in report.problems():
                self._print(f"- {problem}")
        for node in report.live_nodes:
            self._print(
                f"Scheduler process {node.id} is alive: last heartbeat "
                f"{cli.span(max(report.heartbeat_age(node), 0))} ago."
            )
        if report.healthy:
            self._print(f"No job is overdue by more than {cli.span(report.max_overdue)}.")
        for note in report.notes():
            self._print(self.style.WARNING(f"Note: {note}"))
