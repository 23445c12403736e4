"""
Indexes for the admin and the dashboard at a million jobs and runs.

* ``metronome_job_name_idx``: the job list's search by the beginning of a name
  (on PostgreSQL in ``varchar_pattern_ops``, the operator class that serves
  ``LIKE 'text%'`` whatever the database's collation; elsewhere a plain index).
* ``metronome_exec_time_idx`` (run time, id) replaces the run time alone: the
  ledger newest first and its pages are read from the index without the table.
* ``metronome_exec_status_idx`` (status, run time): the dashboard's counts of
  a status in a time window, its failures, the oldest pending run-now request.

The new index on the run time is built before the old one goes, so no query
is ever left without one. Only indexes change: on SQLite no table is rebuilt
(which would drop the change marker's triggers).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_metronome", "0003_change_marker"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="djangojob",
            index=models.Index(
                fields=["name"], name="metronome_job_name_idx", opclasses=["varchar_pattern_ops"]
            ),
        ),
        migrations.AddIndex(
            model_name="djangojobexecution",
            index=models.Index(fields=["run_time", "id"], name="metronome_exec_time_idx"),
        ),
        migrations.AddIndex(
            model_name="djangojobexecution",
            index=models.Index(fields=["status", "run_time"], name="metronome_exec_status_idx"),
        ),
        migrations.RemoveIndex(
            model_name="djangojobexecution",
            name="metronome_exec_run_time_idx",
        ),
    ]
