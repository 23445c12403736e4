"""The webhook notifier against a real HTTP server on 127.0.0.1: body, signature, retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from django_metronome.alerts import webhook
from django_metronome.alerts.notifiers import notify
from django_metronome.models import Incident, IncidentKind

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SECRET = "s3cret"


class Receiver:
    """A local HTTP server that records each POST and answers with the next status."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """The local server is reached directly, whatever proxy the environment names."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def verify(headers: dict[str, str], body: bytes, secret: str = SECRET) -> bool:
    """What a receiver does: recompute the signature over timestamp.body, compare."""
    expected = hmac.new(
        secret.encode(), headers["x-metronome-timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(headers["x-metronome-signature"], f"sha256={expected}")


def incident(**kwargs: Any) -> Incident:
    fields = {"pk": 7, "job_id": "report", "kind": IncidentKind.FAILING, "opened_at": NOW}
    fields.update(kwargs)
    return Incident(detail="The last run failed; no failure is expected.", **fields)


def test_a_signed_post_with_the_documented_schema(receiver):
    assert webhook.deliver(
        receiver.url, webhook.payload(incident(), True), secret=SECRET, timeout=5, retries=0
    )
    [(headers, body)] = receiver.posts
    assert verify(headers, body)
    assert not verify(headers, body, secret="other")
    assert headers["content-type"] == "application/json"
    assert headers["x-metronome-event"] == "incident.opened"
    assert abs(int(headers["x-metronome-timestamp"]) - time.time()) < 60
    document = json.loads(body)
    assert document.pop("sent_at").endswith("Z")
    assert document == {
        "schema": "django-metronome.incident/1",
        "event": "incident.opened",
        "incident": {
            "id": 7,
            "job_id": "report",
            "kind": "failing",
            "detail": "The last run failed; no failure is expected.",
            "opened_at": "2026-11-25T12:00:00Z",
            "resolved_at": None,
        },
    }


def test_without_a_secret_no_signature(receiver):
    document = webhook.payload(incident(job_id="", kind=IncidentKind.NO_SCHEDULER), False)
    assert webhook.deliver(receiver.url, document, secret=None, timeout=5, retries=0)
    [(headers, body)] = receiver.posts
    assert "x-metronome-signature" not in headers
    assert json.loads(body)["incident"]["job_id"] is None
    assert json.loads(body)["event"] == "incident.resolved"


def test_server_errors_are_retried_with_backoff_then_delivered(receiver, caplog):
    receiver.statuses = [500, 503, 200]
    started = time.monotonic()
    assert webhook.deliver(
        receiver.url,
        webhook.payload(incident(), True),
        secret=SECRET,
        timeout=5,
        retries=3,
        backoff=0.05,
    )
    assert time.monotonic() - started >= 0.05 + 0.1  # 0.05 s, then 0.1 s
    assert len(receiver.posts) == 3
    assert len({headers["x-metronome-delivery"] for headers, _ in receiver.posts}) == 1
    assert all(verify(headers, body) for headers, body in receiver.posts)
    assert "HTTP 500" in caplog.text and "try 1 of 4" in caplog.text


def test_retries_are_bounded(receiver, caplog):
    receiver.statuses = [500] * 10
    assert not webhook.deliver(
        receiver.url,
        webhook.payload(incident(), True),
        secret=None,
        timeout=5,
        retries=2,
        backoff=0.01,
    )
    assert len(receiver.posts) == 3
    assert "gave up on delivery" in caplog.text


def test_a_client_error_is_not_retried(receiver, caplog):
    receiver.statuses = [401]
    assert not webhook.deliver(
        receiver.url, webhook.payload(incident(), True), secret=None, timeout=5, retries=3
    )
    assert len(receiver.posts) == 1
    assert "HTTP 401; not retried" in caplog.text


def test_a_slow_server_times_out_and_is_retried(receiver):
    receiver.delay = 0.5
    assert not webhook.deliver(
        receiver.url,
        webhook.payload(incident(), True),
        secret=None,
        timeout=0.1,
        retries=1,
        backoff=0.01,
    )
    assert len(receiver.posts) == 2


def test_a_refused_connection_is_retried_and_logged(caplog):
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        url = f"http://127.0.0.1:{closed.server_address[1]}/"
    assert not webhook.deliver(url, {}, secret=None, timeout=1, retries=1, backoff=0.01)
    assert "try 2 of 2" in caplog.text


def test_the_webhook_notifier_reads_the_settings(receiver, settings):
    settings.METRONOME = {
        "NOTIFIERS": ["webhook"],
        "WEBHOOK_URL": receiver.url,
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_RETRIES": 0,
    }
    notify(incident(resolved_at=NOW), opened=False)
    [(headers, body)] = receiver.posts
    assert verify(headers, body)
    assert json.loads(body)["incident"]["resolved_at"] == "2026-11-25T12:00:00Z"
