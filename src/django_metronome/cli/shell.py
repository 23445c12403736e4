"""
What every subcommand works with: the database, the output, and finding a job.

A :class:`Shell` is one call of ``manage.py metronome``: the management
command makes it (``management/commands/metronome.py``) and hands it to the
subcommand's ``handle``.
"""

from __future__ import annotations

import shlex
import sys
from contextlib import AbstractContextManager
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from ..store import audit
from ..store.models import ChangeOrigin, DjangoJob
from .output import to_json

#: The arguments are wrong (argparse exits with 2 for its own errors too).
USAGE = 2
#: ``run --wait``: the run had no outcome within the timeout.
NO_OUTCOME = 3


def command_line(*words: str) -> str:
    """A ``manage.py metronome`` command for people to type: ``manage.py metronome resume x``."""
    return "`manage.py metronome " + " ".join(shlex.quote(word) for word in words) + "`"


class Shell:
    """One call of ``manage.py metronome``: where it reads, and where and how it prints."""

    def __init__(self, command: BaseCommand, *, using: str, as_json: bool) -> None:
        self.using = using
        self.as_json = as_json
        self.stdout = command.stdout
        self.stderr = command.stderr
        self.style = command.style

    def print(self, text: str = "") -> None:
        self.stdout.write(text)

    def acting(self) -> AbstractContextManager[None]:
        """Changes made inside are the command line's, by this OS user (the audit trail)."""
        return audit.acting(ChangeOrigin.CLI, audit.os_user())

    def print_json(self, data: Any) -> None:
        self.stdout.write(to_json(data), style_func=str)

    def job(self, job_id: str) -> DjangoJob:
        """The job ``job_id``; a CommandError naming close ids when there is none."""
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

    def ask(self, question: str) -> str | None:
        """Ask on the terminal; None when standard input is not one."""
        if sys.stdin is None or not sys.stdin.isatty():
            return None
        out = self.stderr if self.as_json else self.stdout  # keep --json output clean
        out.write(question, style_func=str, ending="")
        out.flush()
        return sys.stdin.readline().strip().lower()
