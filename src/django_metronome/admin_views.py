"""
What the admin shows, apart from the ModelAdmins: formatting, the pause-until
form, and the scheduler dashboard.

Times come in two kinds. A job's fire times (its next run, its previews) are
shown in the job's own time zone with the UTC offset, ``2026-11-26 08:00
+09:00``, since that is how its schedule is written. Instants of the ledger and
of the scheduler processes are shown in the admin's current time zone with
``APSCHEDULER_DATETIME_FORMAT`` (django-apscheduler's setting, kept).

Every query here is bounded: the dashboard never loads all jobs nor scans the
whole ledger, whatever their size.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.contrib.admin.utils import quote
from django.db import router
from django.db.models import Count, F, Min, Q, Window
from django.db.models.functions import RowNumber
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from .conf import conf
from .models import (
    DjangoJob,
    DjangoJobExecution,
    ExecutionStatus,
    JobSource,
    SchedulerNode,
)
from .store.db import from_db, utcnow

#: Fire times previewed on a job's page and on the dashboard.
FIRE_PREVIEW = 10
#: Runs listed on a job's page.
RECENT_RUNS = 20
#: A job is overdue when its next run time is this much older than the poll interval.
OVERDUE_MARGIN = timedelta(seconds=10)
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


def overdue_threshold() -> timedelta:
    """How far in the past a next run time must be for the job to count as overdue."""
    return timedelta(seconds=conf.POLL_INTERVAL) + OVERDUE_MARGIN


def database() -> str:
    """The alias of the job tables; the admin reads and writes there (no replica lag)."""
    return conf.DATABASE or router.db_for_write(DjangoJob)


# --- formatting ------------------------------------------------------------------


def zone_of(name: str | None) -> tzinfo:
    """The ZoneInfo of an IANA name; UTC for a name this machine does not know."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def utc_offset(value: datetime) -> str:
    """``+09:00``, ``-04:00``, ``+00:00``: the offset of an aware datetime."""
    offset = value.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_in_zone(value: datetime | None, zone: str | None) -> str:
    """
    A fire time in a job's zone with its offset: ``2026-11-26 08:00 +09:00``.

    Seconds are shown when they are not zero. With DST the offset changes, so
    two fires an hour apart in UTC read right on both sides of the change.
    """
    if value is None:
        return ""
    local = from_db(value).astimezone(zone_of(zone))  # type: ignore[union-attr]
    pattern = "%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M"
    return f"{local.strftime(pattern)} {utc_offset(local)}"


def format_instant(value: datetime | None) -> str:
    """An instant in the admin's current zone, with ``APSCHEDULER_DATETIME_FORMAT``."""
    if value is None:
        return ""
    return formats.date_format(timezone.localtime(from_db(value)), conf.DATETIME_FORMAT)


def format_seconds(seconds: float) -> str:
    """A length of time, short: ``850 ms``, ``4.2 s``, ``3 min 5 s``, ``2 h 10 min``."""
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 0.01:
        text = f"{seconds * 1000:.1f} ms"
    elif seconds < 1:
        text = f"{seconds * 1000:.0f} ms"
    elif seconds < 10:
        text = f"{seconds:.2f} s"
    elif seconds < 60:
        text = f"{seconds:.1f} s"
    elif seconds < 3600:
        whole = int(seconds)
        text = f"{whole // 60} min {whole % 60} s"
    elif seconds < 86400:
        whole = int(seconds)
        text = f"{whole // 3600} h {whole % 3600 // 60} min"
    else:
        whole = int(seconds)
        text = f"{whole // 86400} d {whole % 86400 // 3600} h"
    return sign + text


def format_duration(value: timedelta | None) -> str:
    return "" if value is None else format_seconds(value.total_seconds())


def relative(value: datetime | None, now: datetime) -> str:
    """``in 5 min`` or ``3 h 2 min ago``."""
    if value is None:
        return ""
    delta = (from_db(value) - now).total_seconds()  # type: ignore[operator]
    if abs(delta) < 1:
        return "now"
    text = format_seconds(abs(delta)) if abs(delta) >= 60 else f"{abs(delta):.0f} s"
    return f"in {text}" if delta > 0 else f"{text} ago"


