"""
The words and figures the admin and the command line both show.

One owner each, so that the two say the same thing about the same job: where a
job stands (:func:`job_states`: active, paused, paused until …, quarantined,
refused, orphaned), why no scheduler process runs it (:func:`why_nobody_runs`),
the zone its times are shown in (:func:`job_zone`), how long ago something was
(:func:`ago`, :func:`relative`; lengths of time are
:func:`django_metronome.time.text.duration`), a process's clock against the
database's (:func:`clock_offset`) and the one line that says most about a run
(:func:`run_detail`).

Each surface dresses them its own way (HTML badges in the admin, plain text
and JSON on the command line); the words are the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from django.utils import translation

from .store import allowlist, limits, nodes
from .store.db import from_db
from .store.models import DjangoJob, DjangoJobExecution, JobChange, JobSource, SchedulerNode
from .time.overlap import BUFFER_ALL_LIMIT, UNBOUNDED_INSTANCES, Overlap, effective_overlap
from .time.preview import describe_trigger
from .time.text import ENGLISH, Words, duration
from .time.zones import zone_or_utc

__all__ = [
    "ACTIVE",
    "LIVE_NODES_READ",
    "ORPHANED",
    "PAUSED",
    "QUARANTINED",
    "REFUSED",
    "JobState",
    "ago",
    "can_run",
    "change_words",
    "clock_offset",
    "job_state",
    "job_states",
    "job_zone",
    "length",
    "live_nodes",
    "one_line",
    "overlap_words",
    "pause_words",
    "relative",
    "run_detail",
    "schedule_words",
    "state_label",
    "state_words",
    "why_nobody_runs",
]

# --- where a job stands -----------------------------------------------------------------

#: The words for a job's state; a job may be in several at once (orphaned and paused).
ACTIVE = "active"
PAUSED = "paused"
QUARANTINED = "quarantined"
#: A run-time job whose function the allow-list refuses (a row edited by hand): the
#: scheduler processes quarantine it instead of running it.
REFUSED = "refused"
ORPHANED = "orphaned"
#: A job that reached its ``max_runs``: it does not fire again, and is kept.
FINISHED = "finished"


@dataclass(frozen=True)
class JobState:
    """One word of a job's state, with what explains it."""

    #: ``active``, ``paused``, ``quarantined``, ``refused`` or ``orphaned``.
    word: str
    #: Why: the quarantine reason, the refusal, what orphaned means; may be empty.
    reason: str = ""
    #: For ``paused``: when the pause ends by itself, if it does.
    until: datetime | None = None


def job_states(job: DjangoJob, words: Words = ENGLISH) -> list[JobState]:
    """
    Where ``job`` stands, most serious first; ``[active]`` when nothing holds it.

    Quarantined (or refused), orphaned, paused (until a time): the order both
    the admin's flags and the command line's words follow. The reasons are in
    English unless ``words`` is a catalogue (``django.utils.translation``).
    """
    found = []
    if job.is_quarantined:
        found.append(JobState(QUARANTINED, job.quarantine_reason))
    elif job.source == JobSource.RUNTIME:
        # A row edited by hand shows at once; the schedulers quarantine it when they load it.
        refused = allowlist.refusal(job.id, job.func_ref)
        if refused is not None:
            found.append(JobState(REFUSED, refused))
    if job.orphaned_at is not None:
        orphaned = words.gettext("Declared in code by no running scheduler process.")
        found.append(JobState(ORPHANED, orphaned))
    if job.is_paused and limits.is_finished(job):
        found.append(JobState(FINISHED))  # max_runs reached: kept, with its history
    elif job.is_paused:
        found.append(JobState(PAUSED, until=from_db(job.paused_until)))
    return found or [JobState(ACTIVE)]


def job_state(job: DjangoJob) -> str:
    """One word for where ``job`` stands: the first of :func:`job_states`."""
    return job_states(job)[0].word


