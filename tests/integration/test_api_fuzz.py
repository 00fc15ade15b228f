"""A short API fuzz: schemathesis against the service's own /openapi.json (in process).

The ``run`` service's app (hook route, /metrics, /health, docs, KPI and export routes on a
migrated chDB database) with the read side locked by a bearer token. Every operation gets a
few generated requests (deterministic: derandomized Hypothesis); every answer must be
documented in the spec (status, content type, schema) and no 5xx other than documented ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from events.bus import InMemoryBus
from ingest.app import create_app
from ingest.config import IngestConfig
from ingest.read_auth import ReadAuth
from sinks.client import connect
from sinks.migrations import migrate
from wcs_analytics.api import ReadAccess, mount

pytestmark = pytest.mark.integration

TOKEN = "fuzz-read-token"
# a schema-valid time string may still be refused with the documented 400 (not a time, out of
# 1970..2100, an empty or too long period): OpenAPI cannot express those rules
EXCLUDED = [checks.positive_data_acceptance]


@pytest.fixture
def api_schema(chdb_dsn: str, fresh_db: str) -> Iterator[Any]:
    client = connect(chdb_dsn, "default")
    try:
        migrate(client, fresh_db)
    finally:
        client.close()
    access = ReadAccess(chdb_dsn, fresh_db)
    kept: list[object] = []
    app = create_app(
        IngestConfig(), InMemoryBus(100_000, kept.append), read_auth=ReadAuth(True, TOKEN)
    )
    mount(app, access, app.read_dependencies)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app, headers=_auth())
    finally:
        access.close()


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_api_answers_match_the_spec(api_schema: Any) -> None:
    """Each operation in turn (schemathesis's pytest fixture loader does not run on this pytest)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/wcs/{method}", "/metrics", "/api/kpi/calls"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            case.call_and_validate(headers=_auth(), excluded_checks=EXCLUDED)

        fuzz()
