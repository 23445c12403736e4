"""Issue 16: expectations of jobs, their incidents, and the watch's turn."""

from django.db import migrations, models

import django_metronome.store.models.fields


class Migration(migrations.Migration):
    dependencies = [("django_metronome", "0005_fewer_ledger_indexes")]

    operations = [
        migrations.CreateModel(
            name="Expectation",
            fields=[
                (
                    "job_id",
                    django_metronome.store.models.fields.JobIdField(
                        max_length=255, primary_key=True, serialize=False, verbose_name="job id"
                    ),
                ),
                (
                    "every",
                    models.FloatField(
                        blank=True,
                        help_text="Seconds within which a successful run is expected (empty: not checked).",
                        null=True,
                        verbose_name="succeeds at least every",
                    ),
                ),
                (
                    "max_failures",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Failed fires in a row allowed before an incident opens (empty: not checked).",
                        null=True,
                        verbose_name="most failures in a row",
                    ),
                ),
                (
                    "since",
                    django_metronome.store.models.fields.AwareDateTimeField(
                        help_text="When the expectation was set: the first deadline counts from here.",
                        verbose_name="expected since",
                    ),
                ),
            ],
            options={"verbose_name": "expectation", "verbose_name_plural": "expectations"},
        ),
        migrations.CreateModel(
            name="WatchTurn",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                (
                    "evaluated_at",
                    django_metronome.store.models.fields.AwareDateTimeField(
                        verbose_name="evaluated at"
                    ),
                ),
                (
                    "evaluated_by",
                    models.CharField(blank=True, max_length=255, verbose_name="evaluated by"),
                ),
            ],
            options={
                "verbose_name": "watch turn",
                "verbose_name_plural": "watch turns",
                "default_permissions": (),
            },
        ),
        migrations.CreateModel(
            name="Incident",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "job_id",
                    django_metronome.store.models.fields.JobIdField(
                        blank=True, max_length=255, verbose_name="job id"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("overdue", "no recent success"),
                            ("failing", "failing"),
                            ("no_scheduler", "no scheduler alive"),
                        ],
                        max_length=20,
                        verbose_name="kind",
                    ),
                ),
                ("is_open", models.BooleanField(default=True, null=True, verbose_name="open")),
                (
                    "opened_at",
                    django_metronome.store.models.fields.AwareDateTimeField(
                        verbose_name="opened at"
                    ),
                ),
                (
                    "resolved_at",
                    django_metronome.store.models.fields.AwareDateTimeField(
                        blank=True, null=True, verbose_name="resolved at"
                    ),
                ),
                ("detail", models.TextField(blank=True, default="", verbose_name="detail")),
            ],
            options={
                "verbose_name": "incident",
                "verbose_name_plural": "incidents",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("job_id", "kind", "is_open"), name="metronome_incident_open_uniq"
                    )
                ],
            },
        ),
    ]
