"""Reserved for issue 15, first part (jitter, business days, limited runs, windows, backfill): filled in by that work, kept empty until it needs a change."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("django_metronome", "0007_task_dispatch")]

    operations: list = []
