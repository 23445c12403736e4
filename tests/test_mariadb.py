"""
What MariaDB (and MySQL) must give the scheduler, checked on the server the tests run on.

Skipped on other databases. The test command runs it on the MariaDB that
Debian installs (``METRONOME_DBS=mariadb scripts/test``).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core import checks
from django.db import DatabaseError, DataError, connection, transaction

from django_metronome.models import DjangoJob, DjangoJobExecution
from tests.testapp import jobs

pytestmark = pytest.mark.skipif(
    connection.vendor != "mysql", reason="MariaDB/MySQL only (METRONOME_TEST_DB=mariadb)"
)

T0 = datetime(2026, 11, 25, 8, 0, 0, 123456, tzinfo=UTC)

# The longest id, 255 characters of 4 bytes each: a key of 1020 bytes, which only
# InnoDB's DYNAMIC (the default since MariaDB 10.2) and COMPRESSED rows allow.
LONG_EMOJI_ID = "🎉🦄" * 127 + "🚀"


def scalar(sql: str, params: list | None = None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


# --- the server and the connection settings ---------------------------------


@pytest.mark.django_db
def test_server_supports_skip_locked():
    """The claim needs SKIP LOCKED: MariaDB 10.6+, MySQL 8.0.1+."""
    connection.ensure_connection()
    minimum = (10, 6) if connection.mysql_is_mariadb else (8, 0, 1)
    assert connection.mysql_version >= minimum, scalar("SELECT VERSION()")
    assert connection.features.has_select_for_update_skip_locked
    assert connection.features.has_select_for_update_nowait


@pytest.mark.django_db
def test_connection_uses_utf8mb4_read_committed_and_strict_mode():
    assert scalar("SELECT @@character_set_connection") == "utf8mb4"
    with connection.cursor() as cursor:
        # MariaDB < 11.1 names it tx_isolation; MySQL 8 and MariaDB 11.1+ transaction_isolation.
        try:
            cursor.execute("SELECT @@SESSION.transaction_isolation")
        except DatabaseError:
            cursor.execute("SELECT @@SESSION.tx_isolation")
        assert cursor.fetchone()[0] == "READ-COMMITTED"
    assert "STRICT_TRANS_TABLES" in connection.sql_mode
    # Django's own database checks (manage.py check --database default): no mysql.W002.
    messages = checks.run_checks(databases=[connection.alias])
    assert [m.id for m in messages if m.id.startswith("mysql.")] == []


@pytest.mark.django_db
def test_tables_are_utf8mb4_innodb_with_large_index_keys():
    tables = [model._meta.db_table for model in (DjangoJob, DjangoJobExecution)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_NAME, ENGINE, ROW_FORMAT, TABLE_COLLATION FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (%s, %s) ORDER BY TABLE_NAME",
            tables,
        )
        rows = cursor.fetchall()
    assert len(rows) == 2
    for name, engine, row_format, collation in rows:
        assert engine == "InnoDB", name
        # A 255-character utf8mb4 key is 1020 bytes: REDUNDANT and COMPACT rows stop at 767.
        assert row_format in ("Dynamic", "Compressed"), name
        assert collation.startswith("utf8mb4_"), name


@pytest.mark.django_db
def test_ledger_job_column_has_the_collation_of_the_job_id():
    """The ledger's job_id is compared with the job's id: one collation, or no index use."""
    columns = [
        (DjangoJob._meta.db_table, DjangoJob._meta.pk.column),
        (DjangoJobExecution._meta.db_table, DjangoJobExecution._meta.get_field("job").column),
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND ((TABLE_NAME = %s AND COLUMN_NAME = %s)"
            " OR (TABLE_NAME = %s AND COLUMN_NAME = %s))",
            [name for column in columns for name in column],
        )
        rows = cursor.fetchall()
    assert len(rows) == 2
    assert rows[0] == rows[1]
    assert rows[0][0] == "utf8mb4"


# --- what the store keeps ----------------------------------------------------


@pytest.mark.django_db
def test_longest_utf8mb4_job_id_round_trips(store, make_job):
    assert len(LONG_EMOJI_ID) == 255
    assert len(LONG_EMOJI_ID.encode()) == 255 * 4
    job = make_job(jobs.record, id=LONG_EMOJI_ID, kwargs={"note": "🦄 ünïcødé"}, name="⏰ job")
    store.add_job(job)

    found = store.lookup_job(LONG_EMOJI_ID)
    assert found.id == LONG_EMOJI_ID
    assert found.name == "⏰ job"
    assert found.kwargs == {"note": "🦄 ünïcødé"}
    assert [j.id for j in store.get_all_jobs()] == [LONG_EMOJI_ID]
    assert [j.id for j in store.get_due_jobs(job.next_run_time)] == [LONG_EMOJI_ID]

    # The ledger's unique (job_id, run_time) key takes the longest id too.
    assert DjangoJobExecution.objects.record_start(
        job_id=LONG_EMOJI_ID, run_time=T0, node="node-1", now=T0
    )
    assert not DjangoJobExecution.objects.record_start(
        job_id=LONG_EMOJI_ID, run_time=T0, node="node-2", now=T0
    )
    assert DjangoJobExecution.objects.get().job_id == LONG_EMOJI_ID

    store.remove_job(LONG_EMOJI_ID)
    assert store.lookup_job(LONG_EMOJI_ID) is None


@pytest.mark.django_db
def test_too_long_job_id_is_refused_not_truncated(store, make_job):
    """Strict mode: a 256-character id fails, rather than being cut to another job's id."""
    with pytest.raises((DataError, ValueError)):
        store.add_job(make_job(id="x" * 256))
    assert not DjangoJob.objects.exists()


