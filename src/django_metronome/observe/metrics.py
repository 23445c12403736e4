"""
Prometheus/OpenMetrics metrics, computed from the database at each scrape.

:class:`MetronomeCollector` is a ``prometheus-client`` collector that reads
the job table, the run ledger, the scheduler processes and the open incidents
each time it is collected, as kube-state-metrics does for Kubernetes'
CronJobs: every web process serves the same numbers, and no multiprocess
registry is needed. Five queries per scrape, whatever the number of jobs (one of them reads the
retained ledger through, grouped by job and status; see ``docs/metrics.md``
for its cost).

The names follow Prometheus' conventions (``metronome_`` prefix, base units,
``_seconds``, ``_total``); the job id (``job_id``) is the only label whose
values grow with the data, and a scheduler process's identity (``node``)
changes only when a process starts. The counters count the rows of the
retained ledger: pruning lowers them, which ``rate()`` and ``increase()``
treat as a counter reset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Sum

try:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        InfoMetricFamily,
        Metric,
        SummaryMetricFamily,
    )
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.registry import Collector, CollectorRegistry
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError(
        "django-metronome's metrics need prometheus-client: install it with "
        "`pip install django-metronome[metrics]`."
    ) from exc

from ..conf import conf
from ..store.db import database_alias, utcnow
from ..store.models import (
    OPEN_STATUSES,
    DjangoJob,
    DjangoJobExecution,
    ExecutionStatus,
    Incident,
    IncidentKind,
    SchedulerNode,
)

__all__ = ["OUTCOMES", "MetronomeCollector", "collect", "exposition", "registry"]

#: The outcomes ``metronome_job_fires_total`` counts: the statuses a fire ends in.
OUTCOMES = (
    ExecutionStatus.SUCCEEDED,
    ExecutionStatus.FAILED,
    ExecutionStatus.MISSED,
    ExecutionStatus.SKIPPED,
    ExecutionStatus.INTERRUPTED,
)
#: Fires whose lateness is how late the job started (a missed fire's is how late it
#: was given up: not counted with them).
STARTED_OUTCOMES = frozenset(
    {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.INTERRUPTED}
)


class MetronomeCollector(Collector):
    """
    django-metronome's metrics, read from the database each time they are collected.

    Register it with any ``prometheus-client`` registry (``REGISTRY.register(
    MetronomeCollector())`` adds them to the default one), or serve
    :func:`registry` through :func:`django_metronome.observe.views.metrics_view`.
    ``using`` is the database alias of the job tables (default: as everywhere,
    ``METRONOME["DATABASE"]`` or the routers'); ``now`` gives the current
    instant (for tests).
    """

    def __init__(self, using: str | None = None, now: Callable[[], datetime] | None = None) -> None:
        self.using = using
        self.now = now or utcnow

    def collect(self) -> Iterator[Metric]:
        yield from collect(database_alias(self.using), self.now())


def registry(using: str | None = None) -> CollectorRegistry:
    """A registry of django-metronome's metrics alone, for one scrape."""
    metrics = CollectorRegistry(auto_describe=False)
    metrics.register(MetronomeCollector(using))
    return metrics


def exposition(accept: str = "", using: str | None = None) -> tuple[bytes, str]:
    """
    The metrics as text, and its content type: OpenMetrics if ``accept`` (an
    ``Accept`` header) asks for it, else Prometheus' text format.
    """
    encode, content_type = choose_encoder(accept)
    return encode(registry(using)), content_type


def collect(using: str, now: datetime) -> list[Metric]:
    """Every metric, as the database has it at ``now``: five queries."""
    return [*_job_metrics(using), *_scheduler_metrics(using, now), *_incident_metrics(using)]


def _timestamp(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _job_metrics(using: str) -> Iterable[Metric]:
    info = InfoMetricFamily(
        "metronome_job", "A job: its name and where it comes from.", labels=["job_id"]
    )
    next_fire = GaugeMetricFamily(
        "metronome_job_next_fire_timestamp_seconds",
        "When the job fires next, in Unix time; absent while it is paused.",
        labels=["job_id"],
        unit="seconds",
    )
    paused = GaugeMetricFamily(
        "metronome_job_paused", "1 if the job is paused, else 0.", labels=["job_id"]
    )
    quarantined = GaugeMetricFamily(
        "metronome_job_quarantined",
        "1 if the job is quarantined (its row cannot be loaded or its function is "
        "refused: it does not run until fixed), else 0.",
        labels=["job_id"],
    )
    orphaned = GaugeMetricFamily(
        "metronome_job_orphaned",
        "1 if the job is declared in code but by no running scheduler process (so "
        "none runs it), else 0.",
        labels=["job_id"],
    )
    fires = CounterMetricFamily(
        "metronome_job_fires",
        "Fires of the job in the retained run history, by outcome. Pruning the history "
        "lowers it: rate() and increase() take that for a counter reset.",
        labels=["job_id", "outcome"],
    )
    lateness = SummaryMetricFamily(
        "metronome_job_lateness_seconds",
        "How long after its scheduled time each fire of the job started, over the fires "
        "in the retained run history that started and ended.",
        labels=["job_id"],
        unit="seconds",
    )
    duration = SummaryMetricFamily(
        "metronome_job_duration_seconds",
        "How long each fire of the job ran, over the fires in the retained run history "
        "that ended with a known duration.",
        labels=["job_id"],
        unit="seconds",
    )
    last_fire = GaugeMetricFamily(
        "metronome_job_last_fire_timestamp_seconds",
        "When the job's latest fire with this outcome in the retained run history ended, "
        "in Unix time; absent when it has none. Pruning does not move it (the newest rows "
        "are kept), so alerts on recent failures use it rather than the counter.",
        labels=["job_id", "outcome"],
        unit="seconds",
    )
    last_success = GaugeMetricFamily(
        "metronome_job_last_success_timestamp_seconds",
        "When the job's latest successful fire in the retained run history finished, "
        "in Unix time; absent when it has none.",
        labels=["job_id"],
        unit="seconds",
    )

    jobs = DjangoJob.objects.using(using).order_by("id")
    ids = []
    for job_id, name, source, next_run_time, quarantined_at, orphaned_at in jobs.values_list(
        "id", "name", "source", "next_run_time", "quarantined_at", "orphaned_at"
    ):
        ids.append(job_id)
        labels = [job_id]
        info.add_metric(labels, {"name": name, "source": source})
        if next_run_time is not None:
            next_fire.add_metric(labels, next_run_time.timestamp())
        paused.add_metric(labels, float(next_run_time is None))
        quarantined.add_metric(labels, float(quarantined_at is not None))
        orphaned.add_metric(labels, float(orphaned_at is not None))

    history = _history(using)
    for job_id in ids:
        per_status = history.get(job_id, {})
        for outcome in OUTCOMES:
            row = per_status.get(outcome)
            fires.add_metric([job_id, outcome.value], row["fires"] if row else 0)
            if row is not None and (ended := _timestamp(row["last"])) is not None:
                last_fire.add_metric([job_id, outcome.value], ended)
        started = [row for status, row in per_status.items() if status in STARTED_OUTCOMES]
        lateness.add_metric(
            [job_id],
            sum(row["late"] for row in started),
            sum(_seconds(row["lateness"]) for row in started),
        )
        rows = per_status.values()
        duration.add_metric(
            [job_id],
            sum(row["timed"] for row in rows),
            sum(_seconds(row["duration"]) for row in rows),
        )
        succeeded = per_status.get(ExecutionStatus.SUCCEEDED)
        if succeeded is not None and (last := _timestamp(succeeded["last"])) is not None:
            last_success.add_metric([job_id], last)
    return [
        info,
        next_fire,
        paused,
        quarantined,
        orphaned,
        fires,
        lateness,
        duration,
        last_fire,
        last_success,
    ]


def _history(using: str) -> dict[str, dict[str, dict[str, Any]]]:
    """The retained ledger's final rows, per job and status: counts, sums, the latest end."""
    rows = (
        DjangoJobExecution.objects.using(using)
        .filter(status__in=OUTCOMES)
        .values("job_id", "status")
        .annotate(
            fires=Count("pk"),
            late=Count("lateness"),
            lateness=Sum("lateness"),
            timed=Count("duration"),
            duration=Sum("duration"),
            last=Max("finished_at"),
        )
        .order_by()
    )
    history: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        history.setdefault(row["job_id"], {})[row["status"]] = dict(row)
    return history


def _seconds(value: Any) -> float:
    return 0.0 if value is None else value.total_seconds()


def _scheduler_metrics(using: str, now: datetime) -> Iterable[Metric]:
    info = InfoMetricFamily(
        "metronome_scheduler",
        "A scheduler process not stopped: its host and process id.",
        labels=["node"],
    )
    up = GaugeMetricFamily(
        "metronome_scheduler_up",
        "1 if the scheduler process heart-beat within DEAD_AFTER, else 0 (the others "
        "will presume it dead).",
        labels=["node"],
    )
    heartbeat_age = GaugeMetricFamily(
        "metronome_scheduler_heartbeat_age_seconds",
        "Seconds since the scheduler process's last heartbeat, when scraped.",
        labels=["node"],
        unit="seconds",
    )
    started = GaugeMetricFamily(
        "metronome_scheduler_start_time_seconds",
        "When the scheduler process started, in Unix time.",
        labels=["node"],
        unit="seconds",
    )
    clock_offset = GaugeMetricFamily(
        "metronome_scheduler_clock_offset_seconds",
        "The database server's clock minus the scheduler process's, at its last "
        "heartbeat; absent with CLOCK = 'local'.",
        labels=["node"],
        unit="seconds",
    )
    running = GaugeMetricFamily(
        "metronome_scheduler_running_fires",
        "Fires the scheduler process is running now.",
        labels=["node"],
    )
    claimed = GaugeMetricFamily(
        "metronome_scheduler_claimed_fires",
        "Fires the scheduler process has claimed and not started yet.",
        labels=["node"],
    )
    pending = GaugeMetricFamily(
        "metronome_pending_fires",
        "Fires waiting for any scheduler process to take them: run-now requests, and "
        "fires handed back by a process that stopped or died before starting them.",
    )

    open_fires: dict[tuple[str, str], int] = {}
    for node, status, count in (
        DjangoJobExecution.objects.using(using)
        .filter(status__in=OPEN_STATUSES)
        .values_list("node", "status")
        .annotate(count=Count("pk"))
        .order_by()
    ):
        open_fires[node, status] = open_fires.get((node, status), 0) + count
    pending.add_metric(
        [],
        sum(n for (_, status), n in open_fires.items() if status == ExecutionStatus.PENDING),
    )
    dead_after = conf.DEAD_AFTER
    for node in SchedulerNode.objects.using(using).filter(stopped_at__isnull=True).order_by("id"):
        labels = [node.id]
        age = (now - node.last_heartbeat).total_seconds()
        info.add_metric(labels, {"hostname": node.hostname, "pid": str(node.pid)})
        up.add_metric(labels, float(age <= dead_after))
        heartbeat_age.add_metric(labels, age)
        started.add_metric(labels, node.started_at.timestamp())
        if node.clock_offset is not None:
            clock_offset.add_metric(labels, node.clock_offset)
        running.add_metric(labels, open_fires.get((node.id, ExecutionStatus.RUNNING), 0))
        claimed.add_metric(labels, open_fires.get((node.id, ExecutionStatus.CLAIMED), 0))
    return [info, up, heartbeat_age, started, clock_offset, running, claimed, pending]


def _incident_metrics(using: str) -> Iterable[Metric]:
    open_count = GaugeMetricFamily(
        "metronome_incidents_open",
        "Incidents open now (expectations broken and not cleared; see docs/alerts.md), by kind.",
        labels=["kind"],
    )
    opened = GaugeMetricFamily(
        "metronome_job_incident_opened_timestamp_seconds",
        "When the job's open incident of this kind opened, in Unix time; absent when none is open.",
        labels=["job_id", "kind"],
        unit="seconds",
    )
    counts = dict.fromkeys(IncidentKind.values, 0)
    for job_id, kind, opened_at in (
        Incident.objects.using(using)
        .filter(is_open=True)
        .order_by("job_id", "kind")
        .values_list("job_id", "kind", "opened_at")
    ):
        counts[kind] = counts.get(kind, 0) + 1
        if job_id:
            opened.add_metric([job_id, kind], opened_at.timestamp())
    for kind, count in counts.items():
        open_count.add_metric([kind], count)
    return [open_count, opened]
