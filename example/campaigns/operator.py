# The reference usage of django-apscheduler users, as it was, with only the import
# lines changed (apscheduler.schedulers.background -> django_metronome.schedulers,
# django_apscheduler.jobstores -> django_metronome.jobstores). campaigns/apps.py calls
# start() in every process when settings.SCHEDULER_DEFAULT is true: every web worker
# runs a scheduler, and each 08:00 fire still runs once, in one of them.
from apscheduler.triggers.cron import CronTrigger

from django_metronome.jobstores import DjangoJobStore, register_events
from django_metronome.schedulers import BackgroundScheduler

from .checker import CampaignStatusChecker


def start():
    scheduler = BackgroundScheduler()
    scheduler.add_jobstore(DjangoJobStore(), "djangojobstore")
    register_events(scheduler)

    @scheduler.scheduled_job(CronTrigger(hour=8), name="check_campaign_status")
    def check_campaign_status_job():  # a nested function, and no explicit id
        CampaignStatusChecker.check_campaign_status()

    @scheduler.scheduled_job("cron", hour=8, minute=10, name="check_funding_success")
    def check_funding_success_job():
        CampaignStatusChecker.check_funding_success()

    scheduler.start()
