"""
The change marker, and the triggers that announce changes of what is due.

Any writer is covered, the admin, a web request's ``add_job``, raw SQL or a
hand edit in a database shell, because the database itself announces the
change: on PostgreSQL a trigger sends ``NOTIFY django_metronome``, which
listening schedulers act on at once; on SQLite and MariaDB/MySQL a trigger
adds one to the change marker's counter, which idle schedulers poll. What
counts as a change: a job added; a job paused, removed, resumed, moved earlier,
released from quarantine; a "run now" request or a handed-back fire waiting in
the ledger. A claim moving a job later, or ending it, announces nothing: a
scheduler's own claims do not wake the others.

Where a trigger cannot be created (MySQL with binary logging and no SUPER
privilege), the migration says so and goes on: the schedulers then see
changes at their rescan (``RESCAN_INTERVAL``).
"""

import logging

from django.db import DatabaseError, migrations, models

logger = logging.getLogger("django_metronome.migrations")

#: The channel of the notifications (django_metronome.store.changes.CHANNEL).
CHANNEL = "django_metronome"

#: A job row that may now be due earlier than before, or that was paused.
JOB_UPDATED = (
    "(NEW.next_run_time IS NOT NULL AND NEW.ended_at IS NULL AND NEW.quarantined_at IS NULL"
    " AND (OLD.next_run_time IS NULL OR NEW.next_run_time < OLD.next_run_time"
    " OR OLD.ended_at IS NOT NULL OR OLD.quarantined_at IS NOT NULL"
    " OR NEW.source <> OLD.source))"
    " OR (NEW.next_run_time IS NULL AND OLD.next_run_time IS NOT NULL AND NEW.ended_at IS NULL)"
)
#: A scheduled job removed (not the row of an ended job, deleted after its last fire).
JOB_DELETED = "OLD.ended_at IS NULL AND OLD.next_run_time IS NOT NULL"
#: A fire waiting for any process: "run now", or handed back.
FIRE_INSERTED = "NEW.status = 'pending'"
FIRE_UPDATED = "NEW.status = 'pending' AND OLD.status <> 'pending'"


def _triggers(jobs, ledger):
    """(name, event, table, condition or None) of every trigger."""
    return [
        ("django_metronome_job_added", "INSERT", jobs, None),
        ("django_metronome_job_changed", "UPDATE", jobs, JOB_UPDATED),
        ("django_metronome_job_removed", "DELETE", jobs, JOB_DELETED),
        ("django_metronome_fire_requested", "INSERT", ledger, FIRE_INSERTED),
        ("django_metronome_fire_handed_back", "UPDATE", ledger, FIRE_UPDATED),
    ]


def _tables(apps, schema_editor):
    quote = schema_editor.quote_name
    return [
        quote(apps.get_model("django_metronome", name)._meta.db_table)
        for name in ("DjangoJob", "DjangoJobExecution", "ChangeMarker")
    ]


def _postgresql(schema_editor, jobs, ledger):
    schema_editor.execute(
        "CREATE OR REPLACE FUNCTION django_metronome_notify() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$"
    )
    for name, event, table, condition in _triggers(jobs, ledger):
        if condition is None:
            # One notification per statement: a bulk insert sends one, not thousands.
            level = "FOR EACH STATEMENT"
        else:
            level = f"FOR EACH ROW WHEN ({condition})"
        schema_editor.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} {level} "
            "EXECUTE FUNCTION django_metronome_notify()"
        )


def _sqlite(schema_editor, jobs, ledger, marker):
    bump = (
        f"INSERT INTO {marker} (id, version) VALUES (1, 1) "
        "ON CONFLICT (id) DO UPDATE SET version = version + 1"
    )
    for name, event, table, condition in _triggers(jobs, ledger):
        when = "" if condition is None else f" WHEN {condition}"
        schema_editor.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW{when} BEGIN {bump}; END"
        )


def _mysql(schema_editor, jobs, ledger, marker):
    bump = (
        f"INSERT INTO {marker} (id, version) VALUES (1, 1) "
        "ON DUPLICATE KEY UPDATE version = version + 1"
    )
    for name, event, table, condition in _triggers(jobs, ledger):
        body = f"{bump};" if condition is None else f"IF {condition} THEN {bump}; END IF;"
        schema_editor.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW BEGIN {body} END"
        )


def install(apps, schema_editor):
    connection = schema_editor.connection
    marker_model = apps.get_model("django_metronome", "ChangeMarker")
    marker_model.objects.using(connection.alias).get_or_create(id=1)
    jobs, ledger, marker = _tables(apps, schema_editor)
    if connection.vendor == "postgresql":
        _postgresql(schema_editor, jobs, ledger)
    elif connection.vendor == "sqlite":
        _sqlite(schema_editor, jobs, ledger, marker)
    elif connection.vendor == "mysql":
        try:
            _mysql(schema_editor, jobs, ledger, marker)
        except DatabaseError as exc:
            logger.warning(
                "django-metronome could not create its triggers (%s): the schedulers will "
                "see changes made by other processes at their rescan only (RESCAN_INTERVAL). "
                "Grant the TRIGGER privilege (with binary logging, set "
                "log_bin_trust_function_creators) and migrate again from 0002.",
                exc,
            )
            try:
                uninstall(apps, schema_editor)
            except DatabaseError:
                logger.warning("Could not drop the triggers created before the error.")


def uninstall(apps, schema_editor):
    connection = schema_editor.connection
    jobs, ledger, _ = _tables(apps, schema_editor)
    for name, _event, table, _condition in _triggers(jobs, ledger):
        if connection.vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        elif connection.vendor in ("sqlite", "mysql"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
    if connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS django_metronome_notify()")


class Migration(migrations.Migration):
    dependencies = [
        ("django_metronome", "0002_claimed_fires_clock_and_ended_jobs"),
    ]

    operations = [
        migrations.CreateModel(
            name="ChangeMarker",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("version", models.BigIntegerField(default=0, verbose_name="version")),
            ],
            options={
                "verbose_name": "change marker",
                "verbose_name_plural": "change markers",
                "default_permissions": (),
            },
        ),
        # Not atomic: MySQL cannot roll DDL back, and Django refuses it inside a transaction.
        migrations.RunPython(install, uninstall, atomic=False),
    ]
