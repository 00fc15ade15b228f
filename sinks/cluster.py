"""The ClickHouse cluster layout (``--clickhouse-cluster NAME``): pure DDL pieces, no IO.

On a cluster every statement runs ``ON CLUSTER <name>`` and each table of
``events.tables`` becomes two:

- ``<table>_local``: ``Replicated<engine>`` with the same arguments, its replicas
  sharing the Keeper path ``/clickhouse/tables/{shard}/{database}/{table}`` (the
  ``{shard}`` and ``{replica}`` macros come from each server's config, see
  deploy/clickhouse/cluster/);
- ``<table>``: a ``Distributed`` table over the local ones, so the sink inserts and
  readers query the same names as on a single server.

Rows are sharded by ``cityHash64`` of the table's ORDER BY columns: every version of
a row lands on the same shard, so ``FINAL`` (which collapses per shard) stays exact.
"""

from __future__ import annotations

import re
from typing import Final

from events.tables import Table

LOCAL_SUFFIX: Final = "_local"
SHARD_PATH: Final = "/clickhouse/tables/{shard}/{database}/{table}"
# the migrations record is replicated to every node of every shard: one Keeper path for all,
# and a replica name unique cluster-wide even where {replica} repeats across shards
GLOBAL_PATH: Final = "/clickhouse/tables/all/{database}/{table}"
GLOBAL_REPLICA: Final = "{shard}-{replica}"

_ENGINE = re.compile(r"(\w*MergeTree)(?:\((.*)\))?")


def on_cluster(cluster: str | None) -> str:
    """`` ON CLUSTER name`` for a cluster, '' for a single server."""
    return f" ON CLUSTER {cluster}" if cluster else ""


def local_name(table_name: str, cluster: str | None) -> str:
    """Name of the table that stores the rows: ``calls_local`` on a cluster, ``calls`` alone."""
    return table_name + LOCAL_SUFFIX if cluster else table_name


def replicated_engine(engine: str, path: str = SHARD_PATH, replica: str = "{replica}") -> str:
    """``ReplacingMergeTree(version)`` -> ``ReplicatedReplacingMergeTree('path', 'replica',
    version)``; ValueError for an engine that is not a MergeTree."""
    match = _ENGINE.fullmatch(engine)
    if match is None:
        raise ValueError(f"not a MergeTree engine: {engine!r}")
    name, args = match.groups()
    params = [f"'{path}'", f"'{replica}'"] + ([args] if args else [])
    return f"Replicated{name}({', '.join(params)})"


def sharding_key(table: Table) -> str:
    """``cityHash64(<ORDER BY columns>)``: rows that collapse under FINAL share a shard."""
    return f"cityHash64({', '.join(table.order_by)})"


def create_distributed_sql(table: Table, database: str, cluster: str) -> str:
    """``CREATE TABLE IF NOT EXISTS db.t ON CLUSTER c AS db.t_local ENGINE = Distributed(...)``."""
    local = local_name(table.name, cluster)
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{table.name}{on_cluster(cluster)}"
        f" AS {database}.{local}"
        f"\nENGINE = Distributed('{cluster}', '{database}', '{local}', {sharding_key(table)})"
    )


def alter_table_sql(table_name: str, database: str, clause: str, cluster: str | None) -> list[str]:
    """One ``ALTER TABLE ... <clause>`` per physical table: the table alone, or on a cluster
    the local table first, then the Distributed one (a later migration's column change)."""
    names = [local_name(table_name, cluster)] + ([table_name] if cluster else [])
    return [f"ALTER TABLE {database}.{name}{on_cluster(cluster)} {clause}" for name in names]
