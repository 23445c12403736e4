"""
Signals a project can connect to: incidents and fires that went wrong.

* ``incident_opened`` / ``incident_resolved`` (sender: the ``Incident`` model;
  ``incident``: the row): an expectation broke, or its condition cleared. Sent
  once per incident by the process that opened or resolved it, from that
  process's announcer thread (or where ``manage.py metronome watch`` runs).
* ``fire_failed`` (sender: the scheduler; ``job_id``, ``run_time``,
  ``exception``, ``traceback``): a job raised. Sent from the job's own thread,
  right after it ended.
* ``fire_missed`` (sender: the scheduler; ``job_id``, ``run_time``,
  ``lateness`` in seconds): a fire came later than its grace time and was not
  run. Sent from the scheduler's loop thread: keep receivers quick (hand slow
  work to a queue), for the loop waits for them.

Nothing is built for these signals while nobody listens.
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["fire_failed", "fire_missed", "incident_opened", "incident_resolved"]

incident_opened = Signal()
incident_resolved = Signal()
fire_failed = Signal()
fire_missed = Signal()
