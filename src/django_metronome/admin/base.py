"""
What every page of the admin shares: the database it reads, times, badges, links.

Times come in two kinds. A job's fire times (its next run, its previews) are
shown in the job's own time zone with the UTC offset, ``2026-11-26 08:00
+09:00``, since that is how its schedule is written. Instants of the ledger and
of the scheduler processes are shown in the admin's current time zone with
``APSCHEDULER_DATETIME_FORMAT`` (django-apscheduler's setting, kept). Lengths of
time are :func:`django_metronome.time.text.duration`, as on the command line.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from .. import present
from ..conf import conf
from ..store.db import database_alias, from_db
from ..store.models import DjangoJob, DjangoJobExecution, ExecutionStatus
from ..time.zones import format_offset, zone_or_utc
from .paging import KeyReader, LargeTablePaginator, is_filtered

#: Admin media of every page of the app.
CSS = {"all": ["django_metronome/admin.css"]}

#: A job is overdue when its next run time is this much older than the poll interval.
OVERDUE_MARGIN = timedelta(seconds=10)


class MetronomeAdmin(admin.ModelAdmin):
    """
    What the app's pages share: they read and write where the job tables live
    (``METRONOME["DATABASE"]`` or the routers), never add or edit rows as a
    form, have the app's style sheet, and link to the dashboard.
    """

    paginator = LargeTablePaginator

    class Media:
        css = CSS

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
    ) -> LargeTablePaginator:
        """Estimated or bounded counts, and pages read by their keys first (:mod:`.paging`)."""
        filtered = is_filtered(request)
        return LargeTablePaginator(
            queryset,
            per_page,
            orphans,
            allow_empty_first_page,
            filtered=filtered,
            keys=self.page_keys(request, queryset, filtered),
        )

    def page_keys(
        self, request: HttpRequest, queryset: QuerySet[Any], filtered: bool
    ) -> KeyReader | None:
        """
        How the list reads a page's keys, if cheaper than from the list itself
        (which it is by default: None).
        """
        return None

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).using(database_alias())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        context = {"dashboard_url": dashboard_url(), **(extra_context or {})}
        return super().changelist_view(request, context)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        context["dashboard_url"] = dashboard_url()
        if obj is not None:
            context.update(self.page_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def page_context(self, request: HttpRequest, obj: Any) -> dict[str, Any]:
        """What a row's own page shows besides its fields (for the app's templates)."""
        return {}


def instant_column(field: str, description: Any, ordering: str | None = None) -> Any:
    """A read-only column of an instant, in the admin's zone: ``created = instant_column(...)``."""

    @admin.display(description=description, ordering=ordering)
    def column(model_admin: Any, obj: Any) -> str:
        return format_instant(getattr(obj, field))

    return column


def overdue_threshold() -> timedelta:
    """How far in the past a next run time must be for the job to count as overdue."""
    return timedelta(seconds=conf.POLL_INTERVAL) + OVERDUE_MARGIN


# --- times and lengths of time --------------------------------------------------------


def format_in_zone(value: datetime | None, zone: str | None) -> str:
    """
    A fire time in a job's zone with its offset: ``2026-11-26 08:00 +09:00``.

    Seconds are shown when they are not zero. With DST the offset changes, so
    two fires an hour apart in UTC read right on both sides of the change.
    """
    if value is None:
        return ""
    local = from_db(value).astimezone(zone_or_utc(zone))
    pattern = "%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M"
    return f"{local.strftime(pattern)} {format_offset(local.utcoffset())}"


def format_instant(value: datetime | None) -> str:
    """An instant in the admin's current zone, with ``APSCHEDULER_DATETIME_FORMAT``."""
    if value is None:
        return ""
    local = timezone.localtime(from_db(value))
    if conf.DATETIME_FORMAT == DEFAULT_DATETIME_FORMAT and not _english():
        # The default is an English pattern: another language gets its own format.
        return formats.date_format(local, "DATETIME_FORMAT")
    return formats.date_format(local, conf.DATETIME_FORMAT)


#: django-apscheduler's ``APSCHEDULER_DATETIME_FORMAT`` when a project sets none.
DEFAULT_DATETIME_FORMAT = "N j, Y, f:s a"


def _english() -> bool:
    return (translation.get_language() or "en").split("-")[0] == "en"


def format_duration(value: timedelta | float | None) -> str:
    """A length of time as everywhere (``2.50 s``, ``3 min 5 s``); empty for None."""
    return present.length(value, empty="", words=translation)


# --- badges and flags ----------------------------------------------------------------------


def status_badge(status: str | None, url: str | None = None, title: str = "") -> SafeString:
    """A coloured badge for a ledger status (``never run`` for None)."""
    if not status:
        return format_html('<span class="metronome-badge metronome-none">{}</span>', _("never run"))
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


#: The style of each state word: a refused job looks as serious as a quarantined one.
STATE_STYLES = {present.REFUSED: present.QUARANTINED}


def state_flags(job: DjangoJob) -> SafeString:
    """Where a job stands as flags: the words of :func:`present.job_states`."""
    flags = []
    for state in present.job_states(job, translation):
        label = present.state_label(state.word, translation)
        item = flag(label, STATE_STYLES.get(state.word, state.word), state.reason)
        if state.until is not None:
            until = _("until {when}").format(when=format_in_zone(state.until, job.time_zone))
            item = format_html('{} <span class="metronome-until">{}</span>', item, until)
        if state.word == present.PAUSED and job.paused_at is not None:
            when = format_in_zone(job.paused_at, job.time_zone)
            who = present.pause_words(job, when, translation)
            item = format_html('{} <span class="metronome-pause-note">{}</span>', item, who)
        flags.append(item)
    return format_html_join(" ", "{}", ((item,) for item in flags))


# --- links -------------------------------------------------------------------------------


def job_url(job_id: str) -> str:
    return reverse("admin:django_metronome_djangojob_change", args=(quote(job_id),))


def run_url(run_id: int) -> str:
    return reverse("admin:django_metronome_djangojobexecution_change", args=(quote(run_id),))


def runs_of_job_url(job_id: str) -> str:
    url = reverse("admin:django_metronome_djangojobexecution_changelist")
    return f"{url}?{urlencode({'job': job_id})}"


def dashboard_url() -> str:
    return reverse("admin:django_metronome_dashboard")


def pending_too_long(run: DjangoJobExecution, now: datetime) -> bool:
    """A run-now request older than ``APSCHEDULER_RUN_NOW_TIMEOUT`` seconds, still pending."""
    return (now - from_db(run.run_time)).total_seconds() > float(conf.RUN_NOW_TIMEOUT)
