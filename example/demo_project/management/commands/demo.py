"""
Run a scheduler for a few seconds and print what it did.

This is the foundation's demo: APScheduler's own BackgroundScheduler with
DjangoJobStore and register_events. It shows jobs stored as JSON and every run
recorded in the ledger.
"""

import time
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from django.core.management.base import BaseCommand
from django.db import connections
from django.utils.timezone import localtime

from django_metronome.jobstores import DjangoJobStore, register_events
from django_metronome.models import DjangoJob, DjangoJobExecution

from ...jobs import fail, say_hello


class TidyScheduler(BackgroundScheduler):
    def _main_loop(self) -> None:
        try:
            super()._main_loop()
        finally:
            connections.close_all()


class Command(BaseCommand):
    help = "Schedule three jobs, run them for a few seconds, and print the run ledger."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=6.0)

    def handle(self, *args, seconds, **options):
        DjangoJob.objects.all().delete()
        DjangoJobExecution.objects.all().delete()

        scheduler = TidyScheduler(timezone="Asia/Seoul")
        scheduler.add_jobstore(DjangoJobStore(), "default")
        register_events(scheduler)
        scheduler.start()
        now = datetime.now(scheduler.timezone)
        scheduler.add_job(say_hello, "interval", seconds=2, args=["Seoul"], id="hello")
        scheduler.add_job(fail, "date", run_date=now + timedelta(seconds=1), id="fails")
        scheduler.add_job(say_hello, "cron", hour=8, args=["morning"], id="every-morning")

        self.stdout.write(f"Scheduler running for {seconds:g} s; jobs in the database:")
        for job in DjangoJob.objects.order_by("id"):
            self.stdout.write(f"  {job.id:<14} {job.func_ref:<35} next: {job.next_run_time}")
        time.sleep(seconds)
        scheduler.shutdown(wait=True)

        self.stdout.write("\nThe run ledger:")
        for row in DjangoJobExecution.objects.order_by("run_time"):
            line = f"  {row.job_id:<14} {localtime(row.run_time):%H:%M:%S.%f} {row.status:<10}"
            if row.duration is not None:
                line += f" took {row.duration.total_seconds() * 1000:.1f} ms"
            if row.exception:
                line += f"  {row.exception}"
            self.stdout.write(line)
