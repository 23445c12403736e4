"""
Exceptions raised by django-metronome.

Each message says what went wrong and what to do about it. Store lookups keep
APScheduler's own exceptions (``JobLookupError``, ``ConflictingIdError``) so
that code written for APScheduler catches what it expects.
"""

from __future__ import annotations


class MetronomeError(Exception):
    """Base class of every django-metronome exception."""


class SerializationError(MetronomeError, ValueError):
    """A job cannot be stored as JSON; the message names the part that cannot."""


class UnreferenceableFunction(SerializationError):
    """A job's function cannot be named by a ``module:qualname`` reference."""

    def __init__(self, job_id: str, func: object, reason: str) -> None:
        name = getattr(func, "__qualname__", None) or repr(func)
        super().__init__(
            f"Job {job_id!r} calls {name}, which cannot be stored by reference ({reason}). "
            "Define the function at module level and pass it (or its 'module:function' "
            "reference) to add_job(); a function declared inside another function can only "
            "be scheduled through django_metronome.schedulers, which keeps such jobs in a "
            "per-process registry."
        )
        self.job_id = job_id


class UnserializableArgument(SerializationError):
    """An argument of a job is not JSON: its path (``args[1]``, ``kwargs['when']``) is named."""

    def __init__(self, job_id: str, path: str, value: object, hint: str = "") -> None:
        type_name = f"{type(value).__module__}.{type(value).__qualname__}"
        if type(value).__module__ == "builtins":
            type_name = type(value).__qualname__
        message = (
            f"Job {job_id!r}: {path} is {_article(type_name)} {type_name}, which cannot be "
            "stored as JSON. "
            "Job arguments must be str, int, float, bool, None, or lists and dicts (with "
            "str keys) of those"
        )
        message += f"; {hint}." if hint else "."
        super().__init__(message)
        self.job_id = job_id
        self.path = path


def _article(word: str) -> str:
    """The article before a type name: an object, an int, a datetime.datetime, a uuid.UUID."""
    return "an" if word[:1].lower() in ("a", "e", "i", "o") else "a"


class UnserializableTrigger(SerializationError):
    """The trigger (or one of its time zones) has no JSON form."""


class ForbiddenFunction(MetronomeError, PermissionError):
    """
    A job added at run time names something it may not call.

    Either the reference's module is outside the allowed modules, or the
    reference leads somewhere else than a function defined in that module (an
    attribute hop through another module, a builtin, a dunder attribute, an
    alias): ``why`` says which.
    """

    def __init__(self, job_id: str, func_ref: str, why: str = "") -> None:
        module = func_ref.partition(":")[0]
        if why:
            message = (
                f"Job {job_id!r} calls {func_ref}, which is refused: {why}. A job added at "
                "run time may only call a function or class defined, under that very name, "
                "in an allowed module: reference it as 'module:qualname' where it is defined."
            )
        else:
            message = (
                f"Job {job_id!r} calls {func_ref}, which is not in an installed app, the "
                f"project's package or METRONOME['ALLOWED_MODULES']. If this is your code, "
                f"add {module!r} (or its package) to METRONOME['ALLOWED_MODULES']; a job "
                "declared in code (before the scheduler starts) needs no such permission."
            )
        super().__init__(message)
        self.job_id = job_id
        self.func_ref = func_ref
        self.why = why


class JobStateError(MetronomeError, ValueError):
    """A stored row cannot be turned back into a job; the row is quarantined, not deleted."""


class InvalidTrigger(MetronomeError, ValueError):
    """A trigger cannot be built, or would not work; the message names the argument."""


class InvalidTriggerArgument(InvalidTrigger, TypeError):
    """A trigger was given an argument it does not take (APScheduler raises TypeError)."""


class UnknownTrigger(InvalidTrigger, LookupError):
    """No trigger has this name (APScheduler raises LookupError)."""


class InvalidJob(MetronomeError, ValueError):
    """A job's id or name cannot be stored; the message names the field and the limit."""
