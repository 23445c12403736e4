"""
Issue 15, first part: the ledger keeps a jittered fire's nominal time, and marks backfilled fires.

Two nullable columns without defaults (``ALTER TABLE ... ADD COLUMN`` on every
database: SQLite's table is not rebuilt, so migration 0003's change-marker
triggers stay). Jitter, business days and limited runs live in the job's
versioned JSON state and need no column.
"""

import django_metronome.store.models.fields
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("django_metronome", "0007_task_dispatch")]

    operations = [
        migrations.AddField(
            model_name="djangojobexecution",
            name="nominal_time",
            field=django_metronome.store.models.fields.AwareDateTimeField(
                blank=True,
                help_text=(
                    "The schedule's own time of a jittered fire (docs/schedules.md); empty "
                    "when it is the scheduled run time."
                ),
                null=True,
                verbose_name="nominal run time",
            ),
        ),
        migrations.AddField(
            model_name="djangojobexecution",
            name="backfilled",
            field=models.BooleanField(
                blank=True,
                help_text="Run by a backfill of a past range of the schedule; empty when not.",
                null=True,
                verbose_name="backfilled",
            ),
        ),
    ]
