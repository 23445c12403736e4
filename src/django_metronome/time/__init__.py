"""
The time core: when a schedule fires, in pure functions of (trigger, after, now, zone).

No Django here (``tests/test_layers.py`` imports this package where Django
cannot be imported, and the import-linter contracts in ``pyproject.toml``
forbid it): crontab parsing and Debian's DST rules (:mod:`.crontab`), the one
zone lookup (:mod:`.zones`), triggers and their next fire times
(:mod:`.triggers`), the plan for a job's due fires (:mod:`.firing`),
previews and descriptions (:mod:`.preview`, :mod:`.describe`), the JSON of
triggers, zones and datetimes (:mod:`.codecs`), durations in words
(:mod:`.text`), refusing bad trigger arguments (:mod:`.validation`) and the
process's clock against the database's (:mod:`.clock`).
"""

from __future__ import annotations

# CrontabTrigger, BusinessDays, Limits and JitteredTrigger register their JSON codecs
# when their modules are imported: import them with the package, so that any
# process can load a stored job that uses them.
from . import calendars as _calendars  # noqa: F401
from . import jitter as _jitter  # noqa: F401
from . import limits as _limits  # noqa: F401
from . import triggers as _triggers  # noqa: F401
