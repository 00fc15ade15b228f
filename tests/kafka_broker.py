"""A real Kafka broker for the test suite (no mock brokers).

``kafka_bootstrap`` (session): ``WCS_KAFKA_BOOTSTRAP`` when given; otherwise a single-node
KRaft broker started by ``deploy/kafka/kafka.sh`` on a free port when Java and Maven exist
(stopped and deleted at the end of the session); otherwise the test is skipped with a one-line
reason — or fails when ``WCS_REQUIRE_KAFKA=1`` (set by .ci/run): a skipped test is a test
that does not exist.

``topic_prefix``: a prefix unique to one test (``t<hex>.``); its topics are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.external import unavailable

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "deploy" / "kafka" / "kafka.sh"


def free_port_pair() -> int:
    """A port p such that p and p+1 (the controller) are free right now."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for the Kafka broker")


def _unavailable(reason: str) -> None:
    unavailable("kafka", reason)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    given = os.environ.get("WCS_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        _unavailable(f"WCS_KAFKA_BOOTSTRAP is not set and {', '.join(missing)} not found")
    port = free_port_pair()
    env = {**os.environ, "KAFKA_PORT": str(port)}
    started = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True)
    if started.returncode != 0:
        _unavailable(f"{SCRIPT.name} start failed: {started.stderr.strip()[-500:]}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(SCRIPT), "reset"], env=env, capture_output=True, check=False)


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()


@pytest.fixture
def topic_prefix(kafka_bootstrap: str) -> Iterator[str]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    yield prefix
    asyncio.run(_delete_topics(kafka_bootstrap, prefix))
