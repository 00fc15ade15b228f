"""Shared chDB fixtures: one engine data path per pytest process, one database per test.

chDB allows a single data path per process, so every integration test uses
``chdb_dsn`` (never a path of its own) and isolates itself with ``fresh_db``.
Close every client you open (``ch_client`` does it for you).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sinks.client import connect


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's chDB data directory (absolute; created by the first ``connect``)."""
    return tmp_path_factory.mktemp("chdb").resolve() / "data"


@pytest.fixture(scope="session")
def chdb_dsn(chdb_path: Path) -> str:
    return f"chdb://{chdb_path}"


@pytest.fixture
def fresh_db(chdb_dsn: str) -> Iterator[str]:
    """A database name unique to this test (not created: migrate creates it); dropped after."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    client = connect(chdb_dsn, "default")
    try:
        client.command(f"DROP DATABASE IF EXISTS {name} SYNC")
    finally:
        client.close()


@pytest.fixture
def ch_client(chdb_dsn: str) -> Iterator[Any]:
    """A clickhouse-connect client on the session engine, closed after the test."""
    client = connect(chdb_dsn, "default")
    yield client
    client.close()


@pytest.fixture
def kcat() -> str:
    """kcat's path: the test skips without it (fails with WCS_REQUIRE_KCAT=1, as in CI)."""
    from tests.integration.kafka_ingest_helpers import kcat as find_kcat

    return find_kcat()
