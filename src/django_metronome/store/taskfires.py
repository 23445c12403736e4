"""
Fires of ``django.tasks`` jobs: a job whose target is a ``Task`` is not called
by the scheduler; each fire *enqueues* the task on its backend, and the ledger
row says where it went and, fed by the task framework's signals, how it ended.

The framework is Django's own ``django.tasks`` (Django 6.0+) or, on Django
5.2, the ``django-tasks`` backport: :func:`framework` finds whichever is
installed. Without either, no target is a task and nothing here is used.

A fire's row moves ``claimed -> running`` (the scheduler is enqueueing it) ``->
enqueued`` (the task backend has it) ``-> running`` (a task worker started it)
``-> succeeded | failed``. When the backend keeps its tasks in the ledger's own
database (``django-tasks-db`` on the same alias) the task row and the move to
``enqueued`` commit in one transaction; with any other backend the enqueue comes
first and the ledger write right after it. What a crash between the two means
is in ``docs/tasks.md``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib.util import find_spec
from types import SimpleNamespace
from typing import Any

from django.db import router, transaction
from django.db.models import F, Value

from ..exceptions import InvalidJob
from .db import database_alias, to_db, utcnow
from .models import DjangoJob, DjangoJobExecution, ExecutionStatus

logger = logging.getLogger("django_metronome.tasks")

__all__ = [
    "FIRE_KWARGS",
    "TASK_OPTIONS",
    "TaskOutcome",
    "as_task",
    "check_task_options",
    "configured_task",
    "connect_signals",
    "enqueue_fire",
    "fire_kwargs",
    "framework",
    "reconcile",
    "shares_transaction",
    "task_reference",
]

#: The keys a job's ``task_options`` may have.
TASK_OPTIONS = ("backend", "queue_name", "priority", "fire_kwargs")

#: The keyword arguments a task gets with ``task_options={"fire_kwargs": True}``.
FIRE_KWARGS = ("metronome_nominal_time", "metronome_idempotency_key")

#: The reason of a fire whose task failed without its error in the outcome's signal
#: (django-tasks-rq sends ``task_finished`` before RQ records the error, and an RQ job
#: abandoned by a killed worker has none yet): the reconciliation reads the error
#: from the backend and clears this reason (docs/tasks.md).
ERROR_TO_READ = (
    "The task failed; its error is read from its task backend by the next reconciliation."
)
#: ... and the reason left when the backend had no error to read either.
NO_ERROR = "The task failed; its task backend gave no error for it."
#: How long after its end a failure's error is read (the backend records it just after
#: the signal), and how far back (by scheduled time) such fires are looked for.
ERROR_READ_AFTER = timedelta(seconds=60)
ERROR_READ_WITHIN = timedelta(days=1)


@cache
def framework() -> SimpleNamespace | None:
    """
    The installed task framework's pieces, or None: Django's ``django.tasks``
    first, else the ``django-tasks`` backport.
    """
    for name in ("django.tasks", "django_tasks"):
        try:
            if find_spec(name) is None:
                continue
        except ModuleNotFoundError:
            continue
        package = importlib.import_module(name)
        base = importlib.import_module(f"{name}.base")
        exceptions = importlib.import_module(f"{name}.exceptions")
        signals = importlib.import_module(f"{name}.signals")
        return SimpleNamespace(
            name=name,
            Task=base.Task,
            Status=base.TaskResultStatus,
            backends=package.task_backends,
            InvalidTask=getattr(exceptions, "InvalidTask", None)
            or getattr(exceptions, "InvalidTaskError", Exception),
            InvalidBackend=getattr(exceptions, "InvalidTaskBackend", None)
            or getattr(exceptions, "InvalidTaskBackendError", Exception),
            ResultDoesNotExist=exceptions.TaskResultDoesNotExist,
            started=signals.task_started,
            finished=signals.task_finished,
        )
    return None


def as_task(obj: Any) -> Any | None:
    """``obj`` if it is a ``django.tasks`` Task, else None (also when no framework is installed)."""
    if obj is None or isinstance(obj, str):
        return None
    tasks = framework()
    return obj if tasks is not None and isinstance(obj, tasks.Task) else None


def task_reference(task: Any) -> str:
    """
    ``module:qualname`` of the task's function: ``@task`` put the Task under
    that very name, so the reference imports the Task itself.
    """
    return f"{task.func.__module__}:{task.func.__qualname__}"


def check_task_options(job_id: str, options: Any) -> dict[str, Any] | None:
    """Refuse ``task_options`` that are not a dict of known keys with values of the right type."""
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise InvalidJob(
            f"Job {job_id!r}: task_options must be a dict, not {type(options).__name__}."
        )
    unknown = sorted(set(options) - set(TASK_OPTIONS))
    if unknown:
        raise InvalidJob(
            f"Job {job_id!r}: task_options has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"the keys are {', '.join(map(repr, TASK_OPTIONS))}."
        )
    for key, kind in (("backend", str), ("queue_name", str), ("priority", int)):
        value = options.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise InvalidJob(
                f"Job {job_id!r}: task_options[{key!r}] must be a {kind.__name__}, not {value!r}."
            )
    if not isinstance(options.get("fire_kwargs", False), bool):
        raise InvalidJob(f"Job {job_id!r}: task_options['fire_kwargs'] must be True or False.")
    return dict(options)


def configured_task(task: Any, options: Mapping[str, Any] | None, job_id: str = "") -> Any:
    """
    The task with the job's overrides (backend, queue, priority), checked by its
    backend: an unknown backend alias or queue, a priority on a backend without
    ``supports_priority``, raise :class:`InvalidJob` saying what to change.
    """
    overrides = {
        key: options[key]
        for key in ("backend", "queue_name", "priority")
        if options and options.get(key) is not None
    }
    tasks = framework()
    assert tasks is not None  # a Task exists, so its framework does
    try:
        return task.using(**overrides) if overrides else task
    except (tasks.InvalidTask, tasks.InvalidBackend) as exc:
        where = f"Job {job_id!r}: " if job_id else ""
        raise InvalidJob(
            f"{where}the task {task_reference(task)} cannot be enqueued as configured "
            f"({exc}). Check the job's task_options and settings.TASKS (backend aliases, "
            "their QUEUES, and whether the backend supports priorities)."
        ) from None


def fire_kwargs(job_id: str, run_time: datetime) -> dict[str, str]:
    """The opt-in keyword arguments: the fire's nominal time, and a key unique to the fire."""
    nominal = run_time.isoformat()
    return {
        "metronome_nominal_time": nominal,
        "metronome_idempotency_key": f"{job_id}@{nominal}",
    }


