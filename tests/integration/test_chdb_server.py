"""The test ClickHouse server (``tests/chdb_server.py``) is faithful enough for this project.

The project's own code runs against ``http://`` DSNs (clickhouse-connect's HTTP client, the
production path) and, where it says "like chDB", against the embedded engine in this process
with the same input: the HTTP layer must not change a schema, a row or an error class.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from events.catalog import resolve
from events.envelope import make
from events.tables import TABLES
from sinks.client import connect
from sinks.errors import ConfigError, PermanentError, SinkError, TransientError, translated
from sinks.migrations import MIGRATIONS, migrate
from sinks.writer import ClickHouseWriter
from tests.integration.test_writer_chdb import BASE_MS, read_final, sample_row

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("wcs-analytics")
ROW_TABLES = [t for t in TABLES if t not in ("events", "entity_state")]
NOW_MS = int(time.time() * 1000)  # entity_state rows expire (TTL) 8 days after written_at


@pytest.fixture
def http_db(chdb_server: str) -> Iterator[str]:
    """A database name of this test on the server (migrate creates it); dropped after."""
    name = f"http_{uuid.uuid4().hex[:12]}"
    yield name
    client = connect(chdb_server, "default")
    try:
        client.command(f"DROP DATABASE IF EXISTS {name} SYNC")
    finally:
        client.close()


@pytest.fixture
def http_client(chdb_server: str) -> Iterator[Any]:
    client = connect(chdb_server, "default")
    yield client
    client.close()


def schema(client: Any, database: str) -> list[tuple[str, str, str]]:
    rows = client.query(
        "SELECT name, engine, create_table_query FROM system.tables"
        " WHERE database = {db:String} ORDER BY name",
        parameters={"db": database},
    ).result_rows
    return [(name, engine, ddl.replace(database, "DB")) for name, engine, ddl in rows]


def test_migrate_creates_the_schema_chdb_creates(http_client, http_db, ch_client, fresh_db):
    assert migrate(http_client, http_db) == [m[0] for m in MIGRATIONS]
    assert migrate(http_client, http_db) == []  # recorded: idempotent
    migrate(ch_client, fresh_db)
    tables = schema(http_client, http_db)
    assert tables == schema(ch_client, fresh_db)
    assert any(engine.endswith("View") for _, engine, _ in tables)  # migration 2: the KPI views
    assert {name for name, _, _ in tables} >= set(TABLES)


def test_connect_uses_an_existing_database(chdb_server, http_client, http_db):
    migrate(http_client, http_db)
    client = connect(chdb_server, http_db)
    try:
        assert client.database == http_db
        assert client.command("SELECT count() FROM schema_migrations") == len(MIGRATIONS)
    finally:
        client.close()


def write_sample(client: Any, database: str) -> int:
    """Rows of every table through the writer: ``add``, ``add_events``, ``add_state``."""
    writer = ClickHouseWriter(client, database, now_ms=lambda: BASE_MS, sleep=lambda _: None)
    writer.add(sample_row(table, i) for table in ROW_TABLES for i in range(3))
    body = {"nodeId": "n1", "callId": "c-1", "text": "Привет ☎ 😀", "nested": {"a": [1, None]}}
    writer.add_events([make(resolve("OnCallEvent"), body, BASE_MS + i, f"p-{i}") for i in range(3)])
    writer.add_state(sample_row("entity_state", i, written_at=NOW_MS)[1] for i in range(3))
    return writer.flush()


def test_writer_rows_read_back_under_final_like_chdb(http_client, http_db, ch_client, fresh_db):
    migrate(http_client, http_db)
    migrate(ch_client, fresh_db)
    written = write_sample(http_client, http_db)
    assert written == 3 * len(TABLES) == write_sample(ch_client, fresh_db)
    for table in TABLES:
        rows = read_final(http_client, http_db, table)
        assert len(rows) == 3, table
        assert rows == read_final(ch_client, fresh_db, table), table


@pytest.mark.parametrize("compress", [True, "zstd", "gzip", False])
def test_every_client_compression_round_trips(chdb_server, http_client, http_db, compress):
    """clickhouse-connect compresses inserts (lz4 by default) and asks for compressed results."""
    http_client.command(f"CREATE DATABASE {http_db}")
    http_client.command(f"CREATE TABLE {http_db}.t (n UInt64, s String) ENGINE = Log")
    client = clickhouse_connect.get_client(dsn=chdb_server, compress=compress)
    try:
        rows = [(i, f"row {i} ☎" * (i % 7)) for i in range(20_000)]
        client.insert(f"{http_db}.t", rows)
        assert client.query(f"SELECT n, s FROM {http_db}.t ORDER BY n").result_rows == rows
    finally:
        client.close()


def test_server_side_parameters_settings_and_database(chdb_server, http_client, http_db):
    migrate(http_client, http_db)  # leaves http_db the client's database (a URL parameter)
    writer = ClickHouseWriter(http_client, http_db, now_ms=lambda: 0, sleep=lambda _: None)
    writer.add(sample_row("calls", i, call_id=f"call-{i}", caller=f"+{i}'\t\\") for i in range(5))
    writer.flush()
    sql = (
        "SELECT call_id, caller FROM calls FINAL WHERE call_id IN {ids:Array(String)}"
        " AND created_at >= {since:DateTime64(3, 'UTC')} AND caller = {who:String}"
    )
    params = {"ids": ["call-1", "call-3"], "since": "2000-01-01 00:00:00", "who": "+3'\t\\"}
    assert http_client.query(sql, parameters=params).result_rows == [("call-3", "+3'\t\\")]
    count = "SELECT count() FROM calls WHERE startsWith(call_id, {p:String})"
    assert http_client.command(count, parameters={"p": "call-"}) == 5
    setting = "SELECT getSetting('max_block_size')"
    assert http_client.command(setting, settings={"max_block_size": 1234}) == 1234
    # the same query as multipart form fields (used for long parameters)
    form = clickhouse_connect.get_client(dsn=chdb_server, form_encode_query_params=True)
    try:
        form.database = http_db
        assert form.query(sql, parameters=params).result_rows == [("call-3", "+3'\t\\")]
    finally:
        form.close()


WRITER_PROCESS = """
import sys
import time
from sinks.client import connect
from sinks.writer import ClickHouseWriter
from tests.integration.test_writer_chdb import sample_row

