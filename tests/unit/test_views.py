"""KPI view DDL (sinks/views.py): pure strings, no IO."""

from __future__ import annotations

import re

import pytest

from events.tables import TABLES
from sinks.migrations import migrations
from sinks.schema import IDENTIFIER
from sinks.views import LIFETIME_EDGES_MS, VIEWS, create_view_sql, create_views

READS = re.compile(r"\bFROM \{db\}\.(\w+)(?: AS \w+)?( FINAL)?")


@pytest.mark.parametrize("name", VIEWS)
def test_every_read_of_an_entity_table_is_final_and_views_only_read_earlier_views(name):
    earlier = list(VIEWS)[: list(VIEWS).index(name)]
    reads = READS.findall(VIEWS[name])
    assert reads, "a view reads something"
    for source, final in reads:
        if source in TABLES:
            assert final, f"{name} reads {source} without FINAL"
        else:
            assert source in earlier, f"{name} reads {source} before it exists"
    assert "{db}.events" not in VIEWS[name]


@pytest.mark.parametrize("name", VIEWS)
def test_view_names_are_kpi_identifiers(name):
    assert name.startswith("kpi_")
    assert IDENTIFIER.fullmatch(name)


def test_single_server_and_cluster_views_share_the_select():
    single, cluster = create_views(None), create_views("prod")
    assert len(single) == len(cluster) == len(VIEWS)
    for name, plain, on_cluster in zip(VIEWS, single, cluster, strict=True):
        head = f"CREATE VIEW IF NOT EXISTS {{db}}.{name}"
        assert plain.startswith(f"{head} AS\nSELECT") or plain.startswith(f"{head} AS\nWITH")
        assert on_cluster == plain.replace(head, f"{head} ON CLUSTER prod", 1)


def test_database_is_substituted_everywhere():
    sql = create_view_sql("kpi_concurrency_peak_hour", "wcs")
    assert "{db}" not in sql
    assert "FROM wcs.kpi_concurrency_minute" in sql
    assert sql.startswith("CREATE VIEW IF NOT EXISTS wcs.kpi_concurrency_peak_hour AS\n")


def test_unknown_view_is_a_key_error():
    with pytest.raises(KeyError):
        create_view_sql("kpi_nope", "wcs")


@pytest.mark.parametrize("cluster", [None, "prod"])
def test_migration_2_creates_the_views_after_the_tables(cluster):
    (first, *_), (number, name, statements), *_ = migrations(cluster)
    assert first == 1
    assert (number, name) == (2, "create_kpi_views")
    assert statements == create_views(cluster)


def test_lifetime_buckets_start_at_zero_and_increase():
    assert LIFETIME_EDGES_MS[0] == 0
    assert list(LIFETIME_EDGES_MS) == sorted(set(LIFETIME_EDGES_MS))
