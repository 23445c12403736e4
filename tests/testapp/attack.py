"""
A module of an installed app that happens to import dangerous things.

Nothing here may be reachable as a job's function except ``allowed`` (and
``Holder.allowed_static``): the allow-list must judge the object a reference
leads to, not the module before the colon (tests/test_allowlist_attack.py).
"""

from __future__ import annotations

import builtins  # noqa: F401  (the attack walks through it)
import functools
import logging
import os
import subprocess  # noqa: F401  (the attack walks through it)
from os import system  # noqa: F401  (an alias of a function defined elsewhere)
from typing import Any

logger = logging.getLogger(__name__)


def allowed(*args: Any, **kwargs: Any) -> str:
    """The one function here that a run-time job may call."""
    return "allowed"


#: An alias of an allowed function: it is not defined under this name.
alias = allowed

#: A partial of a dangerous function.
shell = functools.partial(os.system)


class Holder:
    """A class whose attributes are functions defined elsewhere."""

    run = os.system

    @staticmethod
    def allowed_static(*args: Any, **kwargs: Any) -> str:
        return "static"


class Runner:
    def __call__(self, command: str) -> int:
        return os.system(command)


instance = Runner()
