"""
Small helpers shared by the store, the event recorder and user code.

``close_old_connections`` is public API (it has the meaning it had in
django-apscheduler): wrap a job that touches the database with it, so the job
never runs on a connection the server has already dropped.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, overload
from zoneinfo import ZoneInfo

from asgiref.sync import sync_to_async
from django import db
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models, router, transaction
from django.db.models import Field

from ..time.clock import clock

logger = logging.getLogger("django_metronome")

P = ParamSpec("P")
R = TypeVar("R")


def close_old_connections(func: Callable[P, R]) -> Callable[P, R]:
    """
    Close stale database connections before and after ``func`` runs.

    Django does this around every HTTP request; a job thread has no request, so
    without it a job may run on a connection the server closed hours ago
    ("MySQL server has gone away", "server closed the connection").
    """
    if inspect.iscoroutinefunction(func):
        # A coroutine reaches the database through sync_to_async, in the thread
        # Django keeps for that: tidy the connections of that thread.
        close_in_sync_thread = sync_to_async(db.close_old_connections)

        @functools.wraps(func)
        async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            await close_in_sync_thread()
            try:
                return await func(*args, **kwargs)
            finally:
                await close_in_sync_thread()

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        db.close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            db.close_old_connections()

    return wrapper


def retry_on_lost_connection(
    using: Callable[[Any], str] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """
    Retry a database operation once on a fresh connection when the first try fails.

    Only decorate operations that are safe to run twice. Inside an ``atomic()``
    block nothing is retried: the transaction is the caller's, and a new
    connection would silently drop the work done so far.

    ``using`` maps the call's first argument (the store) to a database alias.
    """

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            alias = using(args[0]) if using and args else DEFAULT_DB_ALIAS
            try:
                return func(*args, **kwargs)
            except (db.OperationalError, db.InterfaceError) as exc:
                connection = connections[alias]
                if connection.in_atomic_block:
                    raise
                logger.warning(
                    "Database error in %s (%s); retrying once on a new connection.",
                    func.__qualname__,
                    exc,
                )
                close_connection(alias)
                return func(*args, **kwargs)

        return wrapper

    return decorator


def close_connection(alias: str = DEFAULT_DB_ALIAS) -> None:
    """Close this thread's connection to ``alias``, ignoring errors from a dead socket."""
    try:
        connections[alias].close()
    except db.Error:
        # The socket is already gone; Django has forgotten the connection anyway.
        connections[alias].connection = None


def node_identity() -> str:
    """A name for this process that is unique across machines: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


# --- datetimes at the database boundary ------------------------------------


@overload
def to_db(value: datetime) -> datetime: ...
@overload
def to_db(value: None) -> None: ...
def to_db(value: datetime | None) -> datetime | None:
    """
    Convert an aware datetime to what Django stores.

    With ``USE_TZ=True`` that is the same instant in UTC. With ``USE_TZ=False``
    Django stores naive wall times in ``TIME_ZONE``; an instant in a repeated
    hour then has two readings, which is the documented cost of that setting.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"Expected an aware datetime, got naive {value!r}.")
    if settings.USE_TZ:
        return value.astimezone(UTC)
    return value.astimezone(ZoneInfo(settings.TIME_ZONE)).replace(tzinfo=None)


@overload
def from_db(value: datetime) -> datetime: ...
@overload
def from_db(value: None) -> None: ...
def from_db(value: datetime | None) -> datetime | None:
    """Convert a datetime read from Django to an aware UTC datetime."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(settings.TIME_ZONE))
    return value.astimezone(UTC)


def utcnow() -> datetime:
    """
    The current instant, aware, in UTC: by the database's clock in a scheduler
    process that has measured it (see :mod:`django_metronome.clock`), else this
    process's own.
    """
    return clock.now()


# --- transactions ----------------------------------------------------------------


@contextmanager
def write_transaction(using: str) -> Iterator[None]:
    """
    ``atomic()`` that holds the write lock from its first statement.

    SQLite has no row locks: a plain ``BEGIN`` takes the write lock only at the
    first write, and two processes that both read first then deadlock, one of
    them failing at once with "database is locked". ``BEGIN IMMEDIATE``
    serialises claims instead, each waiting its turn.
    """
    connection: Any = connections[using]  # transaction_mode is SQLite's (Django 5.1+)
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        with transaction.atomic(using=using):
            yield
        return
    connection.ensure_connection()
    previous = connection.transaction_mode
    connection.transaction_mode = "IMMEDIATE"
    try:
        with transaction.atomic(using=using):
            connection.transaction_mode = previous
            yield
    finally:
        connection.transaction_mode = previous


def column_adapter(connection: Any, field: Field[Any, Any]) -> Callable[[Any], Any] | None:
    """
    What a column's values need before they go to the driver; None for nothing.

    ``get_db_prep_save`` for every value of a few hundred rows costs more than
    the insert: the ledger's columns are str, int, bool, datetime and duration,
    and only the last two need work. A datetime is made naive in the
    connection's zone (what Django stores), then adapted by the backend.
    """
    if isinstance(field, models.DateTimeField):
        if settings.USE_TZ:
            zone = connection.timezone
        else:
            zone = ZoneInfo(settings.TIME_ZONE)
        if connection.vendor == "sqlite":
            # What Django's SQLite backend stores for a naive datetime: its str().
            return lambda value: str(value.astimezone(zone).replace(tzinfo=None))
        adapt = connection.ops.adapt_datetimefield_value
        return lambda value: adapt(value.astimezone(zone).replace(tzinfo=None))
    if isinstance(field, models.DurationField):
        return lambda value: field.get_db_prep_value(value, connection)
    return None


# --- the database --------------------------------------------------------------------


def database_alias(explicit: str | None = None) -> str:
    """
    The alias of the database that holds the job tables: the one place that decides.

    ``explicit`` (a store's own) wins; then ``METRONOME["DATABASE"]``; then
    whatever Django's routers choose for writes to the jobs table.
    """
    from ..conf import conf
    from .models import DjangoJob

    return explicit or conf.DATABASE or router.db_for_write(DjangoJob)
