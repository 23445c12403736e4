"""
The scheduler dashboard: processes, overdue jobs, failures, pending runs, the
next fires and a picture of the recent runs.

Every query here is bounded: the dashboard never loads all jobs nor scans the
whole ledger, whatever their size. Each reads a range of an index and stops
after a fixed number of rows: counts stop at :data:`COUNT_CAP` ("more than"),
lists at their length, and the recent runs of each job shown are read from
the ledger's ``(job, run_time)`` index, job by job, in one statement.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import translation
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from .. import present
from ..conf import conf
from ..store import nodes as node_store
from ..store.db import database_alias, from_db, utcnow
from ..store.models import (
    DjangoJob,
    DjangoJobExecution,
    ExecutionStatus,
    Incident,
    SchedulerNode,
)
from .base import (
    flag,
    format_duration,
    format_in_zone,
    format_instant,
    job_url,
    overdue_threshold,
    run_url,
    runs_of_job_url,
    status_badge,
)
from .paging import capped_counts
from .svg import run_strip_svg

#: Fire times previewed on a job's page and on the dashboard.
FIRE_PREVIEW = 10
#: Overdue jobs, failures and processes listed on the dashboard (each list).
DASHBOARD_LIST = 10
#: Jobs with a picture of their recent runs on the dashboard.
DASHBOARD_JOBS = 50
#: Runs in each job's picture.
STRIP_RUNS = 30
#: Ledger rows read, newest first, to find the jobs with the most recent activity.
ACTIVITY_SCAN = 2000
#: Stopped or silent processes are listed on the dashboard for this long.
DEAD_WINDOW = timedelta(hours=24)
#: Failures are counted over this window.
FAILURE_WINDOW = timedelta(hours=24)
#: The dashboard's counts stop here ("more than 10,000").
COUNT_CAP = 10_000


@dataclass
class NodeRow:
    node: SchedulerNode
    heartbeat_age: str
    started: str
    stopped: str
    declared: int
    #: The process's clock against the database's, in words.
    clock: str = ""
    #: Further off than MAX_CLOCK_OFFSET.
    clock_off: bool = False


@dataclass
class JobLine:
    job_id: str
    name: str
    url: str | None
    text: str = ""
    detail: str = ""
    badge: SafeString | None = None
    flags: list[SafeString] = field(default_factory=list)


@dataclass
class IncidentLine:
    """An open incident: which expectation broke, of which job, since when."""

    job_id: str
    url: str | None
    kind: str
    opened: str
    detail: str


@dataclass
class ActivityRow:
    job_id: str
    name: str
    url: str | None
    runs_url: str
    svg: SafeString
    counts: str
    last: SafeString
    since: str


def dashboard_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """The dashboard page, for whoever may view the jobs."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    jobs_url = reverse("admin:django_metronome_djangojob_changelist")
    ledger_url = reverse("admin:django_metronome_djangojobexecution_changelist")
    context = {
        **model_admin.admin_site.each_context(request),
        **dashboard_context(),
        "title": _("Scheduler dashboard"),
        "opts": model_admin.opts,
        "jobs_url": jobs_url,
        "ledger_url": ledger_url,
        "nodes_url": reverse("admin:django_metronome_schedulernode_changelist"),
        "failed_url": f"{ledger_url}?{urlencode({'status': 'failed', 'when': '24h'})}",
        "overdue_url": f"{jobs_url}?{urlencode({'next': 'overdue'})}",
        "pending_url": f"{ledger_url}?{urlencode({'status': 'pending'})}",
    }
    return TemplateResponse(request, "admin/django_metronome/dashboard.html", context)


