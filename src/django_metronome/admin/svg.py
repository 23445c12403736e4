"""The dashboard's picture of a job's recent runs: one inline SVG bar per run."""

from __future__ import annotations

import math
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import ngettext

from .. import present
from ..store.db import from_db
from ..store.models import DjangoJobExecution, ExecutionStatus
from .base import format_duration, format_instant

#: The colours of the statuses in the pictures (as in the badges of admin.css).
STATUS_COLOURS = {
    ExecutionStatus.PENDING: "#7a8fa6",
    ExecutionStatus.RUNNING: "#2f74c0",
    ExecutionStatus.ENQUEUED: "#1f7a8c",
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
        detail = present.run_detail(run, 120)
        if detail:
            title += f" · {detail}"
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
        label=ngettext("{count} recent run", "{count} recent runs", len(runs)).format(
            count=len(runs)
        ),
        bars=format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" rx="1" fill="{}" '
            'class="metronome-bar-{}"><title>{}</title></rect>',
            bars,
        ),
    )
