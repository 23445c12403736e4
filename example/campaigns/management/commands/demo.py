"""
``manage.py demo``: the campaigns example with the times pulled close.

In the real project the daily checks of ``campaigns/operator.py`` run at 08:00
and 08:10 (Asia/Seoul), and each campaign's one-off job runs at its end date,
days away. Here the same functions run every 10 seconds and the campaigns end
within the run, so that in less than a minute you see jobs fire, one fail, the
run ledger fill and the campaigns close. Rerunning it starts afresh.
"""

import argparse
import contextlib
import logging
import os
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from apscheduler.jobstores.base import JobLookupError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from django_metronome.models import FINAL_STATUSES, DjangoJob, DjangoJobExecution
from django_metronome.schedulers import BackgroundScheduler

from ...checker import CampaignStatusChecker
from ...models import Campaign, Funding
from ...tasks import send_funding_report

#: The demo's own jobs; campaign jobs are ``campaign-<pk>-end``.
DEMO_PREFIX = "demo-"
EVERY = 10  # seconds between the periodic checks (08:00 and 08:10 daily in operator.py)

#: The sample campaigns: title, end (seconds from now, or a fraction of the run
#: given as a float below 1), goal, fundings, and the status each should end in.
DAY = 86400
SAMPLES = [
    ("Neighbourhood library", -DAY, 1_000_000, [600_000, 500_000], "closed"),
    ("Solar lamps for Bukchon", -2 * 3600, 5_000_000, [1_000_000, 200_000], "failed"),
    ("Community garden", 0.25, 800_000, [500_000, 400_000], "closed"),
    ("Rooftop cinema", 0.45, 3_000_000, [1_000_000], "failed"),
    ("Han river clean-up", 0.65, 500_000, [250_000, 250_000], "closed"),
    ("Winter coats drive", 30 * DAY, 2_000_000, [], "open"),
]
TITLES = [sample[0] for sample in SAMPLES]


def at_least(minimum: float):
    def parse(value: str) -> float:
        try:
            seconds = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
        if not seconds >= minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g} seconds")
        return seconds

    return parse


def won(amount) -> str:
    return f"{int(amount):,} won"


def millis(value: timedelta | None) -> str:
    return "" if value is None else f"{value.total_seconds() * 1000:.1f} ms"


def clock(value) -> str:
    return timezone.localtime(value).strftime("%H:%M:%S")


def _relative(path: str, start: str) -> str:
    """``path`` as typed from ``start``: relative, with ./ where a shell needs it."""
    shown = os.path.relpath(path, start)
    return shown if os.sep in shown else f".{os.sep}{shown}"


