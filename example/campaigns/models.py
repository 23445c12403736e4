from decimal import Decimal

from django.db import models
from django.db.models import Sum
from django.utils import timezone


class Campaign(models.Model):
    """A crowdfunding campaign: open until its end date, then closed or failed."""

    class Status(models.TextChoices):
        OPEN = "open", "open"
        CLOSED = "closed", "closed"
        FAILED = "failed", "failed"

    title = models.CharField(max_length=200)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    end_date = models.DateTimeField(help_text="When the campaign ends (stored in UTC).")
    goal = models.DecimalField(
        max_digits=14, decimal_places=0, help_text="The amount to raise, in won."
    )

    class Meta:
        ordering = ["end_date", "id"]

    def __str__(self) -> str:
        return self.title

    @property
    def end_job_id(self) -> str:
        """The id of the one-off job that closes this campaign at its end date."""
        return f"campaign-{self.pk}-end"

    def raised(self) -> Decimal:
        total = self.fundings.aggregate(total=Sum("amount"))["total"]
        return total if total is not None else Decimal(0)

    def has_ended(self, now=None) -> bool:
        return self.end_date <= (now or timezone.now())


class Funding(models.Model):
    """One backer's contribution to a campaign."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="fundings")
    amount = models.DecimalField(max_digits=14, decimal_places=0)

    def __str__(self) -> str:
        return f"{self.amount} won to {self.campaign}"