def dashboard_context(now: datetime | None = None) -> dict[str, Any]:
    """Everything the dashboard shows, in a fixed number of bounded queries."""
    now = now or utcnow()
    using = database_alias()
    jobs = DjangoJob.objects.using(using)
    ledger = DjangoJobExecution.objects.using(using)
    threshold = overdue_threshold()
    overdue_qs = jobs.loadable().filter(next_run_time__lt=now - threshold)
    since = now - FAILURE_WINDOW
    # One statement: how many runs ended in each status in the window, how many
    # run-now requests wait, how many jobs are overdue; each count a bounded
    # range of an index ((status, run_time), the due index).
    statuses = list(ExecutionStatus.values)
    counts = capped_counts(
        using,
        [ledger.filter(status=status, run_time__gte=since) for status in statuses]
        + [ledger.pending(), overdue_qs],
        COUNT_CAP,
    )
    outcome_counts = dict(zip(statuses, counts, strict=False))
    pending_count, overdue_count = counts[-2], counts[-1]
    # Run-now requests waiting for a process: the oldest, first on the index.
    oldest = None
    if pending_count:
        oldest = ledger.pending().order_by("run_time").values_list("run_time", flat=True).first()
    pending_age = (now - from_db(oldest)).total_seconds() if oldest else 0.0
    alive, gone = processes(using, now)
    return {
        "now": now,
        "now_text": format_instant(now),
        "alive": alive,
        "gone": gone,
        "dead_after": conf.DEAD_AFTER,
        "overdue_count": min(overdue_count, COUNT_CAP),
        "overdue_more": overdue_count > COUNT_CAP,
        "overdue": overdue_lines(overdue_qs, now),
        "overdue_threshold": format_duration(threshold),
        "failed_count": min(outcome_counts[ExecutionStatus.FAILED], COUNT_CAP),
        "failed_more": outcome_counts[ExecutionStatus.FAILED] > COUNT_CAP,
        "outcome_counts": [
            (status_badge(status), capped_text(outcome_counts[status]))
            for status in statuses
            if outcome_counts[status]
        ],
        "failures": failure_lines(ledger, since),
        "pending_count": min(pending_count, COUNT_CAP),
        "pending_more": pending_count > COUNT_CAP,
        "pending_age": format_duration(pending_age) if pending_count else "",
        "pending_stale": pending_count and pending_age > float(conf.RUN_NOW_TIMEOUT),
        "run_now_timeout": conf.RUN_NOW_TIMEOUT,
        "next_fires": next_fires(jobs, now),
        "activity": activity(jobs, ledger, now),
        "strip_runs": STRIP_RUNS,
        "dashboard_jobs": DASHBOARD_JOBS,
        "legend": [status_badge(status) for status in ExecutionStatus.values],
        "incidents": incident_lines(using, now),
    }


def incident_lines(using: str, now: datetime) -> list[IncidentLine]:
    """The open incidents, newest first (at most DASHBOARD_LIST): one query."""
    incidents = Incident.objects.using(using).filter(is_open=True).order_by("-opened_at")
    return [
        IncidentLine(
            job_id=incident.job_id,
            url=job_url(incident.job_id) if incident.job_id else None,
            kind=str(incident.get_kind_display()),
            opened=present.relative(incident.opened_at, now, translation),
            detail=incident.detail,
        )
        for incident in incidents[:DASHBOARD_LIST]
    ]


def capped_text(count: int) -> str:
    """A count as the dashboard shows it: ``42``, or ``more than 10,000``."""
    if count > COUNT_CAP:
        return _("more than {count}").format(count=f"{COUNT_CAP:,}")
    return str(count)


def processes(using: str, now: datetime) -> tuple[list[NodeRow], list[NodeRow]]:
    """The processes alive, and those stopped or silent in the last day."""
    dead_after = timedelta(seconds=conf.DEAD_AFTER)
    alive = node_store.live(using, now).order_by("-last_heartbeat")[: DASHBOARD_LIST * 5]
    gone = (
        SchedulerNode.objects.using(using)
        .filter(
            Q(stopped_at__gte=now - DEAD_WINDOW)
            | Q(
                stopped_at__isnull=True,
                last_heartbeat__lt=now - dead_after,
                last_heartbeat__gte=now - DEAD_WINDOW,
            )
        )
        .order_by("-last_heartbeat")[:DASHBOARD_LIST]
    )
    return [node_row(node, now) for node in alive], [node_row(node, now) for node in gone]


def node_row(node: SchedulerNode, now: datetime) -> NodeRow:
    return NodeRow(
        node=node,
        heartbeat_age=heartbeat_age(node, now),
        started=format_instant(node.started_at),
        stopped=format_instant(node.stopped_at),
        declared=len(node.declared or []),
        clock=present.clock_offset(node.clock_offset, translation),
        clock_off=node.clock_offset is not None and abs(node.clock_offset) > conf.MAX_CLOCK_OFFSET,
    )


def heartbeat_age(node: SchedulerNode, now: datetime) -> str:
    """``400 ms ago``, ``3 min 5 s ago``: how long since the process last heart-beat."""
    return present.ago((now - from_db(node.last_heartbeat)).total_seconds(), translation)


def overdue_lines(overdue: Any, now: datetime) -> list[JobLine]:
    """The jobs due longer ago than a poll interval and a margin, the oldest first."""
    return [
        JobLine(
            job_id=job.pk,
            name=str(job),
            url=job_url(job.pk),
            text=format_in_zone(job.next_run_time, job.time_zone),
            detail=present.relative(job.next_run_time, now, translation),
            flags=[flag(present.ORPHANED, present.ORPHANED)] if job.orphaned_at else [],
        )
        for job in overdue.order_by("next_run_time", "id").only(
            "id", "name", "state", "next_run_time", "orphaned_at"
        )[:DASHBOARD_LIST]
    ]


