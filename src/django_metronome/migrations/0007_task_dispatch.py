"""
Issue 14: fires of ``django.tasks`` jobs are enqueued, and the ledger says where.

Four nullable columns without defaults (``ALTER TABLE ... ADD COLUMN`` on every
database: SQLite's table is not rebuilt, so migration 0003's change-marker
triggers stay) and the ``enqueued`` status (choices only: no SQL).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("django_metronome", "0006_observability")]

    operations = [
        migrations.AddField(
            model_name="djangojobexecution",
            name="task_backend",
            field=models.CharField(
                blank=True, max_length=64, null=True, verbose_name="task backend"
            ),
        ),
        migrations.AddField(
            model_name="djangojobexecution",
            name="task_queue",
            field=models.CharField(blank=True, max_length=64, null=True, verbose_name="task queue"),
        ),
        migrations.AddField(
            model_name="djangojobexecution",
            name="task_result_id",
            field=models.CharField(
                blank=True, db_index=True, max_length=255, null=True, verbose_name="task result id"
            ),
        ),
        migrations.AddField(
            model_name="djangojobexecution",
            name="task_worker",
            field=models.CharField(
                blank=True, max_length=255, null=True, verbose_name="task worker"
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
                    ("enqueued", "enqueued"),
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
    ]
