"""
``manage.py metronome``'s subcommands, one module each.

Each module names its subcommand (``NAME``, ``HELP``, maybe ``DESCRIPTION``), adds
its own arguments (``add_arguments``) and does its work (``handle``, given a
:class:`.shell.Shell` and the parsed options). ``management/commands/metronome.py``
only wires them to Django's command. Shared here: argument types
(:mod:`.arguments`), what is printed (:mod:`.output`) and the call's database
and output (:mod:`.shell`). The words for a job's state, for lengths of time and
for why nobody runs a job are the admin's too (:mod:`django_metronome.present`).
"""

from __future__ import annotations

from . import (
    audit,
    backfill,
    health,
    history,
    list_jobs,
    metrics,
    pause,
    prune,
    remove,
    resume,
    run,
    show,
    watch,
)

#: The subcommands, in the order ``--help`` lists them.
SUBCOMMANDS = (
    list_jobs,
    show,
    run,
    backfill,
    pause,
    resume,
    remove,
    history,
    audit,
    prune,
    health,
    metrics,
    watch,
)

__all__ = ["SUBCOMMANDS"]
