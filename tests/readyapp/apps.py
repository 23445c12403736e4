from django.apps import AppConfig


class ReadyConfig(AppConfig):
    name = "tests.readyapp"
    label = "readyapp"

    def ready(self):
        # As in the reference usage: ready() starts the scheduler in every process
        # that loads the project; the scheduler decides where it really starts.
        from . import operator

        operator.start()
