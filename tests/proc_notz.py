"""
A scheduler's whole cycle under USE_TZ = False, checked from inside that process.

    python -m tests.proc_notz     (DJANGO_SETTINGS_MODULE=tests.settings_notz)

Prints one JSON object: what was checked, and the problems found (none, we hope).
The test process (USE_TZ = True) cannot read naive wall times the same way, so
the checks run here.
"""

import itertools
import json
import os
import time
from datetime import UTC, datetime, timedelta

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings_notz"

import django

django.setup()

from django_metronome.context import current_fire  # noqa: E402
from django_metronome.models import DjangoJob, DjangoJobExecution  # noqa: E402
from django_metronome.schedulers import BackgroundScheduler  # noqa: E402

SEEN = []


def remember():
    SEEN.append(current_fire().run_time)


def main() -> dict:
    problems = []
    scheduler = BackgroundScheduler()
    start = datetime.now(UTC)
    scheduler.add_job(remember, "interval", seconds=0.3, id="tick")
    scheduler.add_job("tests.testapp.jobs:fail", "date", run_date=start + timedelta(seconds=0.2))
    scheduler.start()
    time.sleep(1.5)
    job = DjangoJob.objects.get(pk="tick")
    manual = job.run_now()
    time.sleep(0.5)
    until = datetime.now(UTC) + timedelta(hours=2)
    job.pause(until=until)
    scheduler.shutdown()

    job = DjangoJob.objects.get(pk="tick")
    if job.paused_until != until:
        problems.append(f"paused_until came back as {job.paused_until!r}, not {until!r}")
    runs = list(DjangoJobExecution.objects.filter(job_id="tick", manual=False).order_by("run_time"))
    times = [r.run_time for r in runs]
    if any(t.tzinfo is None for t in times):
        problems.append("the ledger returned naive datetimes")
    if any(b - a != timedelta(seconds=0.3) for a, b in itertools.pairwise(times)):
        problems.append(f"fires are not 0.3 s apart: {times}")
    if abs(times[0] - (start + timedelta(seconds=0.3))) > timedelta(seconds=0.1):
        problems.append(f"the first fire {times[0]} is not 0.3 s after the start {start}")
    if not set(times) <= set(SEEN):
        problems.append(f"current_fire() said {SEEN}, the ledger {times}")
    problems.extend(
        f"bad run {run.status} {run.duration} {run.lateness}"
        for run in runs
        if run.status != "succeeded" or run.duration < timedelta(0) or run.lateness < timedelta(0)
    )
    manual = DjangoJobExecution.objects.get(pk=manual.pk)
    if manual.status != "succeeded":
        problems.append(f"run now ended {manual.status}")
    failed = DjangoJobExecution.objects.exclude(job_id="tick").get()
    if failed.status != "failed" or "RuntimeError: boom" not in failed.exception:
        problems.append(f"the failing job ended {failed.status}: {failed.exception}")
    return {"runs": len(runs), "problems": problems}


if __name__ == "__main__":
    print(json.dumps(main()), flush=True)
    os._exit(0)
