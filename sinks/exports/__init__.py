"""Billing, CDR and SDR exports: formatting and SQL only; callers own the client.

``export_chunks(client, database, spec)`` yields the file's bytes in order. It works
on any clickhouse-connect client (chDB in this process or a ClickHouse server), so the
CLI on a stopped data directory, the ``run`` service's API and a server give byte-identical
files. csv/jsonl stream block by block (ClickHouse's CSV / JSONEachRow output); Parquet is
ClickHouse's own Parquet writer (chDB materializes it in memory, a server streams it);
SDR lines are formatted here (``sdr.py``) from a row-block stream. See docs/exports.md.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sinks.exports.queries import (
    CDR_COLUMNS,
    SDR_COLUMNS,
    billing_columns,
    billing_sql,
    cdr_sql,
    sdr_sql,
)
from sinks.exports.sdr import StreamRecord, sdr_line
from sinks.exports.spec import ExportSpec, make_spec

__all__ = ["CONTENT_TYPES", "ExportSpec", "export_chunks", "make_spec"]

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
    "sdr": "text/plain; charset=utf-8",
}
# fixed output conventions, independent of server defaults
OUTPUT_SETTINGS = {
    "output_format_decimal_trailing_zeros": 1,
    "format_csv_null_representation": "",
    "output_format_csv_crlf_end_of_line": 0,
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_quote_decimals": 0,
    "date_time_output_format": "simple",
    "output_format_parquet_compression_method": "zstd",
}
_RAW_FORMATS = {"csv": "CSV", "jsonl": "JSONEachRow", "parquet": "Parquet"}


def export_chunks(client: Any, database: str, spec: ExportSpec) -> Generator[bytes, None, None]:
    """The export's bytes, in order. Blocks on the database; raises the driver's errors."""
    if spec.kind == "sdr":
        yield from _sdr_chunks(client, database, spec)
        return
    if spec.kind == "billing":
        sql, columns = billing_sql(database, spec), billing_columns(spec)
    else:
        sql, columns = cdr_sql(database, spec), CDR_COLUMNS
    yield from stream_file(client, sql, columns, spec.fmt)


def stream_file(
    client: Any,
    sql: str,
    columns: tuple[str, ...],
    fmt: str,
    settings: dict[str, Any] = OUTPUT_SETTINGS,
) -> Generator[bytes, None, None]:
    """The query's result as a csv (with a header line), jsonl or parquet file, in chunks."""
    if fmt == "csv":
        yield (",".join(columns) + "\n").encode()
    stream = client.raw_stream(sql, fmt=_RAW_FORMATS[fmt], settings=settings)
    try:
        for chunk in stream:
            if chunk:
                yield bytes(chunk)
    finally:
        stream.close()


def _sdr_chunks(client: Any, database: str, spec: ExportSpec) -> Generator[bytes, None, None]:
    names = [name for name, _ in SDR_COLUMNS]
    with client.query_row_block_stream(sdr_sql(database, spec)) as blocks:
        for block in blocks:
            lines = (sdr_line(StreamRecord(**dict(zip(names, row, strict=True)))) for row in block)
            yield "".join(lines).encode()
