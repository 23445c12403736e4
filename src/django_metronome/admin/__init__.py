"""
The admin: jobs, their run ledger, the scheduler processes, and a dashboard.

Jobs are never edited as rows here: their function and JSON state are shown
read-only, and they change only through four verbs, each a POST with CSRF
protection and its own model permission:

* run now (``django_metronome.run_djangojob``): writes a *pending* ledger row
  that a running scheduler process takes within its poll interval; the request
  never runs the job, and the schedule does not move;
* pause and pause until (``pause_djangojob``);
* resume (``resume_djangojob``).

Staff without a permission see the pages but not its buttons and actions, and
a POST made without it is refused with 403. Removing a job needs the delete
permission and keeps its history. The ledger is read-only; its rows go through
retention or with the delete permission.

The modules: :mod:`.jobs` (the job list), :mod:`.job_page`, :mod:`.actions`
(the verbs, their buttons and bulk actions), :mod:`.forms` (pause until),
:mod:`.ledger`, :mod:`.nodes`, :mod:`.dashboard` with :mod:`.svg` (the run
strips), :mod:`.filters`, and :mod:`.base` (what they share). The words for a
job's state, lengths of time and why nobody runs a job are the command line's
too (:mod:`django_metronome.present`).
"""

from __future__ import annotations

# Django imports this package to find the admin: importing the modules registers them.
from .jobs import DjangoJobAdmin
from .ledger import DjangoJobExecutionAdmin
from .nodes import SchedulerNodeAdmin

__all__ = ["DjangoJobAdmin", "DjangoJobExecutionAdmin", "SchedulerNodeAdmin"]
