"""
``manage.py metronome``: look after the jobs and their run history from a shell.

Subcommands: list, show, run, pause, resume, remove, history, prune, health,
metrics.
Each prints text for people, or JSON for programs with ``--json``. Exit codes:
0 done (healthy), 1 failed (not healthy, unknown job, a run that did not
succeed), 2 wrong arguments, 3 ``run --wait`` saw no outcome in time, 141 the
reader of the output went away (``| head``), quietly, as when killed by SIGPIPE.

This module only wires the parser: each subcommand lives in its own module of
:mod:`django_metronome.cli`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections
from django.utils import translation

from ...cli import SUBCOMMANDS
from ...cli.health import NotHealthy
from ...cli.shell import USAGE, Shell
from ...store.db import database_alias

#: The reader of the output went away (``| head``): the shell's code for SIGPIPE.
BROKEN_PIPE = 128 + 13


class Command(BaseCommand):
    help = (
        "Look after django-metronome's jobs and their run history: list, show, run, pause, "
        "resume, remove, history, prune, health, metrics. Add --json for output a program can "
        "read. `manage.py metronome SUBCOMMAND --help` tells more."
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
        for subcommand in SUBCOMMANDS:
            sub = subcommands.add_parser(
                subcommand.NAME,
                help=subcommand.HELP,
                description=f"{subcommand.HELP} {getattr(subcommand, 'DESCRIPTION', '')}".strip(),
                parents=[common],
                formatter_class=parser.formatter_class,
            )
            subcommand.add_arguments(sub)

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
        using = self._database(database)
        handlers = {module.NAME: module.handle for module in SUBCOMMANDS}
        # Text for people follows LANGUAGE_CODE (English by default); --json is for
        # programs and never changes with the language.
        language = translation.override(None) if as_json else contextlib.nullcontext()
        try:
            with language:
                handlers[subcommand](Shell(self, using=using, as_json=as_json), **options)
        except DatabaseError as exc:
            raise CommandError(
                f"The database {using!r} could not be queried: {exc}. Check that it is "
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
