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

from django.apps import apps
from django.conf import settings

from .conf import conf
from .exceptions import ForbiddenFunction


def allowed_prefixes() -> set[str]:
    """The module names under which run-time jobs may find their functions."""
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
    return any(module == prefix or module.startswith(prefix + ".") for prefix in allowed_prefixes())


def check_allowed(job_id: str, func_ref: str) -> None:
    """Raise ForbiddenFunction unless a run-time job may call ``func_ref``."""
    if not is_allowed(func_ref):
        raise ForbiddenFunction(job_id, func_ref)
