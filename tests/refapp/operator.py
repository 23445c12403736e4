# The reference usage of the brief (campaigns/operator.py), with only the
# import lines changed from django-apscheduler's to django-metronome's.
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
