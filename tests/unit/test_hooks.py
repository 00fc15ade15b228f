"""The hook handler and the ingest ASGI app, driven in memory (no sockets)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from events.catalog import ALIASES, CANONICAL
from events.envelope import Envelope, IdSource
from ingest.app import create_app
from ingest.auth import wcs_signature
from ingest.config import IngestConfig
from ingest.hooks import MAX_UNKNOWN_LABELS, HookHandler
from ingest.metrics import HookMetrics

NOW = 1_700_000_000_123
STREAM = {
    "nodeId": "node-1",
    "appKey": "defaultApp",
    "sessionId": "sess-1",
    "mediaSessionId": "ms-1",
    "status": "PUBLISHING",
    "custom": {"token": "hls-secret", "room": "r1"},
}
CONNECT = {
    "nodeId": "node-1",
    "appKey": "defaultApp",
    "sessionId": "sess-1",
    "authToken": "auth-secret",
    "sipPassword": "sip-secret",
    "custom": {"list": [{"Token": "deep-secret"}]},
}
SECRETS = (b"hls-secret", b"auth-secret", b"sip-secret", b"deep-secret")


class ListBus:
    def __init__(self, fail: bool = False) -> None:
        self.envelopes: list[Envelope] = []
        self.fail = fail

    def publish(self, envelope: Envelope) -> None:
        if self.fail:
            raise RuntimeError("bus broken")
        self.envelopes.append(envelope)

    def depth(self) -> int:
        return len(self.envelopes)


class Handled:
    """A HookHandler with a fixed clock and ids, plus its bus and metrics."""

    def __init__(self, config: IngestConfig | None = None, bus: ListBus | None = None) -> None:
        self.bus = bus or ListBus()
        self.metrics = HookMetrics()
        self.handler = HookHandler(
            config or IngestConfig(), self.bus, self.metrics, lambda: NOW, IdSource("t")
        )
        self.handle = self.handler.handle


# ---- HookHandler -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "canonical", "family"),
    [(name, name, family) for name, family in CANONICAL.items()]
    + [(alias, name, CANONICAL[name]) for alias, name in ALIASES.items()]
    + [
        ("streamstatusevent", "StreamStatusEvent", "stream"),
        ("CONNECT", "connect", "connection"),
        ("SENDDTMF", "sendDTMF", "call"),
        ("FutureWcsEvent", "FutureWcsEvent", "unknown"),
    ],
)
def test_every_hook_name_is_accepted(name: str, canonical: str, family: str) -> None:
    hooks = Handled()
    raw = orjson.dumps(STREAM)
    assert hooks.handle(name, raw, []) == (200, raw)
    [envelope] = hooks.bus.envelopes
    assert (envelope["method"], envelope["family"]) == (canonical, family)


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a" * 65, "x/y", "Stream Status", "é"])
def test_invalid_names_are_404(name: str) -> None:
    hooks = Handled()
    status, body = hooks.handle(name, orjson.dumps(STREAM), [])
    assert status == 404
    assert "hook name" in orjson.loads(body)["error"]
    assert hooks.bus.envelopes == []


@pytest.mark.parametrize(
    ("raw", "status", "fragment"),
    [
        (b"{", 400, "not valid JSON"),
        (b"", 400, "not valid JSON"),
        (b'{"a":"\xff"}', 400, "not valid JSON"),
        (b"[1]", 400, "JSON object, not an array"),
        (b'"x"', 400, "not a string"),
        (b"1.5", 400, "not a number"),
        (b"null", 400, "not null"),
        (b"true", 400, "not a boolean"),
    ],
)
def test_bad_bodies_are_400_and_not_published(raw: bytes, status: int, fragment: str) -> None:
    hooks = Handled()
    answer_status, body = hooks.handle("StreamStatusEvent", raw, [])
    assert answer_status == status
    assert fragment in orjson.loads(body)["error"]
    assert hooks.bus.envelopes == []


def test_echo_is_byte_identical_and_envelope_is_redacted() -> None:
    hooks = Handled(IngestConfig(redact_keys=("room",)))  # defaults stay on
    raw = (
        b'{ "mediaSessionId" : "ms-1", "nodeId":"n",  '
        b'"custom":{"token":"hls-secret","room":"r"},\n"x":1.50}'
    )
    status, body = hooks.handle("StreamStatusEvent", raw, [])
    assert (status, body) == (200, raw)
    [envelope] = hooks.bus.envelopes
    assert envelope["body"] == {"mediaSessionId": "ms-1", "nodeId": "n", "custom": {}, "x": 1.5}
    assert (envelope["key"], envelope["received_at"], envelope["id"]) == ("ms-1", NOW, "t-1")


def test_connect_secrets_are_echoed_but_never_published() -> None:
    hooks = Handled()
    raw = orjson.dumps(CONNECT)
    status, body = hooks.handle("connect", raw, [])
    assert (status, body) == (200, raw)
    [envelope] = hooks.bus.envelopes
    published = orjson.dumps(envelope)
    assert not [secret for secret in SECRETS if secret in published]
    assert envelope["key"] == "node-1/sess-1"
    assert envelope["body"]["custom"] == {"list": [{}]}


def test_connect_gets_rest_client_config() -> None:
    config = {"StreamKeepAliveEvent": {"restExclude": "sdp", "restPolicy": "NOTIFY"}}
    hooks = Handled(IngestConfig(rest_client_config=config))
    status, body = hooks.handle("connect", orjson.dumps(CONNECT), [])
    assert status == 200
    assert orjson.loads(body) == {**CONNECT, "restClientConfig": config}
    raw = orjson.dumps(STREAM)
    assert hooks.handle("StreamStatusEvent", raw, []) == (200, raw)


def test_bus_failure_still_answers_and_is_counted() -> None:
    hooks = Handled(bus=ListBus(fail=True))
    raw = orjson.dumps(STREAM)
    assert hooks.handle("StreamStatusEvent", raw, []) == (200, raw)
    assert hooks.metrics.hooks == {("StreamStatusEvent", "publish_error"): 1}


def test_hmac_required_when_configured() -> None:
    hooks = Handled(IngestConfig(hmac_secret="k"))
    raw = orjson.dumps(STREAM)
    signed = [(b"authorization", b"WCS " + wcs_signature("k", raw).encode())]
    assert hooks.handle("StreamStatusEvent", raw, [])[0] == 403
    assert hooks.handle("StreamStatusEvent", raw + b" ", signed)[0] == 403
    assert hooks.handle("StreamStatusEvent", raw, signed) == (200, raw)
    assert len(hooks.bus.envelopes) == 1


def test_outcomes_are_counted_with_bounded_labels() -> None:
    hooks = Handled()
    raw = orjson.dumps(STREAM)
    hooks.handle("streamStatusEvent", raw, [])
    hooks.handle("StreamStatusEvent", b"[]", [])
    hooks.handle("bad-name", raw, [])
    for index in range(MAX_UNKNOWN_LABELS + 5):
        hooks.handle(f"Future{index}", raw, [])
    counts = hooks.metrics.hooks
    assert counts[("StreamStatusEvent", "ok")] == 1
    assert counts[("StreamStatusEvent", "not_object")] == 1
    assert counts[("_invalid", "bad_method")] == 1
    assert counts[("_other", "ok")] == 5
    assert len({label for label, _ in counts if label.startswith("Future")}) == MAX_UNKNOWN_LABELS


# ---- the ASGI app ------------------------------------------------------------------------------

Message = dict[str, Any]


def _scope(
    path: str, method: str = "POST", headers: list[tuple[bytes, bytes]] | None = None
) -> Message:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers or [],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


def _call(
    app: Callable[[Message, Any, Any], Coroutine[Any, Any, None]],
    scope: Message,
    chunks: list[bytes],
) -> tuple[list[Message], int]:
    """Run one request; returns the sent messages and how many receive() calls were made."""
    sent: list[Message] = []
    received = 0

    async def receive() -> Message:
        nonlocal received
        received += 1
        if received > len(chunks):
            return {"type": "http.disconnect"}
        return {
            "type": "http.request",
            "body": chunks[received - 1],
            "more_body": received < len(chunks),
        }

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent, received


def _app(config: IngestConfig | None = None, **kwargs: Any) -> tuple[FastAPI, ListBus]:
    bus = ListBus()
    return create_app(config or IngestConfig(), bus, now_ms=lambda: NOW, **kwargs), bus


def test_fast_path_answers_with_two_sends() -> None:
    app, bus = _app()
    raw = orjson.dumps(STREAM)
    sent, _ = _call(app, _scope("/wcs/StreamStatusEvent"), [raw[:10], raw[10:50], raw[50:]])
    start, body = sent
    assert start["status"] == 200
    assert dict(start["headers"]) == {
        b"content-type": b"application/json",
        b"content-length": b"%d" % len(raw),
    }
    assert body == {"type": "http.response.body", "body": raw}
    assert bus.envelopes[0]["received_at"] == NOW


def test_content_length_over_limit_is_413_without_reading() -> None:
    app, bus = _app(IngestConfig(max_body_bytes=100))
    scope = _scope("/wcs/connect", headers=[(b"content-length", b"101")])
    sent, received = _call(app, scope, [b"x" * 101])
    assert (sent[0]["status"], received) == (413, 0)
    assert (b"connection", b"close") in sent[0]["headers"]
    assert bus.envelopes == []


def test_streamed_body_over_limit_stops_reading() -> None:
    app, _ = _app(IngestConfig(max_body_bytes=100))
    sent, received = _call(app, _scope("/wcs/connect"), [b"{" + b" " * 60] * 10)
    assert sent[0]["status"] == 413
    assert received == 2
    assert "100 bytes" in orjson.loads(sent[1]["body"])["error"]
    body = orjson.dumps({"a": "x" * 90})  # exactly at the limit passes
    assert _call(app, _scope("/wcs/connect"), [body[:50], body[50:]])[0][0]["status"] == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD"])
def test_wrong_http_method_is_405(method: str) -> None:
    app, bus = _app()
    sent, _ = _call(app, _scope("/wcs/connect", method=method), [b"{}"])
    assert sent[0]["status"] == 405
    assert (b"allow", b"POST") in sent[0]["headers"]
    assert bus.envelopes == []


def test_missing_basic_credentials_get_a_challenge() -> None:
    app, _ = _app(IngestConfig(basic_auth=("u", "p")))
    sent, _ = _call(app, _scope("/wcs/connect"), [b"{}"])
    assert sent[0]["status"] == 401
    assert dict(sent[0]["headers"])[b"www-authenticate"].startswith(b"Basic")
    good = [(b"authorization", b"Basic " + base64.b64encode(b"u:p"))]
    assert _call(app, _scope("/wcs/connect", headers=good), [b"{}"])[0][0]["status"] == 200


def test_root_path_is_stripped() -> None:
    app, bus = _app()
    scope = {**_scope("/analytics/wcs/Connect"), "root_path": "/analytics"}
    assert _call(app, scope, [b"{}"])[0][0]["status"] == 200
    assert bus.envelopes[0]["method"] == "connect"


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/wcs/StreamStatusEvent", orjson.dumps(STREAM)),
        ("/wcs/connect", orjson.dumps(CONNECT)),
        ("/wcs/StreamStatusEvent", b"not json"),
        ("/wcs/bad-name", b"{}"),
    ],
)
def test_documented_route_answers_like_the_fast_path(path: str, raw: bytes) -> None:
    config = IngestConfig(rest_client_config={"connect": {"restPolicy": "NOTIFY"}})
    app, _ = _app(config)
    fast, _ = _call(app, _scope(path), [raw])
    routed, _ = _call(lambda s, r, w: FastAPI.__call__(app, s, r, w), _scope(path), [raw])
    assert routed[0]["status"] == fast[0]["status"]
    assert routed[1]["body"] == fast[1]["body"]
    assert (b"content-type", b"application/json") in routed[0]["headers"]


async def _get(app: FastAPI, path: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        return await client.get(path)


def test_health_merges_fields() -> None:
    app, _ = _app(health=lambda: {"queue": 3})
    response = asyncio.run(_get(app, "/health"))
    assert (response.status_code, response.json()) == (200, {"status": "ok", "queue": 3})


def test_metrics_count_requests_and_append_extra() -> None:
    app, _ = _app(extra_metrics=lambda: "wcs_runner_lag_seconds 0.5")
    _call(app, _scope("/wcs/StreamStatusEvent"), [orjson.dumps(STREAM)])
    _call(app, _scope("/wcs/StreamStatusEvent"), [b"["])
    response = asyncio.run(_get(app, "/metrics"))
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert 'wcs_hooks_total{method="StreamStatusEvent",outcome="ok"} 1\n' in text
    assert 'wcs_hooks_total{method="StreamStatusEvent",outcome="bad_json"} 1\n' in text
    assert "wcs_hook_latency_seconds_count 2\n" in text
    assert "wcs_ingest_queue_depth 1\n" in text
    assert text.endswith("wcs_runner_lag_seconds 0.5\n")


def test_openapi_documents_the_hook_route() -> None:
    app, _ = _app()
    spec = asyncio.run(_get(app, "/openapi.json")).json()
    operation = spec["paths"]["/wcs/{method}"]["post"]
    description = operation["parameters"][0]["schema"]["description"]
    assert all(f"`{name}`" in description for name in (*CANONICAL, *ALIASES))
    assert {"200", "400", "403", "404", "413"} <= set(operation["responses"])