def status_badge(status: str | None, url: str | None = None, title: str = "") -> SafeString:
    """A coloured badge for a ledger status (``never run`` for None)."""
    if not status:
        return format_html('<span class="metronome-badge metronome-none">{}</span>', "never run")
    label = ExecutionStatus(status).label if status in ExecutionStatus.values else status
    badge = format_html(
        '<span class="metronome-badge metronome-{}" title="{}">{}</span>', status, title, label
    )
    if url:
        return format_html('<a href="{}" class="metronome-badge-link">{}</a>', url, badge)
    return badge


def flag(text: str, kind: str, title: str = "") -> SafeString:
    return format_html(
        '<span class="metronome-flag metronome-{}" title="{}">{}</span>', kind, title, text
    )


def job_url(job_id: str) -> str:
    return reverse("admin:django_metronome_djangojob_change", args=(quote(job_id),))


def run_url(run_id: int) -> str:
    return reverse("admin:django_metronome_djangojobexecution_change", args=(quote(run_id),))


def runs_of_job_url(job_id: str) -> str:
    url = reverse("admin:django_metronome_djangojobexecution_changelist")
    return f"{url}?{urlencode({'job': job_id})}"


# --- who can run a job --------------------------------------------------------------


def live_nodes(now: datetime) -> list[SchedulerNode]:
    """The scheduler processes alive now (heart-beaten within ``DEAD_AFTER``)."""
    return list(
        SchedulerNode.objects.using(database())
        .alive(now, timedelta(seconds=conf.DEAD_AFTER))
        .order_by("-last_heartbeat")[:200]
    )


def can_run(job: DjangoJob, nodes: list[SchedulerNode]) -> bool:
    """Whether one of ``nodes`` may take a fire of ``job``."""
    if job.is_quarantined or job.orphaned_at is not None:
        return False
    if job.source == JobSource.RUNTIME:
        return bool(nodes)
    return any(job.pk in (node.declared or []) for node in nodes)


def why_nobody_runs(job: DjangoJob, nodes: list[SchedulerNode]) -> str:
    """Why no live process can take the job's fires (empty when one can)."""
    if job.is_quarantined:
        return "The job is quarantined: no scheduler process loads it until it is fixed."
    if not nodes:
        return (
            "No scheduler process is running now: the run stays pending until one starts "
            "(manage.py runscheduler, or a scheduler started in your project)."
        )
    if job.orphaned_at is not None or not can_run(job, nodes):
        return (
            "No running scheduler process declares this job in code, so none can run it: "
            "the run stays pending until a process that declares it starts."
        )
    return ""


# --- pause until ---------------------------------------------------------------------


