"""Reserved for issue 17 (translatable verbose names and choices): filled in by that work, kept empty until it needs a change."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("django_metronome", "0009_overlap_and_audit")]

    operations: list = []
