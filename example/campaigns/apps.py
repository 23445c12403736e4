from django.apps import AppConfig
from django.conf import settings


class CampaignsConfig(AppConfig):
    name = "campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import signals  # noqa: F401  (connects the end-date jobs to saves)

        # The reference usage: start the scheduler in every process that loads the
        # project when SCHEDULER_DEFAULT is set (see mysite/settings.py).
        if settings.SCHEDULER_DEFAULT:
            from . import operator

            operator.start()
