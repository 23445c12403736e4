"""
The app's models, as Django finds them: defined in :mod:`django_metronome.store.models`.

``from django_metronome.models import DjangoJob, DjangoJobExecution, SchedulerNode``
keeps working; the migrations name the fields through this module too.
"""

from .store.models import *  # noqa: F403
from .store.models import __all__  # noqa: F401
