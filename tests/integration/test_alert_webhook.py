"""Alert webhooks against a tiny local HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from wcs_analytics.alert_webhooks import WebhookSender

pytestmark = pytest.mark.integration

ROW = {"alert_id": "abc", "rule": "call_failed_spike", "family": "call", "app_key": "app",
       "node_id": "*", "state": "firing", "fired_at": 1_700_000_060_000, "resolved_at": None,
       "window_start": 1_700_000_000_000, "failures": 30, "attempts": 50, "ratio": 0.6,
       "baseline": 1.25, "version": 1}  # fmt: skip


class Receiver(ThreadingHTTPServer):
    def __init__(self, answers: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.answers = answers  # status per request; 200 once exhausted
        self.bodies: list[Any] = []
        self.content_types: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/alerts"


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(orjson.loads(body))
        self.server.content_types.append(self.headers["Content-Type"])
        status = self.server.answers.pop(0) if self.server.answers else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    server = Receiver(list(request.param))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def wait_for(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("receiver", [[500, 503]], indirect=True)
def test_alertmanager_post_is_retried_after_5xx(receiver: Receiver) -> None:
    sender = WebhookSender(receiver.url, "alertmanager", backoff_s=0.01)
    sender.send([ROW])
    wait_for(lambda: sender.sent == 1)
    sender.close()
    assert sender.metrics() == {"sent": 1, "failed": 0, "dropped": 0, "retries": 2}
    assert len(receiver.bodies) == 3 and receiver.bodies[0] == receiver.bodies[2]
    (alert,) = receiver.bodies[-1]
    assert set(alert) == {"labels", "annotations", "startsAt"}
    assert alert["labels"]["alertname"] == "WcsFailedSpike"
    assert alert["labels"]["app_key"] == "app" and alert["startsAt"] == "2023-11-14T22:14:20.000Z"
    assert receiver.content_types == ["application/json"] * 3


@pytest.mark.parametrize("receiver", [[400]], indirect=True)
def test_client_errors_are_not_retried_and_plain_json_is_the_row(receiver: Receiver) -> None:
    sender = WebhookSender(receiver.url, "json", backoff_s=0.01)
    sender.send([ROW])
    sender.send([ROW | {"state": "resolved"}])
    wait_for(lambda: sender.sent + sender.failed == 2)
    sender.close()
    assert (sender.sent, sender.failed, sender.retries) == (1, 1, 0)
    assert receiver.bodies == [{"alerts": [ROW]}, {"alerts": [ROW | {"state": "resolved"}]}]


@pytest.mark.parametrize("receiver", [[500] * 10], indirect=True)
def test_retries_are_bounded(receiver: Receiver) -> None:
    sender = WebhookSender(receiver.url, attempts=3, backoff_s=0.01)
    sender.send([ROW])
    wait_for(lambda: sender.failed == 1)
    sender.close()
    assert len(receiver.bodies) == 3 and sender.retries == 2 and sender.sent == 0


def test_send_never_blocks_and_drops_when_the_queue_is_full() -> None:
    gate = threading.Event()
    sender = WebhookSender("http://127.0.0.1:9/", max_queue=2, sleep=lambda s: gate.wait(5))
    started = time.monotonic()
    for _ in range(10):
        sender.send([ROW])  # the thread is stuck retrying the first one
    assert time.monotonic() - started < 0.5
    assert sender.dropped >= 7
    gate.set()
    sender.close(timeout_s=5)
