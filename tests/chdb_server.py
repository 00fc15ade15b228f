"""A test stand-in for a ClickHouse server: the real ClickHouse engine (chDB) behind enough of
ClickHouse's HTTP interface for clickhouse-connect's HTTP client. Tests only, never production.

Why: this machine has no ClickHouse server, and chDB allows one process per data directory,
so several processes (workers, CLI commands, a test) cannot share a chDB database. This process
owns one chDB data directory and answers HTTP like ``clickhouse-server`` does on port 8123, so
``http://default:@127.0.0.1:PORT`` DSNs run the production path (clickhouse-connect over HTTP)::

    python -m tests.chdb_server --data DIR --port PORT [--password PW]   # --port 0: any free one

prints ``listening on http://HOST:PORT`` once it serves. ``ChdbServer`` runs it as a subprocess
(the ``chdb_server`` fixture in ``tests/conftest.py``).

Supported (https://clickhouse.com/docs/interfaces/http): ``/ping`` and ``GET /``; the query in
the ``query`` URL parameter and/or the POST body (joined by a newline) or multipart form
fields; ``param_<name>`` server-side parameters; ``database``, ``default_format``, ``query_id``;
every other URL parameter is a setting (``SET`` before the query); GET is ``readonly=2``;
``INSERT ... FORMAT <fmt>`` with the data in the body (any input format: it is written to a
temp file and run as ``INSERT ... FROM INFILE``, like clickhouse-connect's chDB backend does),
bodies chunked or not and ``Content-Encoding`` lz4/zstd/gzip/deflate (clickhouse-connect sends
lz4); responses compressed on ``enable_http_compression=1`` + ``Accept-Encoding``, with the
headers ``X-ClickHouse-Query-Id``, ``-Summary``, ``-Format`` (result sets only, as ClickHouse),
``-Timezone``, ``-Server-Display-Name``; errors as ``Code: N. DB::Exception: ... (NAME)
(version V)`` with ``X-ClickHouse-Exception-Code`` and ClickHouse's HTTP status for the code;
one user ``default`` (password ``--password``); a request in a ``session_id`` that is busy
fails with SESSION_IS_LOCKED. Requests run concurrently, each on its own chDB connection.

Not supported: session state (``SET``/``USE``/temporary tables end with their request), external
data, ClickHouse's own ``compress``/``decompress`` block format, ``client_protocol_version``
(Native output is always protocol 0; clickhouse-connect's probe notices and uses 0), progress
headers and streaming (a response is sent once complete), cancelling queries, rejecting
multi-statement queries (chDB runs them).
"""

from __future__ import annotations

import argparse
import base64
import email
import gzip
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import lz4.frame
from backports import zstd
from clickhouse_connect.driver.binding import quote_identifier

