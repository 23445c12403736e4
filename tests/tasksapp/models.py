"""What the test tasks leave behind: one row per run, keyed by the fire's idempotency key."""

from django.db import models


class TaskRun(models.Model):
    key = models.CharField(max_length=255)
    label = models.CharField(max_length=100, default="")
    created = models.DateTimeField(auto_now_add=True)
