"""
The better pattern: one job per campaign, at its end date.

The daily checks of ``operator.py`` close a campaign up to 24 hours after it
ended. Instead, each open campaign gets a one-off job, ``campaign-<pk>-end``,
that calls ``campaigns.tasks:close_campaign(pk)`` at its end date. It is added
when the campaign is saved, moved when the end date changes, and removed when
the campaign is closed or deleted (``signals.py`` calls these functions).

Where the job is written matters. The code that saves a campaign usually runs
in a web request, in a process that may run no scheduler at all (a worker that
only serves requests, a management command, a shell). So these functions do
not use the default scheduler, ``from django_metronome import scheduler``:
before that scheduler is started, its ``add_job`` only keeps the job in memory
until ``start()``, and counts it as declared in code, that is, run only by
processes that declare it; in a process that never starts it the job would
never reach the database. They use the job store itself: a ``DjangoJobStore``
works on its own, without a scheduler, and writes the job row at once, in the
same database transaction as the campaign (so a rolled-back save leaves no
job behind). Every django-metronome scheduler sharing the database, in any
process, sees the row at its next poll and runs the job once, at its end date.
The function is named by reference and its argument is the campaign's id, so
the row is plain JSON, and ``campaigns`` being an installed app allows the
function to be called (see ``django_metronome.allowlist``). An open campaign
saved with an end date already past gets its job too: the next scheduler to
look runs it, late, and the campaign ends.
"""

from functools import cache

from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.triggers.date import DateTrigger
from django.conf import settings
from django.utils import timezone

from django_metronome.jobstores import DjangoJobStore
from django_metronome.serialization import MetronomeJob

from .models import Campaign

FUNCTION = "campaigns.tasks:close_campaign"
#: In the worker mode (settings.EXAMPLE_WORKERS), the same work as a django.tasks task:
#: each end is enqueued by a scheduler and run by a task worker.
TASK = "campaigns.queued:close_campaign"


@cache
def job_store() -> DjangoJobStore:
    """A job store used without a scheduler (on the database django-metronome uses)."""
    store = DjangoJobStore()
    store.start(None, "default")
    return store


def _end_job(campaign: Campaign) -> Job:
    run_date = timezone.localtime(campaign.end_date)  # shown in the project's zone
    # APScheduler's Job, made without a scheduler: it only needs one to convert a
    # naive next_run_time, and ours is aware, so it is set after construction.
    workers = getattr(settings, "EXAMPLE_WORKERS", False)
    # The worker mode's target is a Task, which only django-metronome's Job class takes.
    job = (MetronomeJob if workers else Job)(
        None,
        id=campaign.end_job_id,
        func=TASK if workers else FUNCTION,
        trigger=DateTrigger(run_date=run_date),
        args=[campaign.pk],
        kwargs={},
        name=f"close campaign {campaign.pk} ({campaign.title})"[:255],
        executor="default",
        # Run it however late a scheduler gets to it (after a deploy, say): an
        # end date is worth acting on late rather than never.
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
    )
    job.next_run_time = run_date
    return job


def schedule_campaign_end(campaign: Campaign) -> str:
    """
    Make the stored job match the campaign; return what was done.

    ``"added"``, ``"moved"`` (the end date changed), ``"unchanged"`` (so that a
    pause made in the admin survives an unrelated edit of the campaign) or
    ``"removed"`` (the campaign is no longer open).
    """
    if campaign.status != Campaign.Status.OPEN:
        return "removed" if remove_campaign_end(campaign.pk) else "unchanged"
    store = job_store()
    stored = store.lookup_job(campaign.end_job_id)
    if stored is None:
        job = _end_job(campaign)
        try:
            store.add_job(job)
        except ConflictingIdError:
            # A row that could not be loaded (quarantined): replacing it releases it.
            store.update_job(job)
        return "added"
    if stored.trigger.run_date == campaign.end_date:
        return "unchanged"
    # Move it: the new trigger, and the new next run time unless it is paused.
    stored.trigger = DateTrigger(run_date=timezone.localtime(campaign.end_date))
    if stored.next_run_time is not None:
        stored.next_run_time = stored.trigger.run_date
    try:
        store.update_job(stored)
    except JobLookupError:
        # It ran (and a finished one-off job is removed) since we looked it up.
        store.add_job(_end_job(campaign))
        return "added"
    return "moved"


def remove_campaign_end(campaign_id: int) -> bool:
    """Remove the campaign's job; False if it had none (it ran, or never existed)."""
    try:
        job_store().remove_job(f"campaign-{campaign_id}-end")
    except JobLookupError:
        return False
    return True


def schedule_business_day_funding_check() -> Job:
    """
    The funding check on Korean business days: 09:00, Monday to Friday, not on public holidays.

    A variant of the reference's daily 08:10 check (``operator.py``, kept as it was) for
    teams that act on its result in office hours. On Chuseok or Seollal the fire is
    skipped, and the run history says which holiday ("Skipped: not a business day
    (Chuseok)."). The calendar is stored by its country code, not as an object; see
    docs/schedules.md. Call it once (a deploy step, a shell); it replaces itself.
    """
    import holidays

    from django_metronome import add_job

    return add_job(
        "campaigns.checker:CampaignStatusChecker.check_funding_success",
        "cron",
        hour=9,
        timezone="Asia/Seoul",
        exclude=holidays.country_holidays("KR"),
        id="funding-check-business-days",
        name="check_funding_success on Korean business days",
        replace_existing=True,
    )
