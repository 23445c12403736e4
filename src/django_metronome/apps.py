from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MetronomeConfig(AppConfig):
    name = "django_metronome"
    label = "django_metronome"
    verbose_name = _("Scheduled jobs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .autostart import maybe_autostart

        maybe_autostart()