def shares_transaction(backend: Any, using: str) -> bool:
    """
    Whether ``backend`` writes its tasks in the ledger's database (django-tasks-db's
    backend, its table routed to ``using``): then one transaction holds both rows.
    """
    if not type(backend).__module__.startswith("django_tasks_db"):
        return False
    try:
        from django_tasks_db.models import DBTaskResult
    except ImportError:  # pragma: no cover  (its backend was imported, so it is there)
        return False
    return router.db_for_write(DBTaskResult) == using


# --- the scheduler's side: one enqueue per fire ---------------------------------------------


@dataclass(frozen=True)
class TaskOutcome:
    """Where a fire went: its backend, queue and task result, and the status it has there."""

    backend: str
    queue: str
    result_id: str
    status: ExecutionStatus


def enqueue_fire(
    using: str,
    *,
    execution_id: int,
    job_id: str,
    task: Any,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    ended: bool = False,
    between: Callable[[], None] | None = None,
) -> TaskOutcome:
    """
    Enqueue one fire's task and record it on the fire's ledger row.

    The row is this process's (marked running: being enqueued). With a backend
    that shares the ledger's database both writes commit together: a crash
    before the commit leaves no task and a running row, which the reaper marks
    interrupted; there is never a task without its ledger row saying so.
    Raises what the backend raises (nothing is recorded then). ``between`` is
    called after the enqueue and before the ledger write (the fault suite's hook).
    """
    backend = task.get_backend()
    if shares_transaction(backend, using):
        with transaction.atomic(using=using):
            result = task.enqueue(*args, **kwargs)
            if between is not None:
                between()
            outcome = _record_enqueued(using, execution_id, task, result)
    else:
        result = task.enqueue(*args, **kwargs)
        if between is not None:
            between()
        outcome = _record_enqueued(using, execution_id, task, result)
        if outcome.status == ExecutionStatus.ENQUEUED:
            _catch_up(using, backend, outcome)
    if ended:
        # Its last fire is with the task backend now: the ended job's row goes, as it
        # goes with the last outcome of a job run in the scheduler.
        DjangoJob.all_rows.using(using).filter(pk=job_id, ended_at__isnull=False).delete()
    return outcome


