"""The ingest app behind a real uvicorn (uvloop, httptools) on a free 127.0.0.1 port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
import uvicorn

from events.bus import InMemoryBus
from events.envelope import Envelope
from ingest.app import create_app
from ingest.config import IngestConfig

pytestmark = pytest.mark.integration

STREAM = {
    "nodeId": "node-1",
    "appKey": "defaultApp",
    "sessionId": "sess-1",
    "mediaSessionId": "ms-1",
    "status": "PUBLISHING",
    "custom": {"token": "hls-secret"},
}


@pytest.fixture
def served() -> Iterator[tuple[str, InMemoryBus]]:
    """Base URL of a running server and its bus (read from the test thread after answers)."""
    overflow: list[Envelope] = []
    bus = InMemoryBus(1000, overflow.append)
    app = create_app(IngestConfig(max_body_bytes=4096), bus)
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}", bus
        finally:
            server.should_exit = True
            thread.join(10)
    assert overflow == []


def _drain(bus: InMemoryBus) -> list[Envelope]:
    envelopes = []
    while bus.depth():
        envelope = bus.get_nowait()
        assert envelope is not None
        envelopes.append(envelope)
    return envelopes


def test_hooks_over_one_keep_alive_connection(served: tuple[str, InMemoryBus]) -> None:
    base, bus = served
    raw = orjson.dumps(STREAM)
    ports = set()

    def remember_port(response: httpx.Response) -> None:
        stream = response.extensions["network_stream"]
        ports.add(stream.get_extra_info("socket").getsockname()[1])

    with httpx.Client(base_url=base, event_hooks={"response": [remember_port]}) as client:
        for name in ("StreamStatusEvent", "streamstatusevent", "StreamKeepAliveEvent"):
            response = client.post(f"/wcs/{name}", content=raw)
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            assert response.content == raw
    assert len(ports) == 1  # three requests, one TCP connection
    envelopes = _drain(bus)
    assert [e["method"] for e in envelopes] == ["StreamStatusEvent"] * 2 + ["StreamKeepAliveEvent"]
    assert all(e["body"]["custom"] == {} and e["key"] == "ms-1" for e in envelopes)


def test_errors_and_metrics(served: tuple[str, InMemoryBus]) -> None:
    base, bus = served
    with httpx.Client(base_url=base) as client:
        assert client.post("/wcs/StreamStatusEvent", content=b"{oops").status_code == 400
        assert client.post("/wcs/StreamStatusEvent", content=b"[]").status_code == 400
        assert client.post("/wcs/no-such", content=b"{}").status_code == 404
        assert client.get("/wcs/StreamStatusEvent").status_code == 405
        big = orjson.dumps({"pad": "x" * 5000})
        assert client.post("/wcs/StreamStatusEvent", content=big).status_code == 413
        chunks = iter([b'{"pad": "', b"x" * 5000, b'"}'])  # no Content-Length: chunked upload
        assert client.post("/wcs/StreamStatusEvent", content=chunks).status_code == 413
        assert client.post("/wcs/connect", content=b"{}").status_code == 200
        text = client.get("/metrics").text
        health = client.get("/health").json()
    assert _drain(bus)[0]["method"] == "connect"
    for outcome, count in (
        ("bad_json", 1),
        ("not_object", 1),
        ("bad_http_method", 1),
        ("too_large", 2),
    ):
        assert (
            f'wcs_hooks_total{{method="StreamStatusEvent",outcome="{outcome}"}} {count}\n' in text
        )
    assert 'wcs_hooks_total{method="_invalid",outcome="bad_method"} 1\n' in text
    assert 'wcs_hooks_total{method="connect",outcome="ok"} 1\n' in text
    assert "wcs_hook_latency_seconds_count 7\n" in text
    assert "wcs_ingest_queue_depth 1\n" in text
    assert health == {"status": "ok"}


def test_openapi_lists_the_hook_route(served: tuple[str, InMemoryBus]) -> None:
    base, _ = served
    with httpx.Client(base_url=base) as client:
        spec = client.get("/openapi.json").json()
        docs = client.get("/docs")
    assert "post" in spec["paths"]["/wcs/{method}"]
    assert (
        "StreamKeepAliveEvent"
        in spec["paths"]["/wcs/{method}"]["post"]["parameters"][0]["schema"]["description"]
    )
    assert docs.status_code == 200