def failure_lines(ledger: Any, since: datetime) -> list[JobLine]:
    """The latest failures since ``since``."""
    return [
        JobLine(
            job_id=run.job_id,
            name=run.job_name or run.job_id,
            url=run_url(run.pk),
            text=format_instant(run.run_time),
            detail=present.run_detail(run, 200),
            badge=status_badge(run.status),
        )
        for run in ledger.filter(run_time__gte=since, status=ExecutionStatus.FAILED)
        .order_by("-run_time", "-id")
        .only("id", "job_id", "job_name", "run_time", "status", "exception", "reason")[
            :DASHBOARD_LIST
        ]
    ]


def next_fires(jobs: Any, now: datetime, count: int = FIRE_PREVIEW) -> list[JobLine]:
    """
    The next ``count`` fires across all jobs.

    Only the ``count`` jobs that fire first can own any of them (each job's
    first fire is its next run time), so only those are read and previewed.
    Orphaned jobs are left out: nothing runs them.
    """
    candidates = list(
        jobs.loadable()
        .filter(next_run_time__isnull=False, orphaned_at__isnull=True)
        .order_by("next_run_time", "id")
        .only("id", "name", "state", "next_run_time", "quarantined_at")[:count]
    )
    fires: list[tuple[datetime, str, DjangoJob]] = []
    for job in candidates:
        first = from_db(job.next_run_time)
        assert first is not None
        fires.append((first, job.pk, job))
        try:
            later = job.next_fire_times(count, now=first)
        except Exception:
            later = []
        fires.extend((fire.astimezone(UTC), job.pk, job) for fire in later if fire > first)
    fires.sort(key=lambda item: (item[0], item[1]))
    return [
        JobLine(
            job_id=job.pk,
            name=str(job),
            url=job_url(job.pk),
            text=format_in_zone(at, job.time_zone),
            detail=_("overdue") if at < now else present.relative(at, now, translation),
        )
        for at, _order, job in fires[:count]
    ]


def activity(jobs: Any, ledger: Any, now: datetime) -> list[ActivityRow]:
    """
    A picture of the recent runs of the jobs that ran last.

    The jobs are found among the newest ``ACTIVITY_SCAN`` ledger rows (an index
    scan, however large the ledger), and their last ``STRIP_RUNS`` runs are read
    by :func:`last_runs`.
    """
    recent_ids = ledger.order_by("-run_time").values_list("job_id", flat=True)[:ACTIVITY_SCAN]
    ids = list(dict.fromkeys(recent_ids))[:DASHBOARD_JOBS]
    if not ids:
        return []
    runs = last_runs(ledger, ids, STRIP_RUNS)
    names = dict(jobs.filter(pk__in=ids).values_list("id", "name"))
    rows = []
    for job_id in ids:
        job_runs = sorted(runs[job_id], key=lambda run: (run.run_time, run.pk))
        if not job_runs:
            continue
        latest = job_runs[-1]
        counts = Counter(run.status for run in job_runs)
        exists = job_id in names
        rows.append(
            ActivityRow(
                job_id=job_id,
                name=(names.get(job_id) or job_id) if exists else (latest.job_name or job_id),
                url=job_url(job_id) if exists else None,
                runs_url=runs_of_job_url(job_id),
                svg=run_strip_svg(job_runs, now),
                counts=pgettext("list separator", ", ").join(
                    pgettext("runs of a status", "{count} {status}").format(
                        count=counts[status], status=ExecutionStatus(status).label
                    )
                    for status in ExecutionStatus.values
                    if counts.get(status)
                ),
                last=status_badge(latest.status, run_url(latest.pk)),
                since=present.relative(job_runs[0].run_time, now, translation),
            )
        )
    return rows


def last_runs(ledger: Any, job_ids: list[str], count: int) -> dict[str, list[DjangoJobExecution]]:
    """
    The last ``count`` runs of each job, in one statement, each job's read from
    the ``(job, run_time)`` index and stopped after ``count`` rows.

    A window (``ROW_NUMBER() OVER (PARTITION BY job ...)``) would read and sort
    every run of those jobs; ``LATERAL`` is PostgreSQL's only. One bounded
    ``SELECT`` per job, glued with ``UNION ALL``, is understood everywhere.
    """
    runs: dict[str, list[DjangoJobExecution]] = {job_id: [] for job_id in job_ids}
    if not job_ids:
        return runs
    fields = ["id", "job_id", "job_name", "run_time", "status", "duration", "exception", "reason"]
    parts: list[str] = []
    params: list[Any] = []
    for number, job_id in enumerate(job_ids):
        latest = ledger.filter(job_id=job_id).order_by("-run_time", "-id").values(*fields)
        sql, part_params = latest[:count].query.get_compiler(using=ledger.db).as_sql()
        # The parts are the ORM's own SQL, their values parameters.
        parts.append(f"SELECT * FROM ({sql}) AS runs{number}")  # noqa: S608
        params.extend(part_params)
    for run in ledger.raw(" UNION ALL ".join(parts), params):
        runs[run.job_id].append(run)
    return runs
