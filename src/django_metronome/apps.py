from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MetronomeConfig(AppConfig):
    name = "django_metronome"
    label = "django_metronome"
    verbose_name = _("Scheduled jobs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from . import checks  # noqa: F401  (registers the system checks)
        from .alerts import notifiers
        from .autostart import maybe_autostart
        from .store.sqlite import prepare_connection
        from .store.taskfires import connect_signals

        # SQLite without OPTIONS: the scheduler's threads wait for the write lock.
        connection_created.connect(prepare_connection, dispatch_uid="django_metronome.sqlite")
        notifiers.connect()
        # django.tasks: a task worker's signals end the fires it ran (docs/tasks.md).
        connect_signals()
        maybe_autostart()
