"""
Which functions a job added at run time may call.

A job's function reference is a string in the database. If any string could
be imported and called, an edit of one row (``os:system`` with a shell command
as its argument) would run any code on every scheduler. So a job added at run
time may only call a function in:

* the package of an installed app (``campaigns`` for ``campaigns.tasks:close``),
* the project's own package: the top-level package of the settings module and
  of ``ROOT_URLCONF`` (``mysite`` for ``mysite.settings``),
* a module listed in ``METRONOME["ALLOWED_MODULES"]`` (module names; a package
  allows its submodules).

Jobs declared in code are not looked up by name at all: each process runs the
function it declared for the id. A row outside these rules is refused when it
is added and quarantined (with its arguments never passed anywhere) if it
appears in the database by other means.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.signals import setting_changed

from .conf import conf
from .exceptions import ForbiddenFunction

_cache: dict[str, frozenset[str]] = {}


def _forget(**kwargs: Any) -> None:
    _cache.clear()


# Installed apps, the settings module and METRONOME only change in tests, and
# Django tells: the allow-list is worked out once, not for every job loaded.
setting_changed.connect(_forget, dispatch_uid="django_metronome.allowlist")


def allowed_prefixes() -> frozenset[str]:
    """The module names under which run-time jobs may find their functions."""
    cached = _cache.get("prefixes")
    if cached is None:
        cached = _cache["prefixes"] = frozenset(_work_out_prefixes())
    return cached


def _work_out_prefixes() -> set[str]:
    prefixes = {app.name for app in apps.get_app_configs()}
    for module in (
        getattr(settings, "SETTINGS_MODULE", None),
        getattr(settings, "ROOT_URLCONF", None),
    ):
        if isinstance(module, str) and module:
            prefixes.add(module.split(".")[0])
    prefixes.update(conf.ALLOWED_MODULES)
    return prefixes


def is_allowed(func_ref: str) -> bool:
    module = func_ref.partition(":")[0]
    prefixes = allowed_prefixes()
    # The module, or any package above it, is allowed.
    parts = module.split(".")
    return any(".".join(parts[:i]) in prefixes for i in range(1, len(parts) + 1))


def check_allowed(job_id: str, func_ref: str) -> None:
    """Raise ForbiddenFunction unless a run-time job may call ``func_ref``."""
    if not is_allowed(func_ref):
        raise ForbiddenFunction(job_id, func_ref)
