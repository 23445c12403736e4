"""The reference usage's shape, with a job every second that records which process ran it."""

import os

from django_metronome.jobstores import DjangoJobStore, register_events
from django_metronome.schedulers import BackgroundScheduler
from tests.testapp.jobs import record_fire


def start():
    scheduler = BackgroundScheduler()
    scheduler.add_jobstore(DjangoJobStore(), "djangojobstore")
    register_events(scheduler)

    @scheduler.scheduled_job("interval", seconds=1, name="ready_tick")
    def ready_tick():  # a nested function, and no explicit id
        record_fire()

    scheduler.start(force=os.environ.get("READY_FORCE") == "1")
