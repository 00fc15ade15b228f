"""``--help`` of every subcommand shows the defaults of its settings."""

from __future__ import annotations

import argparse

import pytest

from wcs_analytics.cli import build_parser


def _help(command: str) -> str:
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return " ".join(sub.choices[command].format_help().split())


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("run", "(default: 8090) [env WCS_PORT]"),
        ("run", "(default: 127.0.0.1) [env WCS_HOST]"),
        ("run", "(default: 1048576) [env WCS_MAX_BODY_BYTES]"),
        ("run", "(default: true) [env WCS_CREATE_TOPICS]"),
        ("ingest", "(default: broker) [env WCS_ACK]"),
        ("worker", "(default: wall) [env WCS_WORKER_CLOCK]"),
        ("query", "(default: tsv)"),
        ("simulate", "(default: 16)"),
        ("dashboard", "(default: 8091)"),
    ],
)
def test_help_shows_defaults(command: str, shown: str) -> None:
    assert shown in _help(command)


def test_help_hides_secrets_and_unset_values() -> None:
    text = _help("run")
    hmac_help = text.split("--hmac-secret VALUE WCS rest_hook_secret_key", 1)[1].split("[env")[0]
    assert "default" not in hmac_help
    assert "(default: None)" not in text
