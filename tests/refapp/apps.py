from django.apps import AppConfig
from django.conf import settings


class CampaignsConfig(AppConfig):
    name = "tests.refapp"
    label = "campaigns"

    def ready(self):
        # As in the reference usage: start the scheduler in every process.
        if getattr(settings, "SCHEDULER_DEFAULT", False):
            from . import operator

            operator.start()