class PauseUntilForm(forms.Form):
    """
    A date and time, read in a time zone chosen on the form.

    The choices are the jobs' own zones and the admin's current zone; the job's
    page offers its own zone first. A time that the zone skips (spring forward)
    or repeats (fall back) is refused, since it names no single instant.
    """

    until = forms.DateTimeField(
        label="Resume at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=[
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%d %H:%M:%S",
        ],
    )
    zone = forms.ChoiceField(label="Time zone")

    def __init__(
        self, *args: Any, zones: list[tuple[str, str]], form_id: str = "", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.zones = {value for value, _ in zones}
        cast(forms.ChoiceField, self.fields["zone"]).choices = zones
        if form_id:
            # The fields sit outside their <form> element (see the job's page).
            for field in self.fields.values():
                field.widget.attrs["form"] = form_id
        if not self.is_bound:
            self.initial.setdefault("zone", zones[0][0])

    def full_clean(self) -> None:
        # Django reads a naive date-time in the current time zone: make that the chosen one.
        zone = self.data.get(self.add_prefix("zone")) if self.is_bound else None
        if zone in self.zones:
            with timezone.override(zone_of(zone)):
                super().full_clean()
        else:
            super().full_clean()

    def clean_until(self) -> datetime:
        until: datetime = self.cleaned_data["until"]
        if timezone.is_naive(until):
            # Without USE_TZ Django leaves it naive: read it in the chosen zone here.
            until = until.replace(tzinfo=zone_of(self.data.get(self.add_prefix("zone"))))
        if until <= utcnow():
            raise forms.ValidationError("Choose a time in the future.")
        return until


def zone_choices(job_zones: list[str], *, job_first: bool = True) -> list[tuple[str, str]]:
    """
    Choices for :class:`PauseUntilForm`: the jobs' zones and the admin's current zone.

    The first choice is the default: the job's zone on a job's page (``job_first``),
    the admin's zone otherwise.
    """
    current = timezone.get_current_timezone_name()
    zones = list(dict.fromkeys(job_zones))
    whose = "the job's time zone" if len(zones) == 1 else "a selected job's time zone"
    choices = [
        (name, f"{name} ({whose}{', and yours' if name == current else ''})") for name in zones
    ]
    if current not in zones:
        mine = (current, f"{current} (your current time zone)")
        if job_first:
            choices.append(mine)
        else:
            choices.insert(0, mine)
    return choices


# --- a job's page ----------------------------------------------------------------------


@dataclass
class FireRow:
    at: str
    utc: str
    zone_abbr: str
    relative: str
    offset_changed: str = ""


def fire_rows(
    job: DjangoJob, now: datetime, count: int = FIRE_PREVIEW
) -> tuple[list[FireRow], str]:
    """
    The job's next fire times as rows, and an error text when its schedule cannot be read.

    A row whose UTC offset differs from the previous one says so, which shows
    DST changes.
    """
    try:
        fires = job.next_fire_times(count, now=now)
    except Exception as exc:
        return [], f"The schedule cannot be previewed: {exc}"
    rows: list[FireRow] = []
    previous_offset: str | None = None
    zone = zone_of(job.time_zone)
    for fire in fires:
        local = fire.astimezone(zone)
        offset = utc_offset(local)
        changed = ""
        if previous_offset is not None and offset != previous_offset:
            changed = f"UTC offset changes from {previous_offset} to {offset}"
        previous_offset = offset
        rows.append(
            FireRow(
                at=format_in_zone(fire, job.time_zone),
                utc=fire.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
                zone_abbr=local.tzname() or "",
                relative=relative(fire, now),
                offset_changed=changed,
            )
        )
    return rows, ""


@dataclass
class RunRow:
    run: DjangoJobExecution
    url: str
    badge: SafeString
    scheduled: str
    duration: str
    lateness: str
    stale: bool = False


def run_rows(runs: list[DjangoJobExecution], now: datetime) -> list[RunRow]:
    rows = []
    for run in runs:
        stale = run.status == ExecutionStatus.PENDING and pending_too_long(run, now)
        title = run.reason or run.exception
        rows.append(
            RunRow(
                run=run,
                url=run_url(run.pk),
                badge=status_badge(run.status, title=title),
                scheduled=format_instant(run.run_time),
                duration=format_duration(run.duration),
                lateness=format_duration(run.lateness),
                stale=stale,
            )
        )
    return rows


def pending_too_long(run: DjangoJobExecution, now: datetime) -> bool:
    """A run-now request older than ``APSCHEDULER_RUN_NOW_TIMEOUT`` seconds, still pending."""
    return (now - from_db(run.run_time)).total_seconds() > float(conf.RUN_NOW_TIMEOUT)  # type: ignore[operator]


# --- the dashboard -------------------------------------------------------------------------


@dataclass
class NodeRow:
    node: SchedulerNode
    heartbeat_age: str
    started: str
    stopped: str
    declared: int
    #: The database's clock against the process's, in words ("+0.002 s").
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
class ActivityRow:
    job_id: str
    name: str
    url: str | None
    runs_url: str
    svg: SafeString
    counts: str
    last: SafeString
    since: str


def dashboard_context(now: datetime | None = None) -> dict[str, Any]:
    """Everything the dashboard shows, in a fixed number of bounded queries."""
    now = now or utcnow()
    using = database()
    jobs = DjangoJob.objects.using(using)
    ledger = DjangoJobExecution.objects.using(using)
    nodes = SchedulerNode.objects.using(using)
    dead_after = timedelta(seconds=conf.DEAD_AFTER)

    # Processes: alive, and those stopped or silent in the last day.
    alive = list(nodes.alive(now, dead_after).order_by("-last_heartbeat")[: DASHBOARD_LIST * 5])
    gone = list(
        nodes.filter(
            Q(stopped_at__gte=now - DEAD_WINDOW)
            | Q(
                stopped_at__isnull=True,
                last_heartbeat__lt=now - dead_after,
                last_heartbeat__gte=now - DEAD_WINDOW,
            )
        ).order_by("-last_heartbeat")[:DASHBOARD_LIST]
    )

    # Overdue jobs: due longer ago than a poll interval and a margin.
    threshold = overdue_threshold()
    overdue_qs = jobs.loadable().filter(next_run_time__lt=now - threshold)
    overdue_count = overdue_qs.count()
    overdue = [
        JobLine(
            job_id=job.pk,
            name=str(job),
            url=job_url(job.pk),
            text=format_in_zone(job.next_run_time, job.time_zone),
            detail=relative(job.next_run_time, now),
            flags=[flag("orphaned", "orphaned")] if job.orphaned_at else [],
        )
        for job in overdue_qs.order_by("next_run_time", "id").only(
            "id", "name", "state", "next_run_time", "orphaned_at"
        )[:DASHBOARD_LIST]
    ]

    # The last day's outcomes, and the latest failures.
    since = now - FAILURE_WINDOW
    outcome_counts = dict(
        ledger.filter(run_time__gte=since)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    failures = [
        JobLine(
            job_id=run.job_id,
            name=run.job_name or run.job_id,
            url=run_url(run.pk),
            text=format_instant(run.run_time),
            detail=(run.exception or run.reason).splitlines()[0]
            if (run.exception or run.reason)
            else "",
            badge=status_badge(run.status),
        )
        for run in ledger.filter(run_time__gte=since, status=ExecutionStatus.FAILED)
        .order_by("-run_time", "-id")
        .only("id", "job_id", "job_name", "run_time", "status", "exception", "reason")[
            :DASHBOARD_LIST
        ]
    ]

    # Run-now requests waiting for a process.
    pending = ledger.pending().aggregate(count=Count("id"), oldest=Min("run_time"))
    pending_age = (now - from_db(pending["oldest"])).total_seconds() if pending["oldest"] else 0.0  # type: ignore[operator]

    return {
        "now": now,
        "now_text": format_instant(now),
        "alive": [node_row(node, now) for node in alive],
        "gone": [node_row(node, now) for node in gone],
        "dead_after": conf.DEAD_AFTER,
        "overdue_count": overdue_count,
        "overdue": overdue,
        "overdue_threshold": format_seconds(threshold.total_seconds()),
        "failed_count": outcome_counts.get(ExecutionStatus.FAILED, 0),
        "outcome_counts": [
            (status_badge(status), outcome_counts[status])
            for status in ExecutionStatus.values
            if outcome_counts.get(status)
        ],
        "failures": failures,
        "pending_count": pending["count"],
        "pending_age": format_seconds(pending_age) if pending["count"] else "",
        "pending_stale": pending["count"] and pending_age > float(conf.RUN_NOW_TIMEOUT),
        "run_now_timeout": conf.RUN_NOW_TIMEOUT,
        "next_fires": next_fires(jobs, now),
        "activity": activity(jobs, ledger, now),
        "strip_runs": STRIP_RUNS,
        "dashboard_jobs": DASHBOARD_JOBS,
        "legend": [status_badge(status) for status in ExecutionStatus.values],
    }


def node_row(node: SchedulerNode, now: datetime) -> NodeRow:
    return NodeRow(
        node=node,
        heartbeat_age=heartbeat_age(node, now),
        started=format_instant(node.started_at),
        stopped=format_instant(node.stopped_at),
        declared=len(node.declared or []),
        clock=clock_offset_text(node.clock_offset),
        clock_off=node.clock_offset is not None and abs(node.clock_offset) > conf.MAX_CLOCK_OFFSET,
    )


def clock_offset_text(offset: float | None) -> str:
    """How far a process's clock is from the database's: ``in step``, ``30.2 s fast``."""
    if offset is None:
        return "its own (CLOCK is 'local')"
    if abs(offset) < 0.0005:
        return "in step"
    return f"{abs(offset):.3f} s {'slow' if offset > 0 else 'fast'}"


def heartbeat_age(node: SchedulerNode, now: datetime) -> str:
    """``0.4 s ago``, ``3 min 5 s ago``: how long since the process last heart-beat."""
    age = max((now - from_db(node.last_heartbeat)).total_seconds(), 0.0)  # type: ignore[operator]
    return f"{age:.1f} s ago" if age < 10 else f"{format_seconds(age)} ago"


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
            detail="overdue" if at < now else relative(at, now),
        )
        for at, _, job in fires[:count]
    ]