USER = "default"
DISPLAY_NAME = "chdb-test-server"
# URL parameters of the HTTP interface itself; every other one (but param_*) is a setting
TRANSPORT_PARAMS = frozenset({
    "query", "database", "default_format", "query_id", "session_id", "session_timeout",
    "session_check", "user", "password", "quota_key", "buffer_size", "wait_end_of_query",
    "compress", "decompress", "role", "client_protocol_version", "enable_http_compression",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms",
    "http_zlib_compression_level",
})  # fmt: skip
_STATUS_NAMES = {  # ClickHouse's src/Server/HTTP/exceptionCodeToHTTPStatus.cpp; others: 500
    401: "REQUIRED_PASSWORD",
    403: "UNKNOWN_USER WRONG_PASSWORD AUTHENTICATION_FAILED SET_NON_GRANTED_ROLE ACCESS_DENIED",
    400: "BAD_ARGUMENTS CANNOT_COMPILE_REGEXP CANNOT_PARSE_TEXT CANNOT_PARSE_ESCAPE_SEQUENCE "
    "CANNOT_PARSE_QUOTED_STRING CANNOT_PARSE_DATE CANNOT_PARSE_DATETIME CANNOT_PARSE_NUMBER "
    "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING CANNOT_PARSE_IPV4 CANNOT_PARSE_IPV6 CANNOT_PARSE_UUID "
    "CANNOT_PARSE_INPUT_ASSERTION_FAILED DUPLICATE_COLUMN ILLEGAL_COLUMN UNKNOWN_ELEMENT_IN_AST "
    "UNKNOWN_TYPE_OF_AST_NODE THERE_IS_NO_COLUMN TOO_DEEP_AST TOO_BIG_AST SYNTAX_ERROR "
    "UNEXPECTED_AST_STRUCTURE INCORRECT_DATA TYPE_MISMATCH VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    404: "UNKNOWN_TABLE UNKNOWN_FUNCTION UNKNOWN_IDENTIFIER UNKNOWN_TYPE UNKNOWN_STORAGE "
    "UNKNOWN_DATABASE UNKNOWN_SETTING UNKNOWN_DIRECTION_OF_SORTING UNKNOWN_AGGREGATE_FUNCTION "
    "UNKNOWN_FORMAT UNKNOWN_DATABASE_ENGINE UNKNOWN_TYPE_OF_QUERY UNKNOWN_ROLE",
    408: "TIMEOUT_EXCEEDED",
    411: "HTTP_LENGTH_REQUIRED",
    413: "QUERY_IS_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    501: "NOT_IMPLEMENTED",
    503: "SOCKET_TIMEOUT CANNOT_OPEN_FILE CANNOT_SCHEDULE_TASK",
}
HTTP_STATUS = {name: status for status, names in _STATUS_NAMES.items() for name in names.split()}

