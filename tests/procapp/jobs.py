"""
Jobs declared in code for the multi-process tests (found by autodiscovery).

``METRONOME_PROC_JOBS`` (comma-separated) says which to declare, so that each
test starts the processes it needs with the same declarations in each.
"""

import os

from django_metronome import scheduler
from tests.testapp.jobs import fail_loudly, record_fire, record_then_hang

wanted = set(filter(None, os.environ.get("METRONOME_PROC_JOBS", "").split(",")))

if "every-second" in wanted:
    scheduler.add_job(record_fire, "interval", seconds=1, id="every-second")
if "slow" in wanted:
    # Runs long past its next fire: max_instances keeps it to one at a time.
    scheduler.add_job(record_then_hang, "interval", seconds=1, args=[30], id="slow")
if "raises" in wanted:
    scheduler.add_job(fail_loudly, "interval", seconds=1, id="raises")
