"""
``runscheduler`` in a process whose clock is off: ``python -m tests.proc_skewed SECONDS``.

The wall clock of this process runs SECONDS ahead (negative: behind) of the
real one, ticking, as on a machine whose time synchronisation failed; the
database server's clock is right. Used by the clock tests in tests/test_faults.py.
"""

import sys
from datetime import UTC, datetime, timedelta

import time_machine

skew = float(sys.argv[1])
time_machine.travel(datetime.now(UTC) + timedelta(seconds=skew), tick=True).start()

from django.core.management import execute_from_command_line  # noqa: E402

execute_from_command_line(["manage.py", "runscheduler", "--settings=tests.settings_procs"])
