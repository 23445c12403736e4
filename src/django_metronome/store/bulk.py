"""
The ledger's batch SQL: a few hundred fires in one statement.

Django's ``bulk_create`` builds a model instance per row and ``bulk_update``
a ``CASE`` per column and row, which cost more than the fires themselves. So
the claim inserts its rows with one multi-row ``INSERT ... RETURNING`` (on
PostgreSQL, ``SELECT * FROM unnest(...)``: a whole batch as a handful of array
parameters), and outcomes are written with one ``UPDATE ... FROM unnest`` on
PostgreSQL, an ``executemany`` elsewhere. Only names and types from the
model's own metadata are formatted into the SQL; values are parameters.
:mod:`.ledger` decides what to write; this module only writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from django.db import connections
from django.db.models import Field

from .db import column_adapter, from_db, to_db
from .models import DjangoJobExecution, ExecutionStatus

INSERT_COLUMNS = (
    "job_id",
    "job_name",
    "run_time",
    "status",
    "node",
    "claimed_at",
    "finished_at",
    "lateness",
    "reason",
    "exception",
    "traceback",
    "manual",
)

#: Columns written only when a row of the batch has a value for them (most have none):
#: a jittered fire's nominal time, a backfilled fire's mark.
OPTIONAL_INSERT_COLUMNS = ("nominal_time", "backfilled")


#: The statuses an outcome may overwrite: its own fire's, or a presumption of its death.
OUTCOME_TARGETS = (
    ExecutionStatus.CLAIMED.value,
    ExecutionStatus.RUNNING.value,
    ExecutionStatus.INTERRUPTED.value,
)


def insert_rows(using: str, entries: list[dict[str, Any]]) -> list[int]:
    connection = connections[using]
    meta = DjangoJobExecution._meta
    fields = fields_named(_insert_columns(entries))
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        return _insert_rows_unnest(connection, fields, entries)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    # Only names from the model's own metadata are formatted in; values are parameters.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(str(field.column)) for field in fields)}) "
        f"VALUES {', '.join([row] * len(entries))}"
    )
    adapters = [(field.attname, column_adapter(connection, field)) for field in fields]
    params = [
        value if adapt is None or value is None else adapt(value)
        for entry in entries
        for name, adapt in adapters
        for value in (entry.get(name),)
    ]
    returning = connection.features.can_return_rows_from_bulk_insert
    if returning:
        sql += f" RETURNING {quote(pk_column())}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if returning:
            return [pk for (pk,) in cursor.fetchall()]
    # Servers that cannot return the ids of an insert (MySQL): read them back.
    ledger = DjangoJobExecution.objects.using(using)
    keys = {(e["job_id"], e["run_time"]) for e in entries}
    found = {
        (job_id, from_db(run_time)): pk
        for pk, job_id, run_time in ledger.filter(
            job_id__in={key[0] for key in keys}, run_time__in={to_db(key[1]) for key in keys}
        ).values_list("pk", "job_id", "run_time")
    }
    return [found[(e["job_id"], e["run_time"])] for e in entries]


def _insert_columns(entries: list[dict[str, Any]]) -> tuple[str, ...]:
    """The columns of a batch: the usual ones, and the optional ones some row fills."""
    extra = tuple(
        name
        for name in OPTIONAL_INSERT_COLUMNS
        if any(entry.get(name) is not None for entry in entries)
    )
    return INSERT_COLUMNS + extra


def _columns(connection: Any, fields: list[Any], rows: list[list[Any]]) -> list[list[Any]]:
    """
    Values for PostgreSQL, one list per column (each goes as one array).

    psycopg adapts str, int, datetime and timedelta itself, which is what
    Django's preparation of these fields amounts to on PostgreSQL.
    """
    return [[_db_time(row[i]) for row in rows] for i in range(len(fields))]


def _unnest(connection: Any, fields: list[Any]) -> str:
    """``unnest(%s::type[], ...)``: a whole batch as a handful of array parameters."""
    return "unnest(" + ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields) + ")"


def _insert_rows_unnest(
    connection: Any, fields: list[Any], entries: list[dict[str, Any]]
) -> list[int]:
    meta = DjangoJobExecution._meta
    quote = connection.ops.quote_name
    rows = [[entry.get(field.attname) for field in fields] for entry in entries]
    # Only names and types from the model's own metadata are formatted in.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(str(field.column)) for field in fields)}) "
        f"SELECT * FROM {_unnest(connection, fields)} RETURNING {quote(pk_column())}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, _columns(connection, fields, rows))
        return [pk for (pk,) in cursor.fetchall()]


def update_rows(using: str, columns: list[str], rows: list[tuple[Any, ...]]) -> int:
    """
    ``UPDATE ledger SET columns = ... WHERE id = ... AND status IN (running, interrupted)``
    for each row, as one executemany: Django's bulk_update builds a CASE per
    column and row, which costs more than the rest of a fire's life together.
    """
    if not rows:
        return 0
    connection = connections[using]
    meta = DjangoJobExecution._meta
    fields = fields_named(columns)
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        table, pk = quote(meta.db_table), quote(pk_column())
        names = [quote(str(field.column)) for field in fields]
        # Only names and types from the model's own metadata are formatted in.
        sql = (
            f"UPDATE {table} SET "  # noqa: S608
            + ", ".join(f"{name} = v.{name}" for name in names)
            + f" FROM {_unnest(connection, [*fields, meta.pk])} AS v({', '.join(names)}, {pk})"
            + f" WHERE {table}.{pk} = v.{pk} AND {table}.{quote('status')} IN (%s, %s, %s)"
        )
        params: list[Any] = [
            *_columns(connection, [*fields, meta.pk], [list(row) for row in rows]),
            *OUTCOME_TARGETS,
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return max(cursor.rowcount, 0)
    # Only names from the model's own metadata are formatted in; values are parameters.
    sql = (
        f"UPDATE {quote(meta.db_table)} SET "  # noqa: S608
        + ", ".join(f"{quote(str(field.column))} = %s" for field in fields)
        + f" WHERE {quote(pk_column())} = %s AND {quote('status')} IN (%s, %s, %s)"
    )
    adapters = [column_adapter(connection, field) for field in fields]
    params = [
        [
            *(
                value if adapt is None or value is None else adapt(value)
                for adapt, value in zip(adapters, row[:-1], strict=True)
            ),
            row[-1],
            *OUTCOME_TARGETS,
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        return max(cursor.rowcount, 0)


def fields_named(names: Sequence[str]) -> list[Field[Any, Any]]:
    """The ledger's concrete fields of these names (all of them are)."""
    return [cast(Field, DjangoJobExecution._meta.get_field(name)) for name in names]


def pk_column() -> str:
    return str(DjangoJobExecution._meta.pk.column)  # type: ignore[union-attr]


def _db_time(value: Any) -> Any:
    return to_db(value) if isinstance(value, datetime) else value


# --- asked for by hand, and recorded from APScheduler's events ------------------------------