def _catch_up(using: str, backend: Any, outcome: TaskOutcome) -> None:
    """
    A backend outside the ledger's transaction may run the task before the ledger
    knows its id (a fast worker's signals then find no row): ask the backend once,
    now that the row has the id, and write what it says.
    """
    if not getattr(backend, "supports_get_result", False):
        return  # the worker's signals, or nothing: docs/tasks.md
    tasks = framework()
    try:
        result = backend.get_result(outcome.result_id)
    except Exception as exc:
        if tasks is None or not isinstance(exc, tasks.ResultDoesNotExist):
            logger.warning("Could not read task result %s: %s", outcome.result_id, exc)
        return
    status = _ledger_status(result.status)
    if status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED):
        finish(result, using)
    elif status == ExecutionStatus.RUNNING:
        _mark_running(_rows_of(result, using), _worker(result))


def _record_enqueued(using: str, execution_id: int, task: Any, result: Any) -> TaskOutcome:
    status = _ledger_status(result.status) or ExecutionStatus.ENQUEUED
    outcome = TaskOutcome(str(result.backend), task.queue_name, str(result.id), status)
    fields: dict[str, Any] = {
        "status": status,
        "task_backend": outcome.backend,
        "task_queue": outcome.queue,
        "task_result_id": outcome.result_id,
    }
    if status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED):
        # Run during the enqueue (an immediate backend): its end is known now.
        fields.update(_final_fields(result))
    # "What really happened wins over a presumption": an interrupted mark by a process
    # that presumed this one dead is overwritten, as outcomes do.
    DjangoJobExecution.objects.using(using).filter(
        pk=execution_id,
        status__in=[ExecutionStatus.RUNNING, ExecutionStatus.INTERRUPTED],
    ).update(**fields)
    return outcome


# --- the worker's side: the framework's signals ------------------------------------------------


def _ledger_status(status: Any) -> ExecutionStatus | None:
    """The ledger's status for a task result's (None: not one the ledger follows)."""
    return {
        "READY": ExecutionStatus.ENQUEUED,
        "RUNNING": ExecutionStatus.RUNNING,
        "SUCCESSFUL": ExecutionStatus.SUCCEEDED,
        "FAILED": ExecutionStatus.FAILED,
    }.get(str(getattr(status, "value", status)))


def _final_fields(result: Any) -> dict[str, Any]:
    """The ledger columns of a finished task result: when, and the worker's traceback."""
    fields: dict[str, Any] = {"finished_at": to_db(result.finished_at or utcnow())}
    errors = list(getattr(result, "errors", None) or [])
    if errors:
        error = errors[-1]
        traceback = str(getattr(error, "traceback", "") or "")
        lines = [line for line in traceback.splitlines() if line.strip()]
        fields["traceback"] = traceback
        fields["exception"] = lines[-1] if lines else str(error.exception_class_path)
    return fields


def _worker(result: Any) -> str | None:
    worker_ids = list(getattr(result, "worker_ids", None) or [])
    return str(worker_ids[-1])[:255] if worker_ids else None


