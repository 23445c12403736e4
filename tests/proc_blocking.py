"""
A ``BlockingScheduler`` in the foreground whose SIGTERM handler calls
``shutdown()``, as APScheduler's own examples do: ``python -m tests.proc_blocking``.

The loop runs in the main thread, so the handler runs in the middle of
whatever the loop was doing (with ``METRONOME_FAULTS=claimed=term``: right
after a claim committed, before its fires were handed out). Used by
tests/test_faults.py.
"""

import os
import signal

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings_procs")
django.setup()

from django_metronome.schedulers import BlockingScheduler  # noqa: E402

scheduler = BlockingScheduler()
signal.signal(signal.SIGTERM, lambda signum, frame: scheduler.shutdown(wait=False))
scheduler.start()
