"""
Helpers for the tests that claim fires by hand (claims.claim_due_fires without a
scheduler loop): the plan every such test uses, and a started job store.
"""

from datetime import UTC, datetime, timedelta

from django_metronome.schedulers import BackgroundScheduler
from django_metronome.store.jobstore import DjangoJobStore
from django_metronome.time.firing import FirePlan, plan_fires
from django_metronome.time.triggers import next_fire_time


def plan_once(job, at: datetime) -> FirePlan:
    """The fires of ``job`` due at ``at`` under the default policy: once, 60 s grace."""
    return plan_fires(
        lambda previous, when: next_fire_time(job.trigger, previous, when),
        job.next_run_time,
        at,
        policy="once",
        grace=timedelta(seconds=60),
        coalesce=True,
        max_catch_up=10,
    )


def started_store() -> DjangoJobStore:
    jobstore = DjangoJobStore()
    jobstore.start(BackgroundScheduler(timezone=UTC), "default")
    return jobstore
