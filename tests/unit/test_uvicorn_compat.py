"""The uvicorn callbacks and attributes ``ingest.uvicorn_compat`` overrides or reads exist in
the installed version (a real server behind the guard: tests/integration/test_http_guard.py,
tests/integration/test_hook_protocol.py)."""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ingest.uvicorn_compat import HOOKED


def test_overridden_callbacks_exist() -> None:
    for name in HOOKED:
        assert callable(getattr(HttpToolsProtocol, name)), name
    assert "cycle" in HttpToolsProtocol.__init__.__code__.co_names


def test_what_the_hook_answers_read_exists() -> None:
    """Hooks answered from the parser callbacks use uvicorn's status lines, its per-connection
    state (cycle, pipeline, tasks, keep-alive timer) and its request state."""
    assert STATUS_LINE[200] == b"HTTP/1.1 200 OK\r\n"
    assert callable(HttpToolsProtocol._unset_keepalive_if_required)
    names = set(HttpToolsProtocol.__init__.__code__.co_names)
    for name in ("pipeline", "tasks", "limit_concurrency", "root_path", "server_state", "loop"):
        assert name in names, name
    begin = set(HttpToolsProtocol.on_message_begin.__code__.co_names)
    assert {"url", "headers", "expect_100_continue"} <= begin
