"""Keep each campaign's end-date job in step with the campaign (see ``schedule.py``)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Campaign
from .schedule import remove_campaign_end, schedule_campaign_end


@receiver(post_save, sender=Campaign, dispatch_uid="campaigns.schedule_end")
def campaign_saved(sender, instance, raw=False, **kwargs):
    # Fixtures (loaddata) save raw rows: other tables may not be consistent yet.
    # Note that QuerySet.update() and bulk_create() send no signal at all.
    if not raw:
        schedule_campaign_end(instance)


@receiver(post_delete, sender=Campaign, dispatch_uid="campaigns.remove_end")
def campaign_deleted(sender, instance, **kwargs):
    remove_campaign_end(instance.pk)