class Command(BaseCommand):
    help = (
        "Create sample campaigns, run a scheduler for --seconds (default 45) with the "
        "daily jobs every 10 s and the campaigns ending within the run, and print the "
        "run ledger as it fills. Starts afresh each time: it deletes its own sample "
        "campaigns, jobs and runs first (nothing else)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seconds",
            type=at_least(15),
            default=45.0,
            help="How long the scheduler runs (at least 15; default 45).",
        )

    def handle(self, *args, seconds, **options):
        self.say = self.stdout.write
        # The ledger keeps each failure's traceback, and the demo prints it from
        # there; APScheduler's own log line would print it a second time.
        logging.getLogger("apscheduler.executors").setLevel(logging.CRITICAL)

        self.say(
            "The campaigns example (example/campaigns/) with the times pulled close: "
            "operator.py runs its two\nchecks daily at 08:00 and 08:10 (Asia/Seoul); here "
            f"they run every {EVERY} s, and each campaign's one-off\njob runs at its end "
            "date, seconds from now."
        )
        self.reset()
        # Whole seconds, to keep the times printed short.
        started = (timezone.now() + timedelta(seconds=1)).replace(microsecond=0)
        campaigns = self.create_campaigns(started, seconds)
        scheduler = self.declare_jobs(started, seconds, campaigns)
        scheduler.start()  # writes the jobs declared on it to the database
        self.print_jobs()

        self.say(f"\nThe scheduler runs for {seconds:g} s. Runs, as the ledger records them:")
        printed: set[int] = set()
        statuses = {c.pk: c.status for c in campaigns}
        deadline = time.monotonic() + seconds
        interrupted = False
        try:
            while time.monotonic() < deadline:
                time.sleep(0.1)
                self.print_new_runs(printed)
                self.print_status_changes(statuses)
        except KeyboardInterrupt:
            interrupted = True
            self.say("\nStopped early (Ctrl-C).")
        finally:
            # The periodic stand-ins go (their runs stay in the ledger), so that no
            # other scheduler runs them every 10 s after the demo.
            for job_id in ("check_campaign_status", "check_funding_success"):
                with contextlib.suppress(JobLookupError):
                    scheduler.remove_job(DEMO_PREFIX + job_id)
            scheduler.shutdown(wait=True, timeout=10)
        self.print_new_runs(printed)
        self.print_status_changes(statuses)

        self.print_ledger()
        self.print_campaigns()
        self.print_failure()
        self.print_admin_hint()
        if interrupted:
            raise CommandError("The demo was stopped before its end.", returncode=130)
        self.verify(started)

    # -- setting up -----------------------------------------------------------------

    def reset(self) -> None:
        """Delete what an earlier run of the demo left: its campaigns, jobs and runs."""
        old = Campaign.objects.filter(title__in=TITLES)
        job_ids = [f"campaign-{pk}-end" for pk in old.values_list("pk", flat=True)]
        old.delete()  # their end-date jobs go with them (signals.py)
        DjangoJob.objects.filter(pk__startswith=DEMO_PREFIX).delete()
        DjangoJobExecution.objects.filter(
            Q(job__id__startswith=DEMO_PREFIX) | Q(job_id__in=job_ids)
        ).delete()

    def create_campaigns(self, now, seconds) -> list[Campaign]:
        self.say("\nSample campaigns (times in Asia/Seoul):")
        campaigns = []
        for title, end, goal, amounts, _ in SAMPLES:
            offset = round(end * seconds) if isinstance(end, float) else end
            end_date = now + timedelta(seconds=offset)
            campaign = Campaign(title=title, end_date=end_date, goal=goal)
            if offset < 0:
                # Ended before the demo: made with bulk_create, which sends no signal,
                # as if created before the one-off pattern existed. So they have no
                # end-date job, and the daily checks are what close them.
                Campaign.objects.bulk_create([campaign])
                how = "ended already: no end-date job, the daily checks will see to it"
            elif title == "Rooftop cinema":
                # Saved with a later end date first, then moved: the job moves too.
                campaign.end_date = now + timedelta(seconds=2 * offset)
                campaign.save()
                first = clock(campaign.end_date)
                campaign.end_date = end_date
                campaign.save()
                how = f"job {campaign.end_job_id} added for {first}, moved to {clock(end_date)}"
            else:
                campaign.save()
                how = f"job {campaign.end_job_id} added for {clock(end_date)}"
            Funding.objects.bulk_create(Funding(campaign=campaign, amount=a) for a in amounts)
            raised = sum(amounts, Decimal(0))
            self.say(
                f"  {title:<24} ends {timezone.localtime(end_date):%m-%d %H:%M:%S}"
                f"  raised {won(raised):>13} of {won(goal):>13}  ({how})"
            )
            campaigns.append(campaign)
        return campaigns

    def declare_jobs(self, now, seconds, campaigns) -> BackgroundScheduler:
        """The demo's scheduler: django-metronome's, like the one operator.py starts."""
        scheduler = BackgroundScheduler()
        # The daily checks of operator.py (08:00 and 08:10), every 10 s here. Jobs
        # added before start() are declared in code, as operator.py's are.
        scheduler.add_job(
            CampaignStatusChecker.check_campaign_status,
            "cron",
            second=f"*/{EVERY}",
            id=f"{DEMO_PREFIX}check_campaign_status",
            name="check_campaign_status",
        )
        scheduler.add_job(
            CampaignStatusChecker.check_funding_success,
            "cron",
            second=f"{EVERY // 2}-59/{EVERY}",
            id=f"{DEMO_PREFIX}check_funding_success",
            name="check_funding_success",
        )
        # A job that fails, to show a failed run and its traceback in the ledger.
        rooftop = next(c for c in campaigns if c.title == "Rooftop cinema")
        scheduler.add_job(
            send_funding_report,
            "date",
            run_date=timezone.localtime(now + timedelta(seconds=max(3, round(seconds * 0.15)))),
            args=[rooftop.pk],
            id=f"{DEMO_PREFIX}send_funding_report",
            name="send_funding_report",
        )
        return scheduler

    # -- printing -------------------------------------------------------------------

    def print_jobs(self) -> None:
        self.say("\nJobs in the database (django_metronome.DjangoJob):")
        jobs = DjangoJob.objects.filter(
            Q(pk__startswith=DEMO_PREFIX) | Q(pk__startswith="campaign-")
        ).in_run_order()
        for job in jobs:
            self.say(f"  {job.id:<30} {job.describe_schedule():<42} {job.func_ref}")

    def _demo_runs(self):
        titles = dict(Campaign.objects.filter(title__in=TITLES).values_list("pk", "title"))
        job_ids = [f"campaign-{pk}-end" for pk in titles]
        return DjangoJobExecution.objects.filter(
            Q(job__id__startswith=DEMO_PREFIX) | Q(job_id__in=job_ids)
        )

    def print_new_runs(self, printed: set[int]) -> None:
        rows = (
            self._demo_runs()
            .filter(status__in=FINAL_STATUSES)
            .exclude(pk__in=printed)
            .order_by("finished_at", "run_time", "pk")
        )
        for row in rows:
            printed.add(row.pk)
            line = (
                f"  {clock(row.run_time)}  {row.job_name or row.job_id:<40} "
                f"{row.status.upper() if row.status != 'succeeded' else row.status:<10}"
                f" took {millis(row.duration):>9}"
            )
            if row.lateness is not None:
                line += f", started {millis(row.lateness)} after its time"
            if row.exception:
                line += f"\n      {row.exception}"
            self.say(line)

    def print_status_changes(self, statuses: dict[int, str]) -> None:
        for pk, title, status in Campaign.objects.filter(pk__in=statuses).values_list(
            "pk", "title", "status"
        ):
            if statuses[pk] != status:
                self.say(
                    f"  {clock(timezone.now())}  > campaign {title!r}: {statuses[pk]} -> {status}"
                )
                statuses[pk] = status

    def print_ledger(self) -> None:
        self.say("\nThe run ledger (django_metronome.DjangoJobExecution), in run order:")
        self.say(f"  {'scheduled':<9} {'job':<40} {'status':<10} {'duration':>10} {'late by':>10}")
        for row in self._demo_runs().order_by("run_time", "job_id"):
            self.say(
                f"  {clock(row.run_time):<9} {row.job_name or row.job_id:<40} {row.status:<10}"
                f" {millis(row.duration):>10} {millis(row.lateness):>10}"
            )

    def print_campaigns(self) -> None:
        self.say("\nThe campaigns now:")
        self.say(
            f"  {'campaign':<24} {'ends':<15} {'raised':>13} {'goal':>13}  {'status':<7} expected"
        )
        expected = {title: status for title, *_, status in SAMPLES}
        for campaign in Campaign.objects.filter(title__in=TITLES):
            mark = "yes" if campaign.status == expected[campaign.title] else "NO: "
            if mark != "yes":
                mark += expected[campaign.title]
            self.say(
                f"  {campaign.title:<24} {timezone.localtime(campaign.end_date):%m-%d %H:%M:%S}"
                f" {won(campaign.raised()):>13} {won(campaign.goal):>13}"
                f"  {campaign.status:<7} {mark}"
            )

    def print_failure(self) -> None:
        failed = self._demo_runs().filter(status="failed").order_by("run_time").first()
        if failed is None:
            return
        self.say(f"\nThe failed run's traceback, as the ledger keeps it ({failed.job_name}):")
        lines = [line for line in failed.traceback.splitlines() if line.strip("^~ ")]
        shown = lines[-4:]
        # The stored traceback usually ends with the exception line already.
        if failed.exception and failed.exception.strip() not in (line.strip() for line in shown):
            shown.append(failed.exception)
        for line in shown:
            self.say(f"  | {line}")

    def print_admin_hint(self) -> None:
        # Paths from where the user stands: scripts/demo says where that is, since it
        # runs this command from example/.
        here = os.environ.get("DEMO_CALLER_DIR") or os.getcwd()
        python = _relative(sys.executable, here)
        manage = _relative(str(Path(settings.BASE_DIR) / "manage.py"), here)
        left = DjangoJob.objects.filter(pk__startswith="campaign-").in_run_order()
        for job in left:
            if job.next_run_time is not None:
                self.say(
                    f"\nStill in the database: {job.id} ({job.name}), next run "
                    f"{timezone.localtime(job.next_run_time):%Y-%m-%d %H:%M:%S}."
                )
        self.say(
            "\nSee the jobs and their runs in the admin (SCHEDULER_DEFAULT=1 makes the server\n"
            "run the scheduler of campaigns/operator.py, as a web worker of the project would):\n"
            f"  {python} {manage} createsuperuser\n"
            f"  SCHEDULER_DEFAULT=1 {python} {manage} runserver\n"
            "  then open http://127.0.0.1:8000/admin/ (Scheduled jobs: jobs, job executions)."
        )

    def verify(self, started) -> None:
        """Fail (non-zero exit) if the demo did not do what it shows."""
        problems = []
        for title, *_, status in SAMPLES:
            actual = Campaign.objects.get(title=title).status
            if actual != status:
                problems.append(f"{title!r} is {actual}, not {status}")
        runs = self._demo_runs().filter(run_time__gte=started - timedelta(seconds=1))
        if not runs.filter(status="succeeded").exists():
            problems.append("no run succeeded")
        if not runs.filter(status="failed").exclude(traceback="").exists():
            problems.append("the failing job has no failed run with a traceback")
        if problems:
            raise CommandError("The demo did not go as expected: " + "; ".join(problems) + ".")
        self.say("\nEverything went as expected.")
