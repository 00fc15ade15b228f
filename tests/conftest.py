"""Fixtures shared by every test directory."""

import shutil
from collections.abc import Iterator

import pytest

from tests.kafka_broker import kafka_bootstrap, topic_prefix

__all__ = ["kafka_bootstrap", "topic_prefix"]


@pytest.fixture(scope="session")
def chdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base DSN ``http://default:@127.0.0.1:PORT`` of a test ClickHouse server for the session:
    the real engine (chDB) behind ClickHouse's HTTP interface (``tests/chdb_server.py``), which
    any number of processes can share. Use databases of your own; stopped and removed after."""
    from tests.chdb_server import ChdbServer  # the server loads chDB in its own process only

    root = tmp_path_factory.mktemp("chdb_server")
    with ChdbServer(root / "data") as server:
        yield server.dsn
    shutil.rmtree(root, ignore_errors=True)
