"""
System checks. Ids are stable: once published, an id keeps its meaning.

* ``django_metronome.E001``: ``METRONOME`` is not a dict.
* ``django_metronome.E002``: ``METRONOME`` has a key this release does not know.
* ``django_metronome.E003``: the default time zone is not a known IANA zone.
* ``django_metronome.E004``: ``METRONOME["DATABASE"]`` is not a configured database.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

from .conf import DEFAULTS, conf


@register(Tags.compatibility)
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    raw = conf.raw
    if not isinstance(raw, dict):
        return [
            Error(
                f"METRONOME must be a dict, not {type(raw).__name__}.",
                hint="Write METRONOME = {'TIME_ZONE': 'Europe/Berlin', ...} in your settings.",
                id="django_metronome.E001",
            )
        ]
    errors: list[CheckMessage] = []
    for key in sorted(set(raw) - set(DEFAULTS)):
        close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
        hint = f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(DEFAULTS)}."
        errors.append(
            Error(f"METRONOME has an unknown key {key!r}.", hint=hint, id="django_metronome.E002")
        )
    zone = conf.TIME_ZONE
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        errors.append(
            Error(
                f"The default time zone of jobs, {zone!r}, is not a known IANA time zone.",
                hint="Set METRONOME['TIME_ZONE'] (or TIME_ZONE) to a name such as 'Asia/Seoul'; "
                "install the tzdata package if the system has no zone database.",
                id="django_metronome.E003",
            )
        )
    database = conf.DATABASE
    if database is not None and database not in settings.DATABASES:
        errors.append(
            Error(
                f"METRONOME['DATABASE'] is {database!r}, which is not in DATABASES.",
                hint=f"Use one of {', '.join(map(repr, settings.DATABASES))}, or remove the key.",
                id="django_metronome.E004",
            )
        )
    return errors
