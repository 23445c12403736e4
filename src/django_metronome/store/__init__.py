"""
The store: the tables and every transaction on them.

:mod:`.models` (the tables; ``django_metronome.models`` re-exports them),
:mod:`.jobs` (a job's versioned JSON and the checks of what may be stored),
:mod:`.jobstore` (``DjangoJobStore``, APScheduler's store contract),
:mod:`.claims` (the claim transaction), :mod:`.ledger` (every change of a
fire's status) and :mod:`.bulk` (its batch SQL), :mod:`.nodes` (heartbeats
and the reaper), :mod:`.retention`, :mod:`.allowlist` (which functions a
stored job may call), :mod:`.recorder` (``register_events`` for stock
APScheduler schedulers), :mod:`.db` (transactions, retries, datetimes at the
database boundary) and :mod:`.sqlite` (its locking).

It may use the time core below it and Django's ORM; nothing from the loop,
the admin or the command line above it.
"""