# data follows the FORMAT clause of an INSERT (after one optional newline)
INSERT_DATA = re.compile(rb"\s*(INSERT\s+INTO\s.*?)\bFORMAT\s+(\w+)[ \t]*\r?\n?", re.I | re.S)
TRAILING_FORMAT = re.compile(rb"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ServerError(Exception):
    """A ClickHouse exception, ``Code: N. DB::Exception: text. (NAME)``."""

    def __init__(self, message: str) -> None:
        start = message.find("Code: ")
        self.message = message[start:].strip() if start >= 0 else message.strip()
        code = re.match(r"Code: (\d+)", self.message)
        self.code = int(code.group(1)) if code else 1001
        names = re.findall(r"\(([A-Z][A-Z0-9_]+)\)", self.message)
        self.status = HTTP_STATUS.get(names[-1] if names else "", 500)
        super().__init__(self.message)


def fail(code: int, name: str, text: str) -> ServerError:
    return ServerError(f"Code: {code}. DB::Exception: {text}. ({name})")


def quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Engine:
    """The chDB engine of one data directory; every request runs on a connection of its own."""

    def __init__(self, data: str) -> None:
        import chdb  # the server process only: ChdbServer users need not load the engine

        self._chdb, self.data = chdb, data
        self._keep = chdb.connect(data)  # the engine stays up between requests
        row = self._keep.query("SELECT version(), timezone()", "TabSeparated").bytes()
        self.version, self.timezone = row.decode().strip().split("\t")
        self._busy_sessions: set[str] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._keep.close()

    @contextmanager
    def session(self, session_id: str | None) -> Iterator[None]:
        """ClickHouse runs one query at a time per session (there is no other session state)."""
        if not session_id:
            yield
            return
        with self._lock:
            if session_id in self._busy_sessions:
                raise fail(373, "SESSION_IS_LOCKED", f"Session {session_id} is locked")
            self._busy_sessions.add(session_id)
        try:
            yield
        finally:
            with self._lock:
                self._busy_sessions.discard(session_id)

    def execute(
        self,
        sql: bytes,
        default_format: str,
        database: str | None,
        settings: dict[str, str],
        params: dict[str, str],
    ) -> tuple[bytes, str | None, dict[str, str]]:
        """(response body, X-ClickHouse-Format or None, X-ClickHouse-Summary) of one query."""
        conn = self._chdb.connect(self.data)
        tmp = None

        def run(query: bytes | str, fmt: str) -> Any:
            try:
                return conn.query(query, fmt, params=params)
            except Exception as exc:
                raise ServerError(str(exc)) from None

        try:
            if database:
                run(f"USE {quote_identifier(database)}", "TabSeparated")
            for name, value in settings.items():
                run(f"SET {name} = {quote(value)}", "TabSeparated")
            insert = INSERT_DATA.match(sql)
            if insert:  # the rest of the body is the data, in that input format
                with tempfile.NamedTemporaryFile(suffix=".data", delete=False) as tmp:
                    tmp.write(sql[insert.end() :])
                head, fmt = insert.group(1).decode(), insert.group(2).decode()
                result = run(f"{head} FROM INFILE {quote(tmp.name)} FORMAT {fmt}", "TabSeparated")
                return b"", None, summary(result, result.rows_read(), result.bytes_read())
            explicit = TRAILING_FORMAT.search(sql)
            fmt = explicit.group(1).decode() if explicit else default_format
            if fmt in ("TabSeparated", "TSV") and not explicit:
                # names tell a result set (even an empty one) from a statement without one
                result = run(sql, "TabSeparatedWithNames")
                body = result.bytes()
                body, fmt = (body.split(b"\n", 1)[1], "TabSeparated") if body else (b"", None)
            else:
                result = run(sql, fmt)
                body = result.bytes()
            return body, fmt, summary(result, result.rows_written(), result.bytes_written())
        finally:
            conn.close()
            if tmp is not None:
                os.unlink(tmp.name)


def summary(result: Any, written_rows: int, written_bytes: int) -> dict[str, str]:
    return {
        "read_rows": str(result.rows_read()),
        "read_bytes": str(result.bytes_read()),
        "written_rows": str(written_rows),
        "written_bytes": str(written_bytes),
        "total_rows_to_read": str(result.rows_read()),
        "elapsed_ns": str(int(result.elapsed() * 1e9)),
    }


def decompress(body: bytes, encoding: str) -> bytes:
    if encoding in ("", "identity") or not body:
        return body
    if encoding == "lz4":  # clickhouse-connect sends one lz4 frame per block
        parts = []
        while body:
            frame = lz4.frame.LZ4FrameDecompressor()
            parts.append(frame.decompress(body))
            body = frame.unused_data
        return b"".join(parts)
    if encoding == "zstd":
        return zstd.decompress(body)  # every frame
    if encoding in ("gzip", "deflate"):
        return gzip.decompress(body) if encoding == "gzip" else zlib.decompress(body)
    raise fail(89, "UNKNOWN_COMPRESSION_METHOD", f"Unknown Content-Encoding {encoding!r}")


def compress(body: bytes, accept_encoding: str) -> tuple[bytes, str | None]:
    """The body in the first encoding the client accepts that this server knows."""
    coders = {"lz4": lz4.frame.compress, "zstd": zstd.compress, "gzip": gzip.compress}
    coders["deflate"] = zlib.compress
    for encoding in (part.split(";")[0].strip() for part in accept_encoding.split(",")):
        if encoding in coders:
            return coders[encoding](body), encoding
    return body, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clickhouse-connect's connection pool expects
    server: Server

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        body = self._read_body()
        if url.path == "/ping" or (url.path == "/" and self.command == "GET" and not params):
            return self._send(200, b"Ok.\n", {})
        if url.path != "/":
            return self._send(404, f"There is no handle {url.path}\n".encode(), {})
        engine = self.server.engine
        headers = {
            "X-ClickHouse-Query-Id": params.get("query_id") or str(uuid.uuid4()),
            "X-ClickHouse-Timezone": engine.timezone,
            "X-ClickHouse-Server-Display-Name": DISPLAY_NAME,
        }
        try:
            body = decompress(body, self.headers.get("Content-Encoding", ""))
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):  # query and param_* form fields
                form = email.message_from_bytes(
                    f"Content-Type: {content_type}\r\n\r\n".encode() + body
                )
                for part in form.get_payload():
                    name = part.get_param("name", header="content-disposition")
                    params[name] = part.get_payload(decode=True).decode()
                body = b""
            self._authenticate(params)
            sql = params.get("query", "").encode()
            sql = sql + b"\n" + body if sql and body else sql or body
            if not sql.strip():
                raise fail(62, "SYNTAX_ERROR", "Empty query")
            settings = {k: v for k, v in params.items() if k not in TRANSPORT_PARAMS}
            settings = {k: v for k, v in settings.items() if not k.startswith("param_")}
            if self.command == "GET":
                settings.setdefault("readonly", "2")
            for name in settings:
                if not IDENTIFIER.fullmatch(name):
                    raise fail(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'")
            binds = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
            fmt = params.get("default_format", "TabSeparated")
            with engine.session(params.get("session_id")):
                out, fmt, stats = engine.execute(sql, fmt, params.get("database"), settings, binds)
            headers["X-ClickHouse-Summary"] = json.dumps(stats)
            if fmt:
                headers["X-ClickHouse-Format"] = fmt
            if params.get("enable_http_compression") == "1":
                out, encoding = compress(out, self.headers.get("Accept-Encoding", ""))
                if encoding:
                    headers["Content-Encoding"] = encoding
            return self._send(200, out, headers)
        except Exception as exc:
            if not isinstance(exc, ServerError):  # a bug here, or a request it cannot parse
                traceback.print_exc()
                exc = fail(1001, "STD_EXCEPTION", f"{type(exc).__name__}: {exc}")
            headers["X-ClickHouse-Exception-Code"] = str(exc.code)
            text = f"{exc.message} (version {engine.version})\n"
            return self._send(exc.status, text.encode(), headers)

    do_POST = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(chunks)

    def _authenticate(self, params: dict[str, str]) -> None:
        user = self.headers.get("X-ClickHouse-User") or params.get("user") or USER
        password = self.headers.get("X-ClickHouse-Key") or params.get("password") or ""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        if (user, password) != (USER, self.server.password):
            text = f"{user}: Authentication failed: password is incorrect, or there is no user"
            raise fail(516, "AUTHENTICATION_FAILED", text)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: errors go in the body
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], engine: Engine, password: str) -> None:
        super().__init__(address, Handler)
        self.engine, self.password = engine, password


