"""``deploy/kafka/kafka.sh start`` (``make kafka``) on a port another process holds."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.kafka_broker import SCRIPT, free_port_pair

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("busy", ["KAFKA_PORT", "KAFKA_CONTROLLER_PORT"])
def test_start_on_a_busy_port_names_the_variable(busy: str, tmp_path: Path) -> None:
    port = free_port_pair()
    held = port if busy == "KAFKA_PORT" else port + 1
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", held))
        holder.listen()
        env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_HOME": str(tmp_path)}
        done = subprocess.run(
            [str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=30
        )
    assert done.returncode == 4, done.stderr
    assert f"127.0.0.1:{held} is already in use" in done.stderr
    assert f"{busy}=" in done.stderr
    assert not (tmp_path / "libs").exists()  # refused before fetching anything
