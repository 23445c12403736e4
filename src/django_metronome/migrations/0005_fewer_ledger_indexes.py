"""
Fewer indexes on the ledger: each one is written at every fire's insert and,
for the status, at each of its two status changes (on PostgreSQL an update that
touches an indexed column writes a new entry in every index of the table).

* ``job`` (the foreign key's own index) and ``metronome_exec_job_recent_idx``
  (job, run time descending) go: the unique key (job, run time) answers the
  same lookups, in either order.
* ``status`` alone goes: ``metronome_exec_status_idx`` (status, run time)
  begins with it.

The fields' ``db_index`` changes only in Django's state; in the database the
two indexes are dropped by name, found by introspection. (Altering the fields
would make SQLite rebuild the table, and drop the change marker's triggers
with it.)
"""

import django.db.models.deletion
from django.db import migrations, models


def _single_column_indexes(schema_editor, model, column):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return [
        name
        for name, details in constraints.items()
        if details["index"]
        and not details["unique"]
        and not details["primary_key"]
        and details["columns"] == [column]
    ]


def drop_indexes(apps, schema_editor):
    model = apps.get_model("django_metronome", "DjangoJobExecution")
    for column in ("job_id", "status"):
        for name in _single_column_indexes(schema_editor, model, column):
            schema_editor.remove_index(model, models.Index(fields=[column], name=name))


def create_indexes(apps, schema_editor):
    model = apps.get_model("django_metronome", "DjangoJobExecution")
    for field_name in ("job", "status"):
        field = model._meta.get_field(field_name)
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


class Migration(migrations.Migration):
    dependencies = [
        ("django_metronome", "0004_scale_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="djangojobexecution",
            name="metronome_exec_job_recent_idx",
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="djangojobexecution",
                    name="job",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        help_text="The job's id; kept after the job is removed.",
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="executions",
                        to="django_metronome.djangojob",
                        verbose_name="job",
                    ),
                ),
                migrations.AlterField(
                    model_name="djangojobexecution",
                    name="status",
                    field=models.CharField(
                        choices=[
                            ("pending", "pending"),
                            ("claimed", "claimed"),
                            ("running", "running"),
                            ("succeeded", "succeeded"),
                            ("failed", "failed"),
                            ("missed", "missed"),
                            ("skipped", "skipped"),
                            ("interrupted", "interrupted"),
                        ],
                        max_length=16,
                        verbose_name="status",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, create_indexes)],
        ),
    ]