def _mark_running(rows: Any, worker: str | None, **fields: Any) -> int:
    """
    The fire's row goes running on ``worker``; a row already running without its
    worker gets it. Either the worker's ``task_started`` or the scheduler's reading
    of the result may come first, and the first may not know the worker (RQ reports
    a job started before it names the worker).
    """
    changed = rows.filter(status=ExecutionStatus.ENQUEUED).update(
        status=ExecutionStatus.RUNNING, task_worker=worker, **fields
    )
    if worker:
        changed += rows.filter(status=ExecutionStatus.RUNNING, task_worker__isnull=True).update(
            task_worker=worker, **fields
        )
    return int(changed)


def on_task_started(sender: Any, task_result: Any, **kwargs: Any) -> None:
    """``task_started`` (in the worker process): the fire's row goes running."""
    try:
        _mark_running(
            _rows_of(task_result),
            _worker(task_result),
            started_at=to_db(task_result.started_at or utcnow()),
        )
    except Exception:
        # A signal receiver must not fail the task: the reconciliation pass catches up.
        logger.exception("Could not mark the fire of task %s running.", task_result.id)


def on_task_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
    """``task_finished`` (in the worker process): the fire's row gets the task's outcome."""
    try:
        finish(task_result)
    except Exception:
        logger.exception("Could not record the outcome of task %s.", task_result.id)


def finish(task_result: Any, using: str | None = None) -> int:
    """Write a finished task result onto its fire's row; return the rows changed (0 or 1)."""
    status = _ledger_status(task_result.status)
    if status not in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED):
        return 0
    fields = _final_fields(task_result)
    fields["status"] = status
    if status == ExecutionStatus.FAILED and "exception" not in fields:
        fields["reason"] = ERROR_TO_READ
    worker = _worker(task_result)
    if worker:
        fields["task_worker"] = worker
    end = fields["finished_at"]
    rows = _rows_of(task_result, using).filter(
        status__in=[
            ExecutionStatus.ENQUEUED,
            ExecutionStatus.RUNNING,
            ExecutionStatus.INTERRUPTED,
        ]
    )
    started = task_result.started_at
    if started is not None:
        fields["started_at"] = to_db(started)
        fields["duration"] = end - to_db(started)
        return rows.update(**fields)
    changed = rows.filter(started_at__isnull=False).update(
        duration=Value(end) - F("started_at"), **fields
    )
    return changed + rows.filter(started_at__isnull=True).update(**fields)


def _rows_of(task_result: Any, using: str | None = None) -> Any:
    return DjangoJobExecution.objects.using(using or database_alias()).filter(
        task_result_id=str(task_result.id), task_backend=str(task_result.backend)
    )


def connect_signals() -> None:
    """Connect the receivers (``AppConfig.ready``): they run in any process that runs tasks."""
    # Both frameworks' signals where both are installed: on Django 6 a backend built on
    # the backport (django-tasks-rq 0.12) sends the backport's.
    for name in ("django.tasks", "django_tasks"):
        try:
            if find_spec(name) is None:
                continue
        except ModuleNotFoundError:
            continue
        signals = importlib.import_module(f"{name}.signals")
        signals.task_started.connect(on_task_started, dispatch_uid="django_metronome.task_started")
        signals.task_finished.connect(
            on_task_finished, dispatch_uid="django_metronome.task_finished"
        )


# --- reconciliation: results whose signal never came ---------------------------------------------


def reconcile(using: str, now: datetime, *, older_than: timedelta, limit: int = 200) -> int:
    """
    Ask the backends about fires still enqueued or running after ``older_than``
    (a worker in another project, a signal lost with a crash, a backend that
    sends none): each finished result is written to its row. Backends without
    ``supports_get_result`` are not asked. Then read the errors of failures whose
    signal had none (:data:`ERROR_TO_READ`). Return the rows changed.
    """
    tasks = framework()
    if tasks is None:
        return 0
    return _reconcile_open(using, tasks, now, older_than, limit) + _read_errors(
        using, tasks, now, limit
    )


