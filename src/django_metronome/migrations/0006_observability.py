"""Reserved for issue 16 (metrics, health, incidents): filled in by that work, kept empty until it needs a change."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("django_metronome", "0005_fewer_ledger_indexes")]

    operations: list = []
