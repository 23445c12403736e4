"""
Settings, read in one place.

Everything lives in one dict, ``settings.METRONOME``; each key is read lazily,
so ``override_settings`` works in tests. django-apscheduler's two settings,
``APSCHEDULER_DATETIME_FORMAT`` and ``APSCHEDULER_RUN_NOW_TIMEOUT``, keep their
meaning and are read here too.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

#: Every key ``METRONOME`` accepts, with its default.
DEFAULTS: dict[str, Any] = {
    # Database alias of the job tables; None asks Django's database routers.
    "DATABASE": None,
    # Default IANA time zone of jobs; None means settings.TIME_ZONE.
    "TIME_ZONE": None,
}


class Settings:
    """Typed, lazy access to ``settings.METRONOME`` and the legacy settings."""

    @property
    def raw(self) -> Any:
        return getattr(settings, "METRONOME", {})

    def _get(self, key: str) -> Any:
        raw = self.raw
        if isinstance(raw, dict) and key in raw:
            return raw[key]
        return DEFAULTS[key]

    @property
    def DATABASE(self) -> str | None:
        return self._get("DATABASE")

    @property
    def TIME_ZONE(self) -> str:
        return self._get("TIME_ZONE") or settings.TIME_ZONE or "UTC"

    @property
    def DATETIME_FORMAT(self) -> str:
        # django-apscheduler's default, kept for compatibility.
        return getattr(settings, "APSCHEDULER_DATETIME_FORMAT", "N j, Y, f:s a")

    @property
    def RUN_NOW_TIMEOUT(self) -> float:
        return getattr(settings, "APSCHEDULER_RUN_NOW_TIMEOUT", 15)


conf = Settings()
