"""
``manage.py metronome metrics``: the metrics the metrics view serves, printed.

For a textfile collector (node_exporter's ``--collector.textfile``), a cron
job, or a look by hand. The numbers are computed from the database, as the
view computes them (:mod:`django_metronome.observe.metrics`).
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError
from django.utils.translation import gettext_lazy

from .shell import Shell

NAME = "metrics"
HELP = gettext_lazy(
    "Print the scheduler's metrics in Prometheus' text format, computed from the database."
)
DESCRIPTION = gettext_lazy(
    "With --openmetrics, in the OpenMetrics format; with --json, every sample as data."
)

#: What --openmetrics asks the encoder for, as a scraper's Accept header would.
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--openmetrics",
        action="store_true",
        help=gettext_lazy(  # type: ignore[arg-type]  # argparse formats it when shown
            "Print the OpenMetrics format instead of Prometheus' text format."
        ),
    )


def handle(shell: Shell, *, openmetrics: bool, **_options: Any) -> None:
    try:
        from ..observe import metrics
    except ImportError as exc:
        raise CommandError(str(exc)) from exc
    if shell.as_json:
        shell.print_json(
            [
                {"name": sample.name, "labels": sample.labels, "value": sample.value}
                for family in metrics.registry(shell.using).collect()
                for sample in family.samples
            ]
        )
        return
    body, _content_type = metrics.exposition(OPENMETRICS if openmetrics else "", shell.using)
    # The text ends with a newline (OpenMetrics with "# EOF"): print it as it is.
    shell.stdout.write(body.decode(), ending="")
