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

The module before the colon is not enough: ``allowed.tasks:os.system`` starts
in an allowed module and walks, attribute by attribute, to ``os.system``. So
the reference is resolved here, step by step, and what it leads to must be a
function (or class) *defined in that module under that name*: its
``__module__`` and ``__qualname__`` are the reference's own, no step passes
through another module, no step is a dunder attribute, and builtins are
refused. This is judged on the object that would be called, for jobs added
at run time, for rows read from the database (before any call) and for jobs
imported from django-apscheduler.

Jobs declared in code are not looked up by name at all: each process runs the
function it declared for the id. A row outside these rules is refused when it
is added and quarantined (with its arguments never passed anywhere) if it
appears in the database by other means.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
import types
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.signals import setting_changed

from ..conf import conf
from ..exceptions import ForbiddenFunction
from .models import DjangoJob, JobSource
from .taskfires import as_task

logger = logging.getLogger("django_metronome.jobstores")

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
    resolve(job_id, func_ref)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: What a builtin or C-level callable looks like: never a project's function.
_BUILTIN_TYPES = (
    types.BuiltinFunctionType,
    types.BuiltinMethodType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
)


def resolve(job_id: str, func_ref: str) -> Callable[..., Any]:
    """
    The callable ``func_ref`` names, if a job added at run time may call it.

    Raise :class:`ForbiddenFunction` (saying why) otherwise. The module is
    checked against the allow-list before it is imported (importing runs
    code too); then each attribute of the qualified name is looked up in
    turn, and the object reached must be defined in that module under that
    very name.
    """
    module_name, colon, qualname = func_ref.partition(":")
    if not colon or not module_name or not qualname:
        raise ForbiddenFunction(job_id, func_ref, "it is not a 'module:qualname' reference")
    modules, parts = module_name.split("."), qualname.split(".")
    for part in (*modules, *parts):
        if not _NAME.match(part):
            raise ForbiddenFunction(job_id, func_ref, f"{part!r} is not a Python name")
    for part in parts:
        if part.startswith("__"):
            raise ForbiddenFunction(
                job_id, func_ref, f"it goes through the special attribute {part!r}"
            )
    if not is_allowed(func_ref):
        raise ForbiddenFunction(job_id, func_ref)
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        # Not a refusal: the code is missing here (a deploy behind, a typo).
        raise LookupError(f"Error resolving reference {func_ref}: could not import module") from exc
    walked = module_name
    for part in parts:
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise LookupError(
                f"Error resolving reference {func_ref}: error looking up object "
                f"({walked} has no attribute {part!r})"
            ) from exc
        walked += ("." if walked != module_name else ":") + part
        if inspect.ismodule(target):
            raise ForbiddenFunction(
                job_id, func_ref, f"{walked} is the module {target.__name__!r}, not a function"
            )
    found = target
    # A django.tasks Task is judged on its function (the allow-list rules are the same).
    task = as_task(target)
    if task is not None:
        target = task.func
    if isinstance(target, _BUILTIN_TYPES) or inspect.isbuiltin(target):
        raise ForbiddenFunction(job_id, func_ref, "it is a builtin, not a function of yours")
    if not callable(target):
        raise ForbiddenFunction(job_id, func_ref, "it is not callable")
    defined_in = getattr(target, "__module__", None)
    defined_as = getattr(target, "__qualname__", None)
    if defined_in != module_name or defined_as != qualname:
        where = (
            f"{defined_in}:{defined_as}"
            if isinstance(defined_in, str) and isinstance(defined_as, str)
            else f"a {type(target).__qualname__} object"
        )
        raise ForbiddenFunction(job_id, func_ref, f"it leads to {where}, defined elsewhere")
    return found  # type: ignore[no-any-return]


def refusal(job_id: str, func_ref: str) -> str | None:
    """Why a run-time job may not call ``func_ref``; None if it may (or cannot be imported)."""
    try:
        resolve(job_id, func_ref)
    except ForbiddenFunction as exc:
        return str(exc)
    except Exception:
        # Not importable in this process: a load failure, not a refusal.
        return None
    return None


def quarantine_refused(using: str) -> list[str]:
    """
    Quarantine every run-time job whose function the allow-list refuses.

    A row edited by hand is caught when it is loaded, before any call; this
    sweep (run by the schedulers' heart) catches it before it falls due, so
    that the admin shows it at once. Each distinct function is judged once.
    Return the ids quarantined by this call.
    """
    jobs = DjangoJob.objects.using(using)
    refs = (
        jobs.loadable()
        .filter(source=JobSource.RUNTIME)
        .order_by()
        .values_list("func_ref", flat=True)
        .distinct()
    )
    quarantined: list[str] = []
    for func_ref in list(refs):
        reason = refusal("*", func_ref)
        if reason is None:
            continue
        rows = jobs.loadable().filter(source=JobSource.RUNTIME, func_ref=func_ref)
        for job_id in rows.values_list("id", flat=True):
            why = reason.replace("Job '*'", f"Job {job_id!r}", 1)
            if jobs.quarantine(job_id, why):
                quarantined.append(job_id)
                logger.error("Job %r is quarantined (kept, not run): %s", job_id, why)
    return quarantined
