"""
Issue 15, second part: who paused a job, when and why; the audit trail of job changes.

The three job columns are nullable without defaults, so SQLite adds them with
ALTER TABLE (no table rebuild: the change-marker triggers of 0003 stay). The
overlap policy needs no column: it lives in the job's versioned JSON state.
"""

import django_metronome.models
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("django_metronome", "0008_schedule_policies")]

    operations = [
        migrations.AddField(
            model_name="djangojob",
            name="pause_note",
            field=models.TextField(
                blank=True,
                help_text="Why the job is paused.",
                null=True,
                verbose_name="pause note",
            ),
        ),
        migrations.AddField(
            model_name="djangojob",
            name="paused_at",
            field=django_metronome.models.AwareDateTimeField(
                blank=True, null=True, verbose_name="paused at"
            ),
        ),
        migrations.AddField(
            model_name="djangojob",
            name="paused_by",
            field=models.CharField(blank=True, max_length=255, null=True, verbose_name="paused by"),
        ),
        migrations.CreateModel(
            name="JobChange",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("job_id", models.CharField(max_length=255, verbose_name="job id")),
                (
                    "job_name",
                    models.CharField(
                        blank=True, default="", max_length=255, verbose_name="job name"
                    ),
                ),
                ("at", django_metronome.models.AwareDateTimeField(verbose_name="when")),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("declared", "declared in code"),
                            ("added", "added"),
                            ("modified", "modified"),
                            ("paused", "paused"),
                            ("resumed", "resumed"),
                            ("run_now", "run now"),
                            ("backfilled", "backfilled"),
                            ("removed", "removed"),
                            ("quarantined", "quarantined"),
                        ],
                        max_length=16,
                        verbose_name="action",
                    ),
                ),
                (
                    "origin",
                    models.CharField(
                        choices=[
                            ("admin", "admin"),
                            ("cli", "command line"),
                            ("api", "API"),
                            ("code", "code"),
                            ("scheduler", "scheduler"),
                            ("database", "database edit"),
                        ],
                        max_length=16,
                        verbose_name="from",
                    ),
                ),
                (
                    "actor",
                    models.CharField(
                        blank=True,
                        default="",
                        help_text=(
                            "The admin user, the command line's OS user, or the scheduler "
                            "process."
                        ),
                        max_length=255,
                        verbose_name="who",
                    ),
                ),
                ("before", models.JSONField(blank=True, null=True, verbose_name="before")),
                ("after", models.JSONField(blank=True, null=True, verbose_name="after")),
                ("note", models.TextField(blank=True, default="", verbose_name="note")),
            ],
            options={
                "verbose_name": "job change",
                "verbose_name_plural": "job changes",
                "default_permissions": ("view",),
                "indexes": [
                    models.Index(fields=["job_id", "at"], name="metronome_change_job_idx"),
                    models.Index(fields=["at", "id"], name="metronome_change_time_idx"),
                ],
            },
        ),
    ]