def activity(jobs: Any, ledger: Any, now: datetime) -> list[ActivityRow]:
    """
    A picture of the recent runs of the jobs that ran last.

    The jobs are found among the newest ``ACTIVITY_SCAN`` ledger rows (an index
    scan, however large the ledger), and their last ``STRIP_RUNS`` runs are read
    in one query.
    """
    recent_ids = ledger.order_by("-run_time").values_list("job_id", flat=True)[:ACTIVITY_SCAN]
    ids = list(dict.fromkeys(recent_ids))[:DASHBOARD_JOBS]
    if not ids:
        return []
    ranked = (
        ledger.filter(job_id__in=ids)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("job_id")],
                order_by=[F("run_time").desc(), F("id").desc()],
            )
        )
        .filter(rank__lte=STRIP_RUNS)
        .only("id", "job_id", "job_name", "run_time", "status", "duration", "exception", "reason")
    )
    runs: dict[str, list[DjangoJobExecution]] = {job_id: [] for job_id in ids}
    for run in ranked:
        runs[run.job_id].append(run)
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
                counts=", ".join(
                    f"{counts[status]} {ExecutionStatus(status).label}"
                    for status in ExecutionStatus.values
                    if counts.get(status)
                ),
                last=status_badge(latest.status, run_url(latest.pk)),
                since=relative(job_runs[0].run_time, now),
            )
        )
    return rows


