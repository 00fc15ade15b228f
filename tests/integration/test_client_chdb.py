"""sinks.client.connect against the real chDB engine (and an unreachable HTTP server)."""

from __future__ import annotations

import pytest

from sinks.client import connect
from sinks.errors import ConfigError, TransientError
from sinks.migrations import migrate

pytestmark = pytest.mark.integration


def test_connect_creates_the_directory_and_uses_an_existing_database(chdb_dsn, chdb_path, fresh_db):
    first = connect(chdb_dsn, fresh_db)
    try:
        assert chdb_path.is_dir()
        assert first.database != fresh_db  # does not exist yet
        migrate(first, fresh_db)
        assert first.database == fresh_db
    finally:
        first.close()
    second = connect(chdb_dsn, fresh_db)
    try:
        assert second.database == fresh_db
        assert second.command("SELECT count() FROM calls") == 0  # unqualified
    finally:
        second.close()


def test_a_second_chdb_path_in_one_process_is_a_config_error(ch_client, tmp_path):
    with pytest.raises(ConfigError, match=f"cannot connect to chdb://{tmp_path}"):
        connect(f"chdb://{tmp_path}", "wcs")


def test_unreachable_server_is_transient_and_hides_the_password():
    with pytest.raises(TransientError, match=r"cannot connect to http://127\.0\.0\.1:1") as info:
        connect("http://default:hunter2@127.0.0.1:1", "wcs")
    assert "hunter2" not in str(info.value)
