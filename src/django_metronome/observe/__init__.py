"""
What the database says about the scheduler, for the tools people watch it with.

* :mod:`.health`: is it healthy? One answer for ``manage.py metronome health``
  and for django-health-check's plugin (:mod:`.health_check`).
* :mod:`.metrics`: Prometheus/OpenMetrics metrics, computed from the database
  at each scrape (a ``prometheus-client`` collector), so that every web process
  serves the same numbers; :mod:`.views` serves them, behind :mod:`.access`.

Nothing here writes: each module reads the store's tables.
"""