#: The colours of the statuses in the pictures (as in the badges of admin.css).
STATUS_COLOURS = {
    ExecutionStatus.PENDING: "#7a8fa6",
    ExecutionStatus.RUNNING: "#2f74c0",
    ExecutionStatus.SUCCEEDED: "#2e8540",
    ExecutionStatus.FAILED: "#c62828",
    ExecutionStatus.MISSED: "#e07b00",
    ExecutionStatus.SKIPPED: "#8d8d8d",
    ExecutionStatus.INTERRUPTED: "#8e44ad",
}


def run_strip_svg(
    runs: list[DjangoJobExecution], now: datetime, width: int = 260, height: int = 26
) -> SafeString:
    """
    Runs over time as an inline SVG: one bar per run, placed at its scheduled time.

    The x axis runs from the oldest run shown to now; a bar's colour is its
    status and its height grows with its duration (runs without a duration, such
    as missed ones, are drawn at half height). Hovering a bar shows its details.
    """
    if not runs:
        return SafeString("")
    bar = 4
    start = from_db(runs[0].run_time)
    assert start is not None
    span = max((now - start).total_seconds(), 1.0)
    durations = [run.duration.total_seconds() for run in runs if run.duration is not None]
    longest = max(durations, default=0.0)
    bars = []
    for run in runs:
        at = from_db(run.run_time)
        assert at is not None
        x = min(max((at - start).total_seconds() / span, 0.0), 1.0) * (width - bar)
        if run.duration is None or longest <= 0:
            ratio = 0.5
        else:
            # Square root: a run ten times longer is about three times taller.
            ratio = 0.25 + 0.75 * math.sqrt(run.duration.total_seconds() / longest)
        bar_height = max(3.0, (height - 2) * ratio)
        title = f"{ExecutionStatus(run.status).label} · {format_instant(run.run_time)}"
        if run.duration is not None:
            title += f" · {format_duration(run.duration)}"
        detail = run.exception or run.reason
        if detail:
            title += f" · {detail.splitlines()[0][:120]}"
        bars.append(
            (
                f"{x:.1f}",
                f"{height - 1 - bar_height:.1f}",
                bar,
                f"{bar_height:.1f}",
                STATUS_COLOURS.get(run.status, "#999"),  # type: ignore[call-overload]
                run.status,
                title,
            )
        )
    return format_html(
        '<svg class="metronome-strip" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'role="img" aria-label="{label}"><line x1="0" y1="{base}" x2="{w}" y2="{base}" '
        'class="metronome-strip-axis"/>{bars}</svg>',
        w=width,
        h=height,
        base=height - 0.5,
        label=f"{len(runs)} recent runs",
        bars=format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" rx="1" fill="{}" '
            'class="metronome-bar-{}"><title>{}</title></rect>',
            bars,
        ),
    )
