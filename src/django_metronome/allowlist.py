"""Moved to :mod:`django_metronome.store.allowlist`; this path keeps working."""

from .store.allowlist import allowed_prefixes, check_allowed, is_allowed, refusal, resolve

__all__ = ["allowed_prefixes", "check_allowed", "is_allowed", "refusal", "resolve"]