def _reconcile_open(
    using: str, tasks: SimpleNamespace, now: datetime, older_than: timedelta, limit: int
) -> int:
    """Fires still enqueued or running after ``older_than``: their backends' outcomes."""
    rows = (
        DjangoJobExecution.objects.using(using)
        .filter(
            status__in=[ExecutionStatus.ENQUEUED, ExecutionStatus.RUNNING],
            task_result_id__isnull=False,
            claimed_at__lt=to_db(now - older_than),
        )
        .order_by("claimed_at")
        .values_list("task_backend", "task_result_id")[:limit]
    )
    changed = 0
    for alias, result_id in list(rows):
        try:
            backend = tasks.backends[alias]
        except tasks.InvalidBackend:
            continue  # an alias no longer configured: the system check reports it
        if not getattr(backend, "supports_get_result", False):
            continue
        try:
            result = backend.get_result(result_id)
        except tasks.ResultDoesNotExist:
            continue
        except Exception:
            logger.warning("Could not read task result %s from %r.", result_id, alias)
            continue
        status = _ledger_status(result.status)
        if status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED):
            changed += finish(result, using)
        elif status == ExecutionStatus.RUNNING:
            changed += _mark_running(_rows_of(result, using), _worker(result))
    return changed


def _read_errors(using: str, tasks: SimpleNamespace, now: datetime, limit: int) -> int:
    """
    Failed fires whose outcome came without its error (:data:`ERROR_TO_READ`): each
    is read once from its backend, a minute after its end; the error found is
    written, or :data:`NO_ERROR`. Only fires scheduled within a day are looked for
    (by the ledger's status and time index, not through all failures).
    """
    rows = (
        DjangoJobExecution.objects.using(using)
        .filter(
            status=ExecutionStatus.FAILED,
            run_time__gte=to_db(now - ERROR_READ_WITHIN),
            reason=ERROR_TO_READ,
            task_result_id__isnull=False,
            finished_at__lt=to_db(now - ERROR_READ_AFTER),
        )
        .values_list("pk", "task_backend", "task_result_id")[:limit]
    )
    changed = 0
    for pk, alias, result_id in list(rows):
        fields: dict[str, Any] = {"reason": NO_ERROR}
        try:
            backend = tasks.backends[alias]
        except tasks.InvalidBackend:
            backend = None
        if backend is not None and getattr(backend, "supports_get_result", False):
            try:
                result = backend.get_result(result_id)
            except tasks.ResultDoesNotExist:
                pass
            except Exception:
                logger.warning("Could not read task result %s from %r.", result_id, alias)
                continue  # the next reconciliation tries again
            else:
                found = _final_fields(result)
                if "exception" in found:
                    fields = {
                        "reason": "",
                        "exception": found["exception"],
                        "traceback": found["traceback"],
                    }
        changed += (
            DjangoJobExecution.objects.using(using)
            .filter(pk=pk, status=ExecutionStatus.FAILED, reason=ERROR_TO_READ)
            .update(**fields)
        )
    return changed


# --- the system check: stored overrides that settings.TASKS no longer knows -------------------


def unknown_targets(using: str) -> list[tuple[str, str, str]]:
    """
    ``(job id, backend alias, queue)`` of each stored job whose task overrides name a
    backend alias missing from ``settings.TASKS`` (queue ``""``), or a queue its
    backend does not list in ``QUEUES``. Jobs are checked at add time; this finds
    the ones a later change of the settings left behind.
    """
    from django.conf import settings

    from .allowlist import resolve

    configured: dict[str, Any] = getattr(settings, "TASKS", None) or {"default": {}}
    found = []
    rows = (
        DjangoJob.objects.using(using)
        .filter(state__has_key="task_options")
        .values_list("id", "func_ref", "state")
    )
    for job_id, func_ref, state in rows:
        options = state.get("task_options") or {}
        alias, queue = options.get("backend"), options.get("queue_name")
        if alias is None and queue is None:
            continue
        if alias is None:
            try:
                target: Any = resolve(job_id, func_ref)
                alias = target.backend
            except Exception:  # noqa: S112  (not loadable here: quarantined, reported there)
                continue
        if alias not in configured:
            found.append((job_id, alias, ""))
            continue
        queues = configured[alias].get("QUEUES", ["default"])
        if queue is not None and queues and queue not in queues:
            found.append((job_id, alias, queue))
    return found
