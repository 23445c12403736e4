"""
What every benchmark needs from a database server, in one place: the Django
settings of a throwaway database on SQLite, PostgreSQL or MariaDB, creating and
dropping it (with the server's own client library, so a parent process can clean
up after a child that died), the base settings of a benchmark's Django, and the
source state a report names; and stopping the processes a run started.

Where the servers are comes from the usual environment variables: ``PGHOST``,
``PGPORT`` and ``PGUSER`` as for ``psql``; ``MYSQL_USER`` (default ``root``),
``MYSQL_PASSWORD``, ``MYSQL_HOST``/``MYSQL_PORT`` or ``MYSQL_UNIX_PORT`` (default
Debian's socket) for MariaDB.
"""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENDORS = ("sqlite", "postgres", "mariadb")

#: Warnings and errors (a dying scheduler thread, a lost ledger write) go to stderr,
#: which every benchmark keeps in a log file per run.
STDERR_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}


def mysql_params() -> dict[str, Any]:
    """How to reach MariaDB, as MySQLdb.connect() takes it."""
    params: dict[str, Any] = {"user": os.environ.get("MYSQL_USER", "root")}
    if os.environ.get("MYSQL_PASSWORD"):
        params["password"] = os.environ["MYSQL_PASSWORD"]
    if os.environ.get("MYSQL_HOST"):
        params["host"] = os.environ["MYSQL_HOST"]
        params["port"] = int(os.environ.get("MYSQL_PORT", "3306"))
    else:
        params["unix_socket"] = os.environ.get("MYSQL_UNIX_PORT", "/run/mysqld/mysqld.sock")
    return params


def database_settings(
    db: str, name: str, sqlite_path: str | os.PathLike[str] = ""
) -> dict[str, Any]:
    """Django's DATABASES entry for the throwaway database ``name`` (a file for SQLite)."""
    if db == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(sqlite_path)}
    if db == "postgres":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": os.environ.get("PGUSER", getpass.getuser()),
            "HOST": os.environ.get("PGHOST", ""),
            "PORT": os.environ.get("PGPORT", ""),
        }
    if db == "mariadb":
        params = mysql_params()
        options: dict[str, Any] = {"charset": "utf8mb4", "isolation_level": "read committed"}
        if "unix_socket" in params:
            options["unix_socket"] = params["unix_socket"]
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": name,
            "USER": params["user"],
            "PASSWORD": params.get("password", ""),
            "HOST": params.get("host", "localhost"),
            "PORT": str(params.get("port", "")),
            "OPTIONS": options,
        }
    raise ValueError(f"Unknown database {db!r}: use one of {', '.join(VENDORS)}.")


def pg_connect(dbname: str = "postgres", patience: float = 60.0) -> Any:
    """An autocommit administration connection, waiting out a server that is restarting."""
    import psycopg

    deadline = time.monotonic() + patience
    while True:
        try:
            return psycopg.connect(dbname=dbname, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def server_sql(db: str, *statements: str) -> None:
    """Run administrative statements on the server of ``db`` (outside the benchmark's database)."""
    if db == "postgres":
        with pg_connect() as conn:
            for sql in statements:
                conn.execute(sql)
    elif db == "mariadb":
        import MySQLdb

        conn = MySQLdb.connect(**mysql_params())
        try:
            cursor = conn.cursor()
            for sql in statements:
                cursor.execute(sql)
        finally:
            conn.close()


def drop_database(db: str, name: str, sqlite_path: str | os.PathLike[str] = "") -> None:
    if db == "sqlite":
        if sqlite_path:
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)
    elif db == "postgres":
        server_sql(db, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    elif db == "mariadb":
        server_sql(db, f"DROP DATABASE IF EXISTS `{name}`")


def fresh_database(db: str, name: str, sqlite_path: str | os.PathLike[str] = "") -> None:
    """Drop the throwaway database and create it empty (SQLite: remove the file)."""
    drop_database(db, name, sqlite_path)
    if db == "postgres":
        server_sql(db, f'CREATE DATABASE "{name}"')
    elif db == "mariadb":
        server_sql(db, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")


def configure_django(database: dict[str, Any], **overrides: Any) -> None:
    """Django with its defaults, the package installed and ``database`` as default; set up."""
    import django
    from django.conf import settings

    values: dict[str, Any] = {
        "SECRET_KEY": "benchmark-only-not-secret",
        "DEBUG": False,
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "INSTALLED_APPS": ["django_metronome"],
        "LOGGING": STDERR_LOGGING,
    }
    values.update(overrides)
    values["DATABASES"] = {"default": database}
    settings.configure(**values)
    django.setup()


def git(*argv: str) -> str:
    """Git's answer in the repository, or "" where there is no git or no repository."""
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), *argv], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def source_state() -> str:
    """The commit measured, and whether the package had uncommitted changes."""
    commit = git("rev-parse", "--short", "HEAD") or "no commit yet"
    dirty = git("status", "--porcelain", "--", "src")
    return f"{commit} + uncommitted changes in src/" if dirty else commit


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def stop_processes(procs: list[subprocess.Popen[Any]], patience: float = 30.0) -> None:
    """SIGTERM to every process still running, then wait; kill what outlives ``patience``."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(patience)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
