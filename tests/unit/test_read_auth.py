"""Read-side credentials: when they are required, what passes, and that every route is guarded."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Route

from events.bus import InMemoryBus
from ingest.app import create_app
from ingest.config import IngestConfig
from ingest.read_auth import ReadAuth, is_loopback
from wcs_analytics import dashboard_cli
from wcs_analytics.api import ReadAccess, mount


@pytest.mark.parametrize(
    ("host", "hook_auth", "token", "open_read", "required"),
    [
        ("127.0.0.1", False, None, False, False),  # the laptop default stays open
        ("localhost", False, None, False, False),
        ("::1", False, None, False, False),
        ("0.0.0.0", False, None, False, True),
        ("192.0.2.7", False, None, False, True),
        ("wcs-analytics.internal", False, None, False, True),
        ("127.0.0.1", True, None, False, True),  # hook auth on: the read side too
        ("127.0.0.1", False, "t", False, True),  # credentials configured: used
        ("0.0.0.0", True, None, True, False),  # explicitly opened
    ],
)
def test_when_credentials_are_required(
    host: str, hook_auth: bool, token: str | None, open_read: bool, required: bool
) -> None:
    auth = ReadAuth.decide(host, hook_auth=hook_auth, token=token, basic=None, open_read=open_read)
    assert auth.required is required


def _basic(text: str) -> bytes:
    return b"Basic " + base64.b64encode(text.encode())


AUTH = ReadAuth(True, "tok-1", ("reader", "pw:1"))


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ([], False),
        ([(b"authorization", b"Bearer tok-1")], True),
        ([(b"authorization", b"bearer  tok-1 ")], True),
        ([(b"authorization", b"Bearer tok-2")], False),
        ([(b"authorization", b"Bearer tok-1x")], False),
        ([(b"authorization", _basic("reader:pw:1"))], True),
        ([(b"authorization", _basic("reader:pw"))], False),
        ([(b"authorization", b"Basic !!notbase64")], False),
        ([(b"authorization", b"WCS 0123abcd")], False),  # a hook signature is no read credential
        ([(b"authorization", b"WCS 0123"), (b"authorization", b"Bearer tok-1")], True),
    ],
)
def test_which_credentials_pass(headers: list[tuple[bytes, bytes]], allowed: bool) -> None:
    assert AUTH.allows(headers) is allowed


def test_unusable_lock_and_challenges() -> None:
    assert ReadAuth(True).unusable and not ReadAuth(False).unusable
    assert ReadAuth(True, "t").challenge().startswith("Bearer realm=")
    assert AUTH.challenge().startswith("Basic realm=")
    assert "tok-1" not in repr(AUTH) and "pw:1" not in repr(AUTH)
    assert is_loopback("127.0.0.5") and not is_loopback("0.0.0.0")


def _apps() -> list[FastAPI]:
    access = ReadAccess("chdb:///nonexistent/never-opened", "wcs")  # 401 comes before any query
    run = create_app(IngestConfig(), InMemoryBus(10, lambda e: None), read_auth=AUTH)
    mount(run, access, run.read_dependencies)
    return [run, dashboard_cli.create_app(access, AUTH)]


def _routes(items: list[Any]) -> list[Route]:
    """Every route, through included routers (FastAPI 0.16x keeps them as wrappers holding
    ``original_router``; older versions flatten them into ``app.routes``)."""
    out: list[Route] = []
    for item in items:
        router = getattr(item, "original_router", None)
        out += _routes(router.routes) if router is not None else [item]
    return out


@pytest.mark.parametrize("app", _apps(), ids=["run", "dashboard"])
def test_every_route_but_health_and_hooks_is_guarded(app: FastAPI) -> None:
    """Walks the app's routes, so a route added later is checked without editing this test."""
    checked = []
    with TestClient(app) as client:
        for route in _routes(app.routes):
            assert isinstance(route, Route)
            if route.path in ("/health", "/wcs/{method}"):
                continue
            path = re.sub(r"\{[^}]+\}", "cdr", route.path)
            for method in sorted(route.methods or ()):
                if method == "HEAD":
                    continue
                answer = client.request(method, path)
                assert answer.status_code == 401, (method, route.path, answer.status_code)
                checked.append(route.path)
        assert client.get("/health").status_code == 200
    assert {"/openapi.json", "/docs", "/dashboard", "/api/kpi/calls", "/api/export/{kind}"} <= set(
        checked
    )
    if app.title != "wcs-analytics dashboard":
        # the rated exports (docs/rating.md) are read-side routes of the running service
        assert {"/api/export/{kind}/rated", "/api/export-runs"} <= set(checked), checked