@pytest.mark.django_db
def test_job_ids_differing_in_case_accents_or_trailing_spaces_are_different_jobs(store, make_job):
    """
    Ids are compared exactly, as APScheduler, PostgreSQL and SQLite compare them.

    Under the server's default collation (utf8mb4_general_ci, case- and
    accent-insensitive, PAD SPACE) these five ids would be two primary keys.
    """
    ids = ["Report", "rapport", "rappört", "report", "report "]
    for job_id in ids:
        store.add_job(make_job(id=job_id))
    assert sorted(j.id for j in store.get_all_jobs()) == ids
    assert store.lookup_job("REPORT") is None
    assert store.lookup_job("report").id == "report"
    assert store.lookup_job("report ").id == "report "


@pytest.mark.django_db
def test_datetimes_keep_microseconds(store, make_job):
    store.add_job(make_job(next_run_time=T0))
    assert store.lookup_job("téstïd").next_run_time == T0
    assert store.get_next_run_time() == T0
    assert [j.id for j in store.get_due_jobs(T0 - timedelta(microseconds=1))] == []
    assert [j.id for j in store.get_due_jobs(T0)] == ["téstïd"]

    # Two fires a microsecond apart are two ledger rows.
    later = T0 + timedelta(microseconds=1)
    for run_time in (T0, later):
        assert DjangoJobExecution.objects.record_start(
            job_id="téstïd", run_time=run_time, node="n", now=run_time
        )
    assert sorted(DjangoJobExecution.objects.values_list("run_time", flat=True)) == [T0, later]


# --- locks and connections -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_skip_locked_skips_a_row_another_connection_holds(store, make_job):
    for job_id in ("a", "b", "c"):
        store.add_job(make_job(id=job_id, next_run_time=T0))
    table = connection.ops.quote_name(DjangoJob._meta.db_table)

    other = connection.get_new_connection(connection.get_connection_params())
    try:
        other.autocommit(False)
        cursor = other.cursor()
        cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", ["b"])
        assert cursor.fetchall() == (("b",),)

        def due_ids(**lock):
            with transaction.atomic():
                query = DjangoJob.objects.filter(next_run_time__lte=T0).order_by(
                    "next_run_time", "id"
                )
                return list(query.select_for_update(**lock).values_list("id", flat=True))

        assert due_ids(skip_locked=True) == ["a", "c"]
        # The lock is real: without SKIP LOCKED the same query cannot have "b".
        with pytest.raises(DatabaseError):
            due_ids(nowait=True)

        other.rollback()
        assert due_ids(skip_locked=True) == ["a", "b", "c"]
    finally:
        other.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_store_survives_an_expired_wait_timeout(store, make_job, caplog):
    """ "MySQL server has gone away" after an idle night: the store reconnects once."""
    store.add_job(make_job(next_run_time=T0))
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION wait_timeout = 1")
    time.sleep(2.5)  # the server closes the idle connection

    with caplog.at_level(logging.WARNING, logger="django_metronome"):
        assert [j.id for j in store.get_all_jobs()] == ["téstïd"]
    assert any("retrying once on a new connection" in r.getMessage() for r in caplog.records)
