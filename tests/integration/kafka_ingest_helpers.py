"""Run the Kafka ingest service as a subprocess and read topics back with kcat (test helpers)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from events.envelope import Envelope
from events.records import decode_batch
from tests.external import tool

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def ingest_process(
    bootstrap: str, prefix: str, data_dir: Path, *flags: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m wcs_analytics.kafka_ingest`` on a free port; yields (base URL, process).

    Stopped with SIGTERM at the end; the test sees its exit status via ``process.returncode``.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "wcs_analytics.kafka_ingest",
        "--kafka",
        bootstrap,
        "--topic-prefix",
        prefix,
        "--topic-partitions",
        "3",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--log-level",
        "warning",
        *flags,
    ]
    log = (data_dir.parent / f"ingest-{port}.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCS_")}
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log.name)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        log.close()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"ingest exited with {process.returncode}: {Path(log_path).read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"ingest not healthy after 60 s: {Path(log_path).read_text()[-2000:]}")


def metric(url: str, name: str) -> float:
    """One sample of /metrics (full sample name with labels)."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name} not in /metrics"
    return float(found.group(1))


def kcat() -> str:
    """kcat's path; skips the test without it (fails when WCS_REQUIRE_KCAT=1, as in CI)."""
    return tool("kcat", "apt-get install -y kcat")


@dataclass(frozen=True)
class Record:
    """One Kafka record read back with kcat: where it is, its key, headers and envelopes."""

    topic: str
    partition: int
    offset: int
    key: bytes
    headers: dict[str, bytes]
    envelopes: list[Envelope]


def kcat_records(bootstrap: str, topic: str) -> list[Record]:
    """Every record of ``topic`` (values decoded with ``decode_batch``), by partition and offset."""
    done = subprocess.run(
        [kcat(), "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    records = []
    for line in done.stdout.splitlines():
        if not line.strip():
            continue
        message = orjson.loads(line)
        headers = message.get("headers") or []
        pairs = dict(zip(headers[::2], (h.encode() for h in headers[1::2]), strict=True))
        key = (message["key"] or "").encode()
        envelopes = decode_batch(message["payload"].encode())
        records.append(
            Record(topic, message["partition"], message["offset"], key, pairs, envelopes)
        )
    return sorted(records, key=lambda r: (r.partition, r.offset))


def kcat_json(bootstrap: str, topic: str) -> list[tuple[int, int, Any]]:
    """(partition, offset, value decoded as JSON) of every record of a plain JSON topic (the
    dead letter, the alerts)."""
    done = subprocess.run(
        [kcat(), "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    found = [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return sorted((m["partition"], m["offset"], orjson.loads(m["payload"])) for m in found)


def kcat_envelopes(bootstrap: str, topics: list[str]) -> list[Envelope]:
    """Every envelope of ``topics``: per topic partition in offset order, then record order."""
    return [e for t in topics for r in kcat_records(bootstrap, t) for e in r.envelopes]
