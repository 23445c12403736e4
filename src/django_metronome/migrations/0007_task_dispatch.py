"""Reserved for issue 14 (fires into django.tasks): filled in by that work, kept empty until it needs a change."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("django_metronome", "0006_observability")]

    operations: list = []
