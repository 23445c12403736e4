"""
Reading django-apscheduler's pickled job states, narrowly: the only pickle this package reads.

A pickle is a small program, and a crafted one calls any function it names
while it is being read. :func:`load_job_state` loads only what an APScheduler
job state is made of (APScheduler's trigger classes, datetimes, time zones and
plain values) and refuses anything else, so a row naming ``os.system`` is
listed as not importable instead of being run.
"""

from __future__ import annotations

import io
import pickle
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from ..exceptions import MetronomeError

__all__ = ["NotImportable", "load_job_state"]


class NotImportable(MetronomeError):
    """A legacy job cannot be imported; the message says why, for the report."""


# --- reading pickle, narrowly ------------------------------------------------------

#: Globals an APScheduler 3 job state may name, besides the classes defined in
#: ``apscheduler.triggers.*``: datetimes, time zones (zoneinfo; pytz, which
#: APScheduler used before 3.9) and a few plain value types.
_ALLOWED_GLOBALS = {
    ("datetime", "datetime"): datetime,
    ("datetime", "date"): date,
    ("datetime", "time"): time,
    ("datetime", "timedelta"): timedelta,
    ("datetime", "timezone"): timezone,
    ("zoneinfo", "ZoneInfo"): ZoneInfo,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}
#: Looked up only when named (pytz may not be installed; nothing else is imported).
_ALLOWED_LAZY = {
    ("pytz", "_p"),
    ("pytz", "_UTC"),
    ("decimal", "Decimal"),
    ("uuid", "UUID"),
    ("collections", "OrderedDict"),
}


def _zoneinfo_getattr(obj: Any, name: str) -> Any:
    """
    The only ``getattr`` a job state needs: ZoneInfo pickles as
    ``getattr(ZoneInfo, "_unpickle")(key, ...)``. A general ``getattr`` would
    let a crafted pickle walk from any allowed object to any other.
    """
    if obj is ZoneInfo and name == "_unpickle":
        return ZoneInfo._unpickle  # type: ignore[attr-defined]
    raise pickle.UnpicklingError(
        f"its pickled state asks for the attribute {name!r} of {obj!r}, which the import "
        "does not allow"
    )


class _JobStateUnpickler(pickle.Unpickler):
    """An unpickler that loads only what an APScheduler job state is made of."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[module, name]
        if (module, name) == ("builtins", "getattr"):
            return _zoneinfo_getattr
        if (module, name) in _ALLOWED_LAZY:
            return super().find_class(module, name)
        if module.startswith("apscheduler.triggers.") or module == "apscheduler.triggers":
            if "." not in name:
                obj = super().find_class(module, name)
                # A class defined there (triggers, cron fields and expressions), not
                # something that module happens to import.
                if isinstance(obj, type) and obj.__module__ == module:
                    return obj
        raise pickle.UnpicklingError(
            f"its pickled state refers to {module}.{name}, which the import does not load: "
            "it unpickles only APScheduler's triggers, datetimes, time zones and plain "
            "values (a job whose arguments are objects could not be stored as JSON anyway)"
        )


def load_job_state(data: bytes) -> dict[str, Any]:
    """Unpickle one django-apscheduler ``job_state``; raise NotImportable with the reason."""
    try:
        state = _JobStateUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if text.startswith("its "):
            raise NotImportable(text) from None
        raise NotImportable(f"its pickled state cannot be read: {text}") from None
    except Exception as exc:
        raise NotImportable(
            f"its pickled state cannot be read: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(state, dict) or not isinstance(state.get("func"), str):
        raise NotImportable("its pickled state is not an APScheduler job state")
    if state.get("version", 1) != 1:
        raise NotImportable(
            f"its pickled state has version {state.get('version')!r}; APScheduler 3 writes "
            "version 1"
        )
    return state


def without_job_prefix(message: str, job_id: str) -> str:
    """``Job 'x': args[0] is ...`` reads ``args[0] is ...`` in a report listed by job."""
    prefix = f"Job {job_id!r}: "
    return message[len(prefix) :] if message.startswith(prefix) else message
