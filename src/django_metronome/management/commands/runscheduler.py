"""``manage.py runscheduler``: run the default scheduler in the foreground."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import checks
from ...autostart import migrations_applied
from ...conf import conf
from ...default import autodiscover, get_scheduler
from ...runner import SchedulerRunner


def valid_timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError("must be a finite number of seconds, 0 or more")
    return seconds


class Command(BaseCommand):
    help = (
        "Run the scheduler in the foreground: it claims and runs due jobs until SIGTERM or "
        "SIGINT, then lets running jobs finish (up to --shutdown-timeout seconds). A second "
        "signal exits at once. Run as many as you like: each fire runs once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--shutdown-timeout",
            type=valid_timeout,
            default=None,
            help="Seconds to wait for running jobs when stopping "
            "(default: METRONOME['SHUTDOWN_TIMEOUT']).",
        )

    def handle(self, *args: Any, shutdown_timeout: float | None, **options: Any) -> None:
        self._configure_logging(options["verbosity"])
        autodiscover()
        scheduler = get_scheduler()
        # A database that cannot skip locked rows, or is not migrated, or a SQLite
        # file another scheduler process uses already (W001): say so now.
        with checks.starting_scheduler():
            self.check(databases=[scheduler.database])
        if not migrations_applied():
            raise CommandError(
                "django_metronome's migrations are not applied to database "
                f"{scheduler.database!r}. Run: python manage.py migrate django_metronome"
            )
        timeout = conf.SHUTDOWN_TIMEOUT if shutdown_timeout is None else shutdown_timeout
        code = SchedulerRunner(scheduler, timeout).run()
        if code:
            sys.exit(code)

    @staticmethod
    def _configure_logging(verbosity: int) -> None:
        """Show the scheduler's log lines unless the project's LOGGING already routes them."""
        level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
        for name in ("django_metronome", "apscheduler"):
            logger = logging.getLogger(name)
            if not logger.handlers and not logging.getLogger().handlers:
                handler = logging.StreamHandler()
                handler.setFormatter(
                    logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
                )
                logger.addHandler(handler)
                logger.setLevel(level)
                logger.propagate = False
