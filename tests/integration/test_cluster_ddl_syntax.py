"""The cluster DDL parses in the real ClickHouse engine (chDB has no Keeper to run it)."""

from __future__ import annotations

import pytest

from sinks.migrations import migrations
from sinks.schema import create_database_sql, create_migrations_table_sql

pytestmark = pytest.mark.integration

STATEMENTS = [
    create_database_sql("wcs", "prod"),
    create_migrations_table_sql("wcs", "prod"),
    *(s.replace("{db}", "wcs") for _, _, stmts in migrations("prod") for s in stmts),
]


@pytest.mark.parametrize("sql", STATEMENTS, ids=[s.split(" (")[0][:60] for s in STATEMENTS])
def test_cluster_statement_parses_and_keeps_cluster_engine_and_macros(ch_client, sql):
    result = ch_client.query("SELECT formatQuerySingleLine({q:String})", parameters={"q": sql})
    formatted = result.result_rows[0][0]
    assert "ON CLUSTER prod" in formatted
    if "Replicated" in sql:
        assert "('/clickhouse/tables/" in formatted
        assert "'{replica}'" in formatted or "'{shard}-{replica}'" in formatted
    if "Distributed" in sql:
        assert "ENGINE = Distributed('prod', 'wcs', '" in formatted


def test_a_syntax_error_is_caught(ch_client):
    with pytest.raises(Exception, match=r"(?i)syntax"):
        ch_client.command(
            "SELECT formatQuery({q:String})", parameters={"q": "CREATE TABLE x ON CLUSTER"}
        )
