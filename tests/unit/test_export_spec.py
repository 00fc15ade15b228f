"""Export input validation (sinks/exports/spec.py) and CLI progress reporting."""

from __future__ import annotations

import io

import pytest

from sinks.exports.rounding import Rounding
from sinks.exports.spec import custom_field, make_spec, parse_group_by, parse_time
from wcs_analytics.export_cli import Progress


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1700000040000", 1_700_000_040_000),
        ("2023-11-14T22:14:00Z", 1_700_000_040_000),
        ("2023-11-14T22:14:00", 1_700_000_040_000),  # no zone = UTC
        ("2023-11-14T23:14:00+01:00", 1_700_000_040_000),
        ("2023-11-14T22:14:00.250Z", 1_700_000_040_250),
        ("2023-11-14", 1_699_920_000_000),
    ],
)
def test_parse_time(text: str, ms: int) -> None:
    assert parse_time(text) == ms


def test_parse_time_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not a time"):
        parse_time("yesterday")


def test_group_by_keys() -> None:
    assert parse_group_by("app_key, caller") == ("app_key", "caller")
    assert parse_group_by("sip_login,custom.tenant_id") == ("sip_login", "custom.tenant_id")
    assert custom_field("custom.tenant_id") == "tenant_id"
    assert custom_field("caller") is None


@pytest.mark.parametrize(
    "text", ["", "app", "custom.", "custom.a'b", "custom.a b", "app_key,app_key", "custom.x.y"]
)
def test_group_by_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_group_by(text)


def test_make_spec_defaults_and_formats() -> None:
    spec = make_spec("billing", "2023-11-14", "2023-11-15")
    assert (spec.group_by, spec.rounding, spec.fmt) == (("app_key",), Rounding(60, 6), "csv")
    assert spec.to_ms - spec.from_ms == 86_400_000
    assert make_spec("sdr", "1", "2").fmt == "sdr"
    assert make_spec("cdr", "1", "2", fmt="parquet").fmt == "parquet"
    with pytest.raises(ValueError, match="sdr export formats"):
        make_spec("sdr", "1", "2", fmt="csv")
    with pytest.raises(ValueError, match="period is empty"):
        make_spec("cdr", "2", "2")
    with pytest.raises(ValueError, match="unknown export"):
        make_spec("mdr", "1", "2")


def test_progress_reports_every_two_seconds_on_stderr() -> None:
    now = [100.0]
    err = io.BytesIO()
    progress = Progress(False, err, lambda: now[0])
    progress.add(b"a\nb\n")
    assert err.getvalue() == b""
    now[0] = 102.0
    progress.add(b"c\n")
    now[0] = 103.0
    progress.add(b"d\n")
    assert err.getvalue() == b"export: 3 lines written so far\n"
    progress.report("written")
    assert err.getvalue().endswith(b"export: 4 lines written\n")
    binary = Progress(True, err, lambda: 0.0)
    binary.add(b"PAR1\n")
    binary.report("written")
    assert err.getvalue().endswith(b"export: 5 bytes written\n")
