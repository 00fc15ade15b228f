"""Bodies are stored faithfully and without secrets, over HTTP and through ``replay``.

Integers beyond 64 bits keep every digit; a secret inside a JSON document that WCS sends
as a string (``custom`` passed by the client as a string) is removed; ``replay`` of a raw
capture applies the same redaction as ingest.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from tests.e2e.service import Service, cli, query

pytestmark = pytest.mark.e2e

BIG = "123456789012345678901234567890"
SECRET, INNER_SECRET, EXTRA = "tok-fid-8812", "inner-fid-4471", "extra-fid-2290"


def raw_body(session: str) -> bytes:
    custom = orjson.dumps({"token": INNER_SECRET, "room": "r1"}).decode()
    return (
        b'{"nodeId":"n1","appKey":"fid","sessionId":"%s","authToken":"%s",'
        b'"billingId":%s,"custom":%s,"mine":"%s"}'
        % (session.encode(), SECRET.encode(), BIG.encode(), orjson.dumps(custom), EXTRA.encode())
    )


def _check(rows: list[dict[str, object]]) -> None:
    assert rows
    for row in rows:
        body = str(row["body"])
        assert f'"billingId":{BIG}' in body, body
        assert "r1" in body
        for secret in (SECRET, INNER_SECRET, EXTRA):
            assert secret not in body


def test_http_bodies_keep_big_integers_and_lose_secrets(
    tmp_path: Path, service_factory: list[Service]
) -> None:
    svc = Service(tmp_path / "data", args=("--redact-keys", "mine"))
    service_factory.append(svc.start())
    raw = raw_body("s-http")
    answer = httpx.post(f"{svc.url}/wcs/connect", content=raw)
    assert answer.status_code == 200 and answer.content == raw  # the echo is untouched
    assert svc.stop() == 0
    _check(query(svc.data_dir, "SELECT body FROM events"))


def test_replay_of_a_raw_capture_redacts_like_ingest(tmp_path: Path) -> None:
    envelope = (
        b'{"v":1,"id":"cap-1","received_at":1767225600000,"method":"connect",'
        b'"family":"connection","key":"n1/s-cap","node_id":"n1","session_id":"s-cap",'
        b'"app_key":"fid","body":%s}\n' % raw_body("s-cap")
    )
    capture = tmp_path / "capture.ndjson"
    capture.write_bytes(envelope)
    data = tmp_path / "data"
    cli("replay", str(capture), "--data-dir", str(data), "--redact-keys", "mine")
    _check(query(data, "SELECT body FROM events"))
