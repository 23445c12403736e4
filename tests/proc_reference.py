"""
A web process of the reference project, its clock set to a given wall time.

    python -m tests.proc_reference 2026-11-26T07:59:57+09:00

The clock then ticks on from there (time-machine), so the 08:00 job fires a
few seconds later. Django's setup runs AppConfig.ready(), which starts the
scheduler, exactly as in a real web process; then the process just waits.
"""

import os
import signal
import sys
import threading
from datetime import datetime

import time_machine

if __name__ == "__main__":
    time_machine.travel(datetime.fromisoformat(sys.argv[1]), tick=True).start()
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings_reference"
    import django

    django.setup()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    os._exit(0)
