"""DSN validation in sinks.client (pure: parse_dsn does no IO)."""

from __future__ import annotations

import pytest

from sinks.client import parse_dsn
from sinks.errors import ConfigError


@pytest.mark.parametrize(
    ("dsn", "scheme", "display", "path"),
    [
        ("chdb:///var/lib/wcs/chdb", "chdb", "chdb:///var/lib/wcs/chdb", "/var/lib/wcs/chdb"),
        ("http://default:secret@ch:8123", "http", "http://ch:8123", None),
        (
            "https://u:p%40ss@ch.example.com:8443/?compress=lz4",
            "https",
            "https://ch.example.com:8443",
            None,
        ),
        ("http://localhost", "http", "http://localhost", None),
    ],
)
def test_valid_dsns(dsn, scheme, display, path):
    target = parse_dsn(dsn)
    assert (target.scheme, target.display, target.path) == (scheme, display, path)


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("clickhouse://u:p@host:9000", "scheme 'clickhouse' is not supported"),
        ("postgres://x", "is not supported"),
        ("/abs/path", "scheme '' is not supported"),
        ("chdb://relative/path", "absolute directory"),
        ("chdb:relative", "absolute directory"),
        ("chdb://", "absolute directory"),
        ("http://u:p@:8123", "no host"),
        ("http://u:p@host:8123/wcs", "must not name a database"),
        ("http://u:p@host:notaport", "malformed"),
    ],
)
def test_invalid_dsns_raise_config_error(dsn, message):
    with pytest.raises(ConfigError, match=message):
        parse_dsn(dsn)


def test_error_never_echoes_the_password():
    with pytest.raises(ConfigError) as info:
        parse_dsn("http://admin:hunter2@host:8123/db")
    assert "hunter2" not in str(info.value)