class ChdbServer:
    """``python -m tests.chdb_server`` as a subprocess on a free port (``with`` or start/stop);
    ``dsn`` is ``http://default:PASSWORD@127.0.0.1:PORT``. Its stderr goes to ``DATA.log``."""

    def __init__(self, data: Path, password: str = "") -> None:
        self.data, self.password = Path(data), password
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    @property
    def dsn(self) -> str:
        return self.url.replace("http://", f"http://{USER}:{self.password}@")

    @property
    def log(self) -> Path:
        return self.data.with_name(self.data.name + ".log")

    def start(self, timeout: float = 60) -> str:
        """Start and wait until ``/ping`` answers; returns the DSN."""
        deadline = time.monotonic() + timeout
        cmd = [sys.executable, "-m", "tests.chdb_server", "--data", str(self.data), "--port", "0"]
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                [*cmd, "--password", self.password],
                cwd=Path(__file__).resolve().parents[1],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        line = self._process.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"chdb server did not start:\n{self.log.read_text()[-3000:]}")
        self.url = line.split()[-1]
        while not self._ping():
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"chdb server does not answer /ping at {self.url}")
            time.sleep(0.05)
        return self.dsn

    def pause(self) -> None:
        """SIGSTOP the server: every request hangs (a stalled database, for tests)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as response:
                return bool(response.read() == b"Ok.\n")
        except OSError:
            return False

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        assert self._process.stdout is not None
        self._process.stdout.close()
        self._process = None

    def __enter__(self) -> ChdbServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chdb_server",
        description="Test stand-in for a ClickHouse server: chDB behind ClickHouse's HTTP API.",
    )
    parser.add_argument("--data", type=Path, required=True, help="chDB data directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="0: any free port")
    parser.add_argument("--password", default="", help=f"the password of user {USER}")
    args = parser.parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    engine = Engine(str(args.data.resolve()))
    server = Server((args.host, args.port), engine, args.password)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