def state_words(job: DjangoJob, when: Any, words: Words = ENGLISH) -> str:
    """
    Where ``job`` stands in words: ``orphaned, paused until 2026-12-01 09:00:00+01:00``.

    ``when`` writes the end of a pause (an aware datetime) the way the caller
    writes times; ``words`` the language (English unless a catalogue).
    """
    return words.pgettext("list separator", ", ").join(
        state_label(state.word, words)
        if state.until is None
        else words.pgettext("job state", "{state} until {when}").format(
            state=state_label(state.word, words), when=when(state.until)
        )
        for state in job_states(job, words)
    )


def state_label(word: str, words: Words = ENGLISH) -> str:
    """A state word (``paused``) for people, in ``words``' language; the word is for programs."""
    labels = {
        ACTIVE: words.pgettext("job state", "active"),
        PAUSED: words.pgettext("job state", "paused"),
        QUARANTINED: words.pgettext("job state", "quarantined"),
        REFUSED: words.pgettext("job state", "refused"),
        ORPHANED: words.pgettext("job state", "orphaned"),
        FINISHED: words.pgettext("job state", "finished"),
    }
    return labels.get(word, word)


def schedule_words(job: DjangoJob, words: Words = translation) -> str:
    """
    A job's schedule for people, in the active language: ``At 08:00 every day (Asia/Seoul)``.

    :meth:`DjangoJob.describe_schedule` is the same in English, for programs (``--json``).
    """
    try:
        trigger = job.trigger()
    except Exception:
        return words.gettext("(a schedule this release cannot read)")
    try:
        return describe_trigger(trigger, words)
    except Exception:
        return job.describe_schedule()


def overlap_words(job: DjangoJob, words: Words = ENGLISH) -> str:
    """
    What a fire due while one of the job's fires runs does, with the policy's name:
    ``skip: a fire due while one runs is skipped``. Read from the stored state:
    the policy given (``overlap=``), or what ``max_instances`` alone means.
    """
    state = job.state if isinstance(job.state, dict) else {}
    try:
        instances = int(state.get("max_instances") or 1)
        policy = effective_overlap(state.get("overlap"), instances)
    except (TypeError, ValueError):
        return words.gettext("(a policy this release cannot read)")
    if policy == Overlap.SKIP:
        what = words.gettext("a fire due while one runs is skipped")
    elif policy == Overlap.BUFFER_ONE:
        what = words.gettext("one fire waits for the running one; more are skipped")
    elif policy == Overlap.BUFFER_ALL:
        what = words.gettext(
            "fires wait for the running one and start in order (at most {limit} wait)"
        ).format(limit=BUFFER_ALL_LIMIT)
    elif policy == Overlap.CANCEL_OTHER:
        what = words.gettext("a new fire asks the running one to stop, then starts")
    elif instances >= UNBOUNDED_INSTANCES:
        what = words.gettext("fires run side by side, without a bound")
    else:
        what = words.ngettext(
            "fires run side by side, at most {count} at once",
            "fires run side by side, at most {count} at once",
            instances,
        ).format(count=instances)
    return f"{policy.value}: {what}"


def pause_words(job: DjangoJob, when: str, words: Words = ENGLISH) -> str:
    """
    Who paused a job, when and why, while it is paused: ``by alice, 2026-12-01 09:00: Outage``.

    ``when`` is the pause's time, written the way the caller writes times;
    ``words`` the language (English unless a catalogue).
    """
    by = job.paused_by or words.pgettext("paused by", "unknown")
    if job.pause_note:
        return words.gettext("by {who}, {when}: {note}").format(
            who=by, when=when, note=job.pause_note
        )
    return words.gettext("by {who}, {when}").format(who=by, when=when)


def change_words(change: JobChange) -> str:
    """
    What a change of a job changed, on one line: ``max_instances: 1 → 3; overlap: null → "skip"``.

    Values are written as JSON; a change with no "before" (added, declared)
    lists what it set.
    """

    def text(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)

    before, after = change.before or {}, change.after or {}
    keys = list(dict.fromkeys([*before, *after]))
    if change.before is None:
        return "; ".join(f"{key}: {text(after[key])}" for key in keys)
    return "; ".join(f"{key}: {text(before.get(key))} → {text(after.get(key))}" for key in keys)


