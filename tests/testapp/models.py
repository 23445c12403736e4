from django.db import models


class FireRecord(models.Model):
    """A row a test job writes each time it runs: the side effect tests count."""

    job_id = models.CharField(max_length=255)
    run_time = models.DateTimeField()
    pid = models.PositiveIntegerField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "testapp"
