"""
Jobs added at run time. They are module-level functions, so that a job row can
name them (``campaigns.tasks:close_campaign``), and they take ids, not objects,
because job arguments are stored as JSON.
"""

import json
import logging
import urllib.request

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from django_metronome.util import close_old_connections

from .models import Campaign

logger = logging.getLogger(__name__)


@close_old_connections
def close_campaign(campaign_id: int) -> str | None:
    """
    End one campaign at its end date: closed if it reached its goal, failed if not.

    Run by the one-off job ``campaign-<pk>-end`` (see ``campaigns/schedule.py``).
    A campaign that is gone, already ended, or whose end date was moved later
    (the job is moved too, but a run may already be under way) is left alone.
    Return the new status, or None when nothing changed.
    """
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.status != Campaign.Status.OPEN or not campaign.has_ended():
        return None
    status = (
        Campaign.Status.CLOSED if campaign.raised() >= campaign.goal else Campaign.Status.FAILED
    )
    # Conditional update: the daily checks may be ending the same campaign right now.
    updated = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.OPEN).update(
        status=status
    )
    if not updated:
        return None
    logger.info("Campaign %s (%s) is %s.", campaign.pk, campaign.title, status)
    return status


@close_old_connections
def send_funding_report(campaign_id: int) -> None:
    """
    Post a campaign's funding figures to a partner's reporting endpoint.

    The endpoint is ``settings.FUNDING_REPORT_URL``. The example project does
    not set it, so this job fails, and the demo uses it to show a failed run
    with its traceback in the ledger.
    """
    campaign = Campaign.objects.get(pk=campaign_id)
    url = getattr(settings, "FUNDING_REPORT_URL", "")
    if not url:
        raise ImproperlyConfigured(
            f"FUNDING_REPORT_URL is not set, so the funding report of {campaign.title!r} "
            "cannot be sent (the demo fails this job on purpose)."
        )
    body = json.dumps(
        {"campaign": campaign.pk, "goal": str(campaign.goal), "raised": str(campaign.raised())}
    ).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (a settings URL)
        response.read()
