"""Reserved for issue 15, second part (overlap policies, pause notes, audit trail): filled in by that work, kept empty until it needs a change."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("django_metronome", "0008_schedule_policies")]

    operations: list = []
