"""A job for the incident tests: it fails while a file exists (the test decides)."""

from __future__ import annotations

import os


def fail_while(path: str) -> None:
    if os.path.exists(path):
        raise RuntimeError(f"failing on purpose while {path} exists")
