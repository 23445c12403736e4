"""What the daily jobs of ``operator.py`` do."""

from django.db.models import DecimalField, F, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import Campaign


class CampaignStatusChecker:
    @staticmethod
    def check_campaign_status(now=None) -> int:
        """Close the open campaigns whose end date has passed; return how many."""
        now = now or timezone.now()
        return Campaign.objects.filter(status=Campaign.Status.OPEN, end_date__lte=now).update(
            status=Campaign.Status.CLOSED
        )

    @staticmethod
    def check_funding_success(now=None) -> int:
        """Mark the ended campaigns whose fundings fell short of their goal as failed."""
        now = now or timezone.now()
        short = (
            Campaign.objects.filter(end_date__lte=now)
            .exclude(status=Campaign.Status.FAILED)
            .annotate(
                raised=Coalesce(
                    Sum("fundings__amount"),
                    Value(0),
                    output_field=DecimalField(max_digits=14, decimal_places=0),
                )
            )
            .filter(raised__lt=F("goal"))
        )
        ids = list(short.values_list("pk", flat=True))
        return Campaign.objects.filter(pk__in=ids).update(status=Campaign.Status.FAILED)
