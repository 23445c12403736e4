"""
The webhook notifier: a signed JSON POST per incident opened or resolved.

The body (schema ``django-metronome.incident/1``, see docs/alerts.md)::

    {"schema": "django-metronome.incident/1", "event": "incident.opened",
     "incident": {"id": 7, "job_id": "nightly-report", "kind": "overdue",
                  "detail": "...", "opened_at": "2026-...Z", "resolved_at": null},
     "sent_at": "2026-...Z"}

Headers: ``X-Metronome-Event`` (the event), ``X-Metronome-Delivery`` (the
same for every try of one delivery), ``X-Metronome-Timestamp`` (Unix seconds)
and, with ``WEBHOOK_SECRET``, ``X-Metronome-Signature: sha256=<hex>``: the
HMAC-SHA256, keyed with the secret, of the timestamp, a full stop and the raw
body. A receiver recomputes it, compares in constant time and refuses old
timestamps (replays).

A try that times out, fails to connect or gets a 5xx or 429 is retried up to
``WEBHOOK_RETRIES`` times, after 1 s, 2 s, 4 s ... (at most 30 s); any other
answer ends the delivery (2xx: delivered; else logged as refused).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from ..store.models import Incident

logger = logging.getLogger("django_metronome.alerts")

SCHEMA = "django-metronome.incident/1"

#: Seconds before the first retry (doubling, at most MAX_BACKOFF).
BACKOFF = 1.0
MAX_BACKOFF = 30.0


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def payload(incident: Incident, opened: bool) -> dict[str, Any]:
    """The JSON document of an incident's opening or resolution."""
    return {
        "schema": SCHEMA,
        "event": "incident.opened" if opened else "incident.resolved",
        "incident": {
            "id": incident.pk,
            "job_id": incident.job_id or None,
            "kind": incident.kind,
            "detail": incident.detail,
            "opened_at": _iso(incident.opened_at),
            "resolved_at": _iso(incident.resolved_at),
        },
        "sent_at": _iso(datetime.now(UTC)),
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Metronome-Signature`` header's value for this body and timestamp."""
    message = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def deliver(
    url: str,
    document: dict[str, Any],
    *,
    secret: str | None,
    timeout: float,
    retries: int,
    backoff: float = BACKOFF,
) -> bool:
    """POST the document, retrying as the module says; True if a 2xx answered."""
    body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    delivery = str(uuid.uuid4())
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(MAX_BACKOFF, backoff * 2 ** (attempt - 1)))
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "django-metronome",
            "X-Metronome-Event": str(document.get("event", "")),
            "X-Metronome-Delivery": delivery,
            "X-Metronome-Timestamp": timestamp,
        }
        if secret:
            headers["X-Metronome-Signature"] = signature(secret, timestamp, body)
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                response.read()
            return True
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code < 500 and exc.code != 429:
                logger.error(
                    "The webhook %s refused the %s delivery %s: HTTP %s; not retried.",
                    url,
                    document.get("event"),
                    delivery,
                    exc.code,
                )
                return False
            problem = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
            problem = str(exc) or type(exc).__name__
        logger.warning(
            "The webhook %s failed (%s) for delivery %s, try %d of %d.",
            url,
            problem,
            delivery,
            attempt + 1,
            retries + 1,
        )
    logger.error(
        "The webhook %s gave up on delivery %s after %d tries.", url, delivery, retries + 1
    )
    return False
