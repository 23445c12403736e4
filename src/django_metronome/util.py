"""Moved to :mod:`django_metronome.store.db`; ``close_old_connections`` for your jobs stays here."""

from .store.db import close_old_connections, from_db, to_db, utcnow

__all__ = ["close_old_connections", "from_db", "to_db", "utcnow"]
