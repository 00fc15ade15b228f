"""One settings object: defaults < WCS_* environment < flags, validated with a named variable."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from wcs_analytics import settings as s


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    s.add_flags(parser)
    return parser.parse_args(list(argv))


def test_defaults_work_on_a_laptop() -> None:
    got = s.load({})
    assert (got.host, got.port, got.database) == ("127.0.0.1", 8090, "wcs")
    assert got.embedded and got.dsn == f"chdb://{(Path('data') / 'chdb').resolve()}"
    assert got.owner_dir == Path("data")


def test_environment_then_flags_win() -> None:
    env = {"WCS_PORT": "9000", "WCS_BATCH_ROWS": "10", "WCS_REDACT_KEYS": "a, b,,c"}
    got = s.load(env, _args("--port", "9100"))
    assert got.port == 9100  # flag beats environment
    assert got.batch_rows == 10
    assert got.redact_keys == ("a", "b", "c")
    assert got.ingest_config().redact_keys[-3:] == ("a", "b", "c")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"WCS_PORT": "0"}, "WCS_PORT"),
        ({"WCS_PORT": "http"}, "WCS_PORT"),
        ({"WCS_CLICKHOUSE": "mysql://x"}, "WCS_CLICKHOUSE"),
        ({"WCS_ACK": "maybe"}, "WCS_ACK"),
        ({"WCS_KAFKA": "nohost"}, "WCS_KAFKA"),
        ({"WCS_DATABASE": "drop table"}, "WCS_DATABASE"),
        ({"WCS_BASIC_USER": "u"}, "WCS_BASIC_PASSWORD"),
        ({"WCS_REST_CLIENT_CONFIG": "[1]"}, "WCS_REST_CLIENT_CONFIG"),
        ({"WCS_WORKER_CLOCK": "sundial"}, "WCS_WORKER_CLOCK"),
        ({"WCS_PROCESSING": "threads"}, "WCS_PROCESSING"),
        ({"WCS_KAFKA_BATCH_LINGER_MS": "-1"}, "WCS_KAFKA_BATCH_LINGER_MS"),
        ({"WCS_KAFKA_BATCH_LINGER_MS": "1001"}, "WCS_KAFKA_BATCH_LINGER_MS.*WCS_HOOK_BUDGET_MS"),
        ({"WCS_KAFKA_BATCH_MAX_ENVELOPES": "0"}, "WCS_KAFKA_BATCH_MAX_ENVELOPES"),
        ({"WCS_KAFKA_BATCH_MAX_BYTES": "1000001"}, "WCS_KAFKA_BATCH_MAX_BYTES.*1048588"),
        ({"WCS_KAFKA_BATCH_MAX_BYTES": "1023"}, "WCS_KAFKA_BATCH_MAX_BYTES"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(s.SettingsError, match=named):
        s.load(env)


def test_secrets_never_show_in_errors_or_repr() -> None:
    got = s.load({"WCS_HMAC_SECRET": "hunter2-secret"})
    assert "hunter2" not in repr(got)
    assert got.ingest_config().hmac_secret == "hunter2-secret"
    with pytest.raises(s.SettingsError) as raised:
        s.load({"WCS_HMAC_SECRET": "x", "WCS_BASIC_PASSWORD": "pw-secret"})
    assert "pw-secret" not in str(raised.value)


def test_explicit_chdb_dsn_is_owned_through_its_parent_directory() -> None:
    got = s.load({"WCS_CLICKHOUSE": "chdb:///srv/wcs/chdb"})
    assert got.owner_dir == Path("/srv/wcs")
    server = s.load({"WCS_CLICKHOUSE": "http://u:p@ch:8123"})
    assert not server.embedded


def test_batch_records_default_to_a_few_ms_and_stay_below_kafkas_limit() -> None:
    got = s.load({})
    assert got.kafka_batch_linger_ms == 5
    assert got.kafka_batch_max_envelopes == 500
    assert got.kafka_batch_max_bytes == 512 << 10 < 1_048_588
    edge = {"WCS_KAFKA_BATCH_LINGER_MS": "0", "WCS_KAFKA_BATCH_MAX_BYTES": "1000000"}
    assert s.load(edge).kafka_batch_max_bytes == 1_000_000
    assert s.load({"WCS_HOOK_BUDGET_MS": "100", "WCS_KAFKA_BATCH_LINGER_MS": "50"})


@pytest.mark.parametrize(
    ("setting", "cpus", "mode"),
    [("auto", 1, "inline"), ("auto", 2, "process"), ("auto", 16, "process"),
     ("inline", 8, "inline"), ("process", 1, "process")],
)  # fmt: skip
def test_processing_runs_in_its_own_process_when_there_is_a_cpu_for_it(
    setting: str, cpus: int, mode: str
) -> None:
    from wcs_analytics.service import processing_mode

    assert processing_mode(setting, cpus) == mode
