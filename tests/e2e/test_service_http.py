"""The real service over real HTTP into the real ClickHouse engine (chDB)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest

from events.catalog import ALIASES, CANONICAL
from tests.e2e.service import Service, query
from tests.metrics_docs import undocumented

pytestmark = pytest.mark.e2e

NODE = "Xq1Yz2Wv3Ut4Sr5Qp6On7Ml8Kj9Ih0Gf@192.0.2.10"

SECRETS = ("S1p-Pa55-e2e-7731", "auth-tok-e2e-99120", "custom-tok-e2e-55410", "extra-e2e-3310")


def hook_body(method: str, n: int) -> dict[str, object]:
    return {
        "nodeId": NODE,
        "appKey": "e2eApp",
        "sessionId": f"sess-{n}",
        "callId": f"call-{n}",
        "id": f"msg-{n}",
        "messageId": f"msg-{n}",
        "mediaSessionId": f"ms-{n}",
        "operationId": f"op-{n}",
        "status": "ESTABLISHED",
        "name": f"stream-{n}",
        "note": f"{method} π ✓",
    }


def test_every_hook_method_is_echoed_and_stored(service: Service) -> None:
    names = [*CANONICAL, *ALIASES, "sendDtmf".upper(), "SomeFutureEvent"]
    sent: dict[str, bytes] = {}
    with httpx.Client(base_url=service.url) as client:
        for n, name in enumerate(names):
            raw = orjson.dumps(hook_body(name, n))
            answer = client.post(
                f"/wcs/{name}", content=raw, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 200, (name, answer.text)
            assert answer.headers["content-type"].startswith("application/json")
            assert answer.content == raw, name
            sent[f"sess-{n}"] = raw
        assert "/wcs/{method}" in client.get("/openapi.json").text
    assert service.stop() == 0
    rows = query(service.data_dir, "SELECT session_id, method, family, app_key FROM events")
    assert len(rows) == len(names)
    by_session = {row["session_id"]: row for row in rows}
    for n, name in enumerate(names):
        row = by_session[f"sess-{n}"]
        canonical = ALIASES.get(name) or next(
            (c for c in CANONICAL if c.lower() == name.lower()), name
        )
        assert row["method"] == canonical, name
        expected_family = CANONICAL.get(canonical, "unknown")
        assert row["family"] == expected_family, name
        assert row["app_key"] == "e2eApp"


def test_bad_input_is_refused_clearly_and_counted(service: Service) -> None:
    with httpx.Client(base_url=service.url) as client:
        not_json = client.post("/wcs/connect", content=b"{nope")
        assert not_json.status_code == 400
        assert "JSON" in not_json.json()["error"]
        not_object = client.post("/wcs/connect", content=b"[1, 2]")
        assert not_object.status_code == 400
        too_big = client.post("/wcs/connect", content=b'{"a":"' + b"x" * (1 << 20) + b'"}')
        assert too_big.status_code == 413
        for bad in ("1connect", "con-nect", "x" * 65):
            assert client.post(f"/wcs/{bad}", content=b"{}").status_code == 404, bad
        ok = client.post("/wcs/connect", content=b'{"nodeId":"n","sessionId":"s"}')
        assert ok.status_code == 200
        metrics = client.get("/metrics").text
    assert 'outcome="bad_json"' in metrics
    assert 'outcome="too_large"' in metrics
    assert service.stop() == 0
    assert query(service.data_dir, "SELECT count() AS n FROM events") == [{"n": 1}]


def test_secrets_never_reach_disk_or_logs(tmp_path: Path, service_factory: list[Service]) -> None:
    svc = Service(
        tmp_path / "data", args=("--redact-keys", "myExtraSecret", "--log-level", "debug")
    )
    service_factory.append(svc.start())
    sip, auth, custom_token, extra = SECRETS
    body = {
        "nodeId": NODE,
        "appKey": "secretApp",
        "sessionId": "s-secret",
        "sipLogin": "alice",
        "sipPassword": sip,
        "authToken": auth,
        "custom": {"token": custom_token, "nested": [{"myExtraSecret": extra}]},
    }
    raw = orjson.dumps(body)
    with httpx.Client(base_url=svc.url) as client:
        for method in ("connect", "ConnectionStatusEvent", "call"):
            answer = client.post(f"/wcs/{method}", content=raw)
            assert answer.content == raw  # the echo to WCS is unchanged
    assert svc.stop() == 0
    stored = query(svc.data_dir, "SELECT body FROM events")
    assert len(stored) == 3 and all("alice" in row["body"] for row in stored)
    for path in [*svc.data_dir.rglob("*"), svc.log_path]:
        if path.is_file():
            content = path.read_bytes()
            for secret in SECRETS:
                assert secret.encode() not in content, (secret, path)


def test_sigterm_flushes_everything_accepted(service: Service) -> None:
    count = 600
    with httpx.Client(base_url=service.url) as client:
        for n in range(count):
            body = {
                "nodeId": NODE,
                "appKey": "flush",
                "sessionId": f"s{n % 7}",
                "callId": f"flush-{n % 50}",
                "status": "RING" if n < 300 else "ESTABLISHED",
            }
            assert client.post("/wcs/CallStatusEvent", json=body).status_code == 200
    started = time.monotonic()
    assert service.stop() == 0
    assert time.monotonic() - started < 30
    assert query(service.data_dir, "SELECT count() AS n FROM events") == [{"n": count}]
    calls = query(service.data_dir, "SELECT call_id, disposition FROM calls FINAL ORDER BY call_id")
    assert len(calls) == 50
    assert {row["disposition"] for row in calls} == {"ANSWERED"}  # open, but answered
    assert "all rows written" in service.log()


def test_open_call_continues_across_restart(tmp_path: Path, service_factory: list[Service]) -> None:
    data = tmp_path / "data"
    first = Service(data)
    service_factory.append(first.start())
    body = {"nodeId": NODE, "appKey": "restart", "sessionId": "s1", "callId": "restart-1"}
    httpx.post(f"{first.url}/wcs/call", json={**body, "caller": "alice", "callee": "bob"})
    httpx.post(f"{first.url}/wcs/CallStatusEvent", json={**body, "status": "ESTABLISHED"})
    assert first.stop() == 0
    second = Service(data)
    service_factory.append(second.start())
    httpx.post(f"{second.url}/wcs/CallStatusEvent", json={**body, "status": "FINISH"})
    assert second.stop() == 0
    rows = query(
        data,
        "SELECT caller, disposition, closed_by, talk_ms, answered_at IS NOT NULL"
        " AS answered FROM calls FINAL WHERE call_id = 'restart-1'",
    )
    assert len(rows) == 1
    assert rows[0]["caller"] == "alice" and rows[0]["disposition"] == "ANSWERED"
    assert rows[0]["closed_by"] == "event" and rows[0]["answered"] == 1
    assert rows[0]["talk_ms"] >= 0


def test_second_owner_of_the_data_dir_is_refused(service: Service) -> None:
    from tests.e2e.service import cli

    with pytest.raises(RuntimeError, match="in use by another wcs-analytics process"):
        cli("query", "--data-dir", str(service.data_dir), "SELECT 1")


def _sample(metrics: str, name: str) -> float:
    line = next(ln for ln in metrics.splitlines() if ln.startswith(name + " "))
    return float(line.split()[1])


def test_metrics_report_the_freshness_of_inserted_rows(service: Service) -> None:
    """wcs_sink_freshness_seconds: hook received -> its events row inserted, once per row."""
    with httpx.Client(base_url=service.url) as client:
        for n in range(5):
            assert client.post("/wcs/connect", json=hook_body("connect", n)).status_code == 200
        deadline = time.monotonic() + 30
        while True:
            metrics = client.get("/metrics").text
            count = _sample(metrics, "wcs_sink_freshness_seconds_count")
            if count >= 5 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert count == 5
    assert 0 < _sample(metrics, "wcs_sink_freshness_seconds_sum") / count < 30
    assert 'wcs_sink_freshness_seconds_bucket{le="+Inf"} 5' in metrics
    assert service.stop() == 0


def test_every_metric_run_serves_is_documented(service: Service) -> None:
    """docs/metrics.md names every metric family `run` serves (after a hook, so the counters
    by label exist too)."""
    with httpx.Client(base_url=service.url) as client:
        hook = client.post("/wcs/connect", content=b'{"nodeId":"n","sessionId":"s"}')
        assert hook.status_code == 200
        metrics = client.get("/metrics").text
    assert metrics.count("# TYPE ") > 30
    missing = undocumented(metrics)
    assert missing == [], ", ".join(missing)