def job_zone(job: DjangoJob) -> tzinfo:
    """The zone a job's times are shown in: its own, or UTC for one this machine lacks."""
    return zone_or_utc(job.time_zone)


# --- who can run a job --------------------------------------------------------------------

#: The live processes read to tell whether one can run a job: more than any deployment has.
LIVE_NODES_READ = 200


def live_nodes(using: str, now: datetime | None = None) -> list[SchedulerNode]:
    """The scheduler processes alive at ``now``, most recently heart-beaten first."""
    return list(nodes.live(using, now).order_by("-last_heartbeat", "id")[:LIVE_NODES_READ])


def can_run(job: DjangoJob, live: list[SchedulerNode]) -> bool:
    """Whether one of the ``live`` processes may take a fire of ``job``."""
    if job.is_quarantined or job.orphaned_at is not None:
        return False
    if job.source == JobSource.RUNTIME:
        return bool(live)
    return any(job.pk in (node.declared or []) for node in live)


def why_nobody_runs(job: DjangoJob, live: list[SchedulerNode], words: Words = ENGLISH) -> str:
    """
    Why none of the ``live`` processes takes ``job``'s fires; empty when one can.

    A run asked for meanwhile stays pending in the ledger until this changes.
    """
    if job.is_quarantined:
        return words.gettext(
            "The job is quarantined: no scheduler process loads it until it is fixed."
        )
    if not live:
        return words.gettext(
            "No scheduler process is running: start one with `manage.py runscheduler`."
        )
    if not can_run(job, live):
        return words.gettext(
            "No running scheduler process declares this job in code, so none can run it "
            "until a process that declares it starts."
        )
    return ""


# --- lengths of time and clocks --------------------------------------------------------------


def ago(seconds: float, words: Words = ENGLISH) -> str:
    """``400 ms ago``, ``1 min 35 s ago``: how long ago something was (never in the future)."""
    return words.gettext("{duration} ago").format(duration=length(max(seconds, 0.0), words=words))


def length(value: timedelta | float | None, empty: str = "-", words: Words = ENGLISH) -> str:
    """A length of time: ``3 min 5 s``; ``empty`` for None; in ``words``' language."""
    return duration(value, empty=empty, words=words)


def relative(value: datetime | None, now: datetime, words: Words = ENGLISH) -> str:
    """``in 5 min``, ``3 h 2 min ago`` or ``now``, in whole seconds; empty for None."""
    if value is None:
        return ""
    delta = round((from_db(value) - now).total_seconds())
    if delta == 0:
        return words.pgettext("relative time", "now")
    if delta > 0:
        return words.gettext("in {duration}").format(duration=length(delta, words=words))
    return ago(-delta, words)


def clock_offset(offset: float | None, words: Words = ENGLISH) -> str:
    """
    A process's clock against the database's: ``30.250 s ahead of the database's``.

    ``offset`` is the database's clock minus the process's, in seconds (None: the
    process keeps its own clock).
    """
    if offset is None:
        return words.gettext("its own (CLOCK is 'local')")
    if abs(offset) < 0.0005:
        return words.gettext("in step with the database's")
    if offset > 0:
        return words.gettext("{seconds} s behind the database's").format(
            seconds=f"{abs(offset):.3f}"
        )
    return words.gettext("{seconds} s ahead of the database's").format(seconds=f"{abs(offset):.3f}")


# --- runs -----------------------------------------------------------------------------------


def one_line(text: str, limit: int = 80) -> str:
    """The first line of ``text``, cut to ``limit`` characters."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def run_detail(run: DjangoJobExecution, limit: int = 80) -> str:
    """The one line that says most about a run: its exception, else its reason."""
    return one_line(run.exception or run.reason, limit)
