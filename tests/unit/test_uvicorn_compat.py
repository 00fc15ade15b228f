"""The uvicorn callbacks ``ingest.uvicorn_compat`` overrides exist in the installed version
(a real server behind the guard: tests/integration/test_http_guard.py)."""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ingest.uvicorn_compat import HOOKED


def test_overridden_callbacks_exist() -> None:
    for name in HOOKED:
        assert callable(getattr(HttpToolsProtocol, name)), name
    assert "cycle" in HttpToolsProtocol.__init__.__code__.co_names