dsn, database, prefix = sys.argv[1:]
client = connect(dsn, database)
writer = ClickHouseWriter(client, database, now_ms=lambda: 0, sleep=lambda _: None)
print("ready", flush=True)
sys.stdin.readline()  # "go": the two processes write at the same time
for batch in range(10):
    writer.add(sample_row("calls", i, call_id=f"{prefix}-{batch}-{i}") for i in range(50))
    now = int(time.time() * 1000)
    writer.add_state([sample_row("entity_state", 0, key=f"{prefix}-{batch}", written_at=now)[1]])
    writer.flush()
client.close()
"""


def test_two_processes_write_to_one_database(chdb_server, http_client, http_db):
    migrate(http_client, http_db)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_PROCESS, chdb_server, http_db, prefix],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for prefix in ("a", "b")
    ]
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline() == "ready\n"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
    finally:
        for process in processes:
            process.kill()
            process.communicate()
    by_prefix = http_client.query(
        f"SELECT substring(call_id, 1, 1), count() FROM {http_db}.calls FINAL GROUP BY 1 ORDER BY 1"
    ).result_rows
    assert by_prefix == [("a", 500), ("b", 500)]
    assert http_client.command(f"SELECT count() FROM {http_db}.entity_state FINAL") == 20


def outcome(client: Any, sql: str) -> tuple[type[SinkError], int]:
    """The sinks.errors class and the ClickHouse code of the error ``sql`` raises."""
    with pytest.raises(SinkError) as info, translated():
        client.command(sql)
    cause = info.value.__cause__
    assert isinstance(cause, DatabaseError)
    return type(info.value), cause.code


ERRORS = [  # (statement, the sinks.errors class and ClickHouse code it raises)
    ("SELECT * FROM {db}.no_such_table", ConfigError, 60),  # UNKNOWN_TABLE
    ("SELECT * FROM no_such_database.calls", ConfigError, 81),  # UNKNOWN_DATABASE
    ("INSERT INTO {db}.calls (call_id, no_such_column) VALUES ('x', 1)", ConfigError, 16),
    ("SELECT toUInt8('x')", PermanentError, 6),  # CANNOT_PARSE_TEXT: bad data
    ("SELEC 1", TransientError, 62),  # SYNTAX_ERROR is in no list: retried, never dead-lettered
]


def test_errors_classify_like_chdb(http_client, http_db, ch_client, fresh_db):
    migrate(http_client, http_db)
    migrate(ch_client, fresh_db)
    for sql, error, code in ERRORS:
        assert outcome(http_client, sql.format(db=http_db)) == (error, code), sql
        assert outcome(ch_client, sql.format(db=fresh_db)) == (error, code), sql


def test_errors_are_clickhouse_http_errors(chdb_server):
    """Status, X-ClickHouse-Exception-Code and body as ClickHouse sends them."""
    url = chdb_server.replace("default:@", "")
    for sql, status, code in [("SELECT * FROM nope", 404, 60), ("SELEC 1", 400, 62)]:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url, data=sql.encode(), timeout=30)
        with info.value as response:
            assert (response.status, response.headers["X-ClickHouse-Exception-Code"]) == (
                status,
                str(code),
            )
            assert response.read().decode().startswith(f"Code: {code}. DB::Exception: ")
    with urllib.request.urlopen(f"{url}/ping", timeout=30) as response:
        assert response.read() == b"Ok.\n"


def test_writer_without_schema_and_wrong_password_are_config_errors(chdb_server, http_client):
    writer = ClickHouseWriter(http_client, "no_such_database", now_ms=lambda: 0)
    writer.add([sample_row("calls", 0)])
    with pytest.raises(ConfigError):
        writer.flush()
    assert writer.pending == 1  # kept for after the migration
    with pytest.raises(ConfigError, match="516"):  # AUTHENTICATION_FAILED
        connect(chdb_server.replace("default:@", "default:wrong@"))


def test_a_busy_session_is_locked_as_in_clickhouse(chdb_server):
    """Two clients in one session (e.g. a client shared by processes): ClickHouse refuses one."""
    session = f"s-{uuid.uuid4()}"
    first, second = (
        clickhouse_connect.get_client(dsn=chdb_server, session_id=session) for _ in range(2)
    )

    def hold_session() -> None:
        while True:
            try:
                first.command("SELECT sleep(2)")
                return
            except DatabaseError:  # the probe below had the session at that moment
                pass

    slow = threading.Thread(target=hold_session)
    slow.start()
    codes = set()
    try:
        while slow.is_alive() and not codes:
            try:
                second.command("SELECT 1")
            except DatabaseError as exc:
                codes.add(exc.code)
    finally:
        slow.join()
        first.close()
        second.close()
    assert codes == {373}  # SESSION_IS_LOCKED


def cli(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [str(CLI), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cli_replay_over_http_matches_replay_into_chdb(chdb_server, http_db, tmp_path):
    trace = tmp_path / "trace.ndjson"
    cli("simulate", "--out", str(trace), "--seed", "3", cwd=tmp_path)
    server = ("--clickhouse", chdb_server, "--database", http_db)
    embedded = ("--data-dir", str(tmp_path / "embedded"))
    cli("replay", str(trace), *server, "--data-dir", str(tmp_path / "http"), cwd=tmp_path)
    cli("replay", str(trace), *embedded, cwd=tmp_path)
    sql = "SELECT * FROM calls FINAL ORDER BY call_id, incarnation"
    over_http = cli("query", sql, "--format", "jsonl", *server, cwd=tmp_path)
    assert over_http == cli("query", sql, "--format", "jsonl", *embedded, cwd=tmp_path)
    calls = [json.loads(line) for line in over_http.splitlines()]
    assert len(calls) == len({(c["call_id"], c["incarnation"]) for c in calls}) > 0
    assert not (tmp_path / "http" / "chdb").exists()  # the http replay embedded nothing
