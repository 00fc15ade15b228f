"""deploy/ is checked against the code: every command, flag and WCS_* variable the compose file,
the Dockerfile and .env.example use exists; required variables fail fast; topics match events."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from events.catalog import FAMILIES
from events.topics import alerts_topic, dead_letter_topic, input_topics
from wcs_analytics import settings
from wcs_analytics.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ROOT = DEPLOY.parent
COMPOSE_TEXT = (DEPLOY / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ENV_EXAMPLE = (DEPLOY / ".env.example").read_text()
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()

COMMANDS = {"run", "ingest", "worker", "replay", "migrate", "simulate", "query"}
PENDING = {"ingest", "worker"}  # announced commands the CLI does not have yet
SETTING_FLAGS = {settings.flag_name(name) for name in settings.FIELDS}
SETTING_VARS = {settings.env_name(name) for name in settings.FIELDS}
INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
APP_SERVICES = [n for n, s in SERVICES.items() if s.get("command", [""])[0] == "wcs-analytics"]


def _subparsers() -> dict[str, Any]:
    for action in build_parser()._subparsers._group_actions:  # argparse has no public accessor
        if action.choices:
            return dict(action.choices)
    raise AssertionError("wcs-analytics has no subcommands")


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _resolve(value: str) -> str:
    """The value compose gives when only defaults apply (required ones get ``x``)."""
    return INTERPOLATION.sub(lambda m: "x" if m.group(2) == ":?" else m.group(3), value)


def _strings(node: Any) -> list[str]:
    """Every string value of the loaded file (comments excluded, x- extensions included)."""
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


VALUES = "\n".join(_strings(COMPOSE))


def _example_values() -> dict[str, str]:
    lines = (line.strip() for line in ENV_EXAMPLE.splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_compose_file_has_the_production_services():
    assert {
        "kafka",
        "topics",
        "clickhouse",
        "migrate",
        "ingest-1",
        "ingest-2",
        "proxy",
        "worker",
    } <= set(SERVICES)
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert "KAFKA_PROCESS_ROLES" in SERVICES["kafka"]["environment"]  # KRaft, no ZooKeeper


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_wcs_analytics_command_and_flag_exists(name):
    argv = SERVICES[name]["command"]
    command = argv[1]
    assert command in COMMANDS, f"{name}: unknown command {command!r}"
    parsers = _subparsers()
    if command in parsers:
        parsers[command].parse_args(argv[2:])  # SystemExit on an unknown flag or bad value
    else:
        assert command in PENDING, f"{name}: {command!r} is not a wcs-analytics command"
        flags = {arg.split("=")[0] for arg in argv[2:] if arg.startswith("--")}
        assert flags <= SETTING_FLAGS, f"{name}: unknown flags {sorted(flags - SETTING_FLAGS)}"


def test_only_the_announced_commands_are_missing_from_the_cli():
    used = {SERVICES[name]["command"][1] for name in APP_SERVICES}
    assert {"migrate", "ingest", "worker"} <= used
    assert used - set(_subparsers()) <= PENDING


def test_every_wcs_variable_is_a_setting():
    used = set(re.findall(r"\bWCS_[A-Z0-9_]+", VALUES))
    used |= {key for name in SERVICES for key in _environment(SERVICES[name])}
    used |= set(re.findall(r"^ENV (WCS_\w+)", DOCKERFILE, flags=re.MULTILINE))
    used |= {k for k in _example_values() if k.startswith("WCS_")}
    used = {var for var in used if var.startswith("WCS_")} - {"WCS_IMAGE_TAG"}  # image tag
    assert len(used) > 10, "WCS_* variables not found"
    assert used <= SETTING_VARS, f"not settings: {sorted(used - SETTING_VARS)}"


def test_every_interpolation_has_a_default_or_fails_fast_with_a_message():
    found = INTERPOLATION.findall(VALUES)
    assert len(found) > 10
    for var, operator, message in found:
        assert operator in (":-", ":?"), f"${{{var}}} needs ${{{var}:-default}} or ${{{var}:?msg}}"
        if operator == ":?":
            assert var in message and "deploy/.env" in message, var
    assert "$" not in INTERPOLATION.sub("", VALUES), "a $VAR without braces"


def test_required_variables_are_the_secrets_and_are_documented_empty():
    found = INTERPOLATION.findall(VALUES)
    required = {var for var, operator, _ in found if operator == ":?"}
    assert required == {"CLICKHOUSE_PASSWORD", "CLICKHOUSE_READER_PASSWORD", "WCS_READ_TOKEN"}
    example = _example_values()
    assert {var for var, _, _ in found} <= set(example), "undocumented variables"
    assert all(example[var] == "" for var in required)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_environment_is_valid_settings(name):
    env = {k: _resolve(v) for k, v in _environment(SERVICES[name]).items()}
    loaded = settings.load(env)  # SettingsError names a bad variable
    if "WCS_KAFKA" in env:
        assert loaded.kafka == "kafka:9092"
        assert loaded.create_topics is False
    if "WCS_CLICKHOUSE" in env:
        assert loaded.dsn == "http://wcs:x@clickhouse:8123"
        assert not loaded.embedded


def test_example_values_are_valid_settings():
    example = _example_values()
    env = {k: v for k, v in example.items() if k in SETTING_VARS}
    loaded = settings.load(env)
    assert loaded.topic_partitions == int(example["WCS_TOPIC_PARTITIONS"])


def test_dependencies_wait_for_health_or_completion():
    for name, service in SERVICES.items():
        for other, rule in service.get("depends_on", {}).items():
            assert other in SERVICES, f"{name} depends on unknown {other}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[other], f"{other} has no healthcheck"
            else:
                assert condition == "service_completed_successfully", (name, other)
                assert SERVICES[other]["restart"] == "no", f"{other} is one-shot"
    for name in ("kafka", "clickhouse", "ingest-1", "ingest-2", "proxy"):
        assert "healthcheck" in SERVICES[name], name
    assert "/health" in " ".join(SERVICES["ingest-1"]["healthcheck"]["test"])
    assert set(SERVICES["worker"]["depends_on"]) == {"kafka", "topics", "migrate"}


def test_apps_and_topics_service_agree_on_topic_sizes():
    topics = _environment(SERVICES["topics"])
    for name in ("ingest-1", "worker"):
        env = _environment(SERVICES[name])
        assert env["WCS_TOPIC_PARTITIONS"] == topics["PARTITIONS"], name
        assert env["WCS_TOPIC_REPLICATION"] == topics["REPLICATION"], name
        assert env["WCS_TOPIC_PREFIX"] == topics["TOPIC_PREFIX"], name


def test_each_ingest_replica_has_its_own_spool_volume():
    volumes = [SERVICES[f"ingest-{i}"]["volumes"][0] for i in (1, 2)]
    assert volumes[0] != volumes[1]
    assert all(v.split(":")[1] == "/data" for v in volumes)


def test_proxy_sends_to_every_ingest_replica_on_its_port():
    conf = (DEPLOY / "proxy" / "nginx.conf").read_text()
    upstreams = set(re.findall(r"^\s*server ([\w-]+):(\d+)", conf, flags=re.MULTILINE))
    ingest = {n for n in APP_SERVICES if SERVICES[n]["command"][1] == "ingest"}
    assert {host for host, _ in upstreams} == ingest == {"ingest-1", "ingest-2"}
    argv = SERVICES["ingest-1"]["command"]
    assert {port for _, port in upstreams} == {argv[argv.index("--port") + 1]}
    assert "non_idempotent" in conf  # hooks are POSTs: retry them on the other replica


def test_topics_script_lists_every_topic_of_the_code():
    script = (DEPLOY / "topics.sh").read_text()
    families = re.search(r'^FAMILIES="([^"]*)"', script, flags=re.MULTILINE)
    assert families and families.group(1).split() == list(FAMILIES)
    wanted = {*input_topics("${TOPIC_PREFIX}"), alerts_topic("${TOPIC_PREFIX}"),
              dead_letter_topic("${TOPIC_PREFIX}")}  # fmt: skip
    planned = set(re.findall(r'echo "(\$\{TOPIC_PREFIX\}[\w.-]+) ', script))
    planned |= {f"${{TOPIC_PREFIX}}{f}" for f in FAMILIES if "${TOPIC_PREFIX}${family}" in script}
    assert planned == wanted


def test_dockerfile_installs_the_compiled_wheel_on_python_311():
    assert DOCKERFILE.startswith("#") and "\nFROM python:3.11-slim\n" in DOCKERFILE
    # the build stage has the C compiler and everything setup.py reads; the image gets the wheel
    assert "FROM python:3.11-slim AS build" in DOCKERFILE and " gcc " in DOCKERFILE
    # every file the build reads from the project root (a missing license file fails it)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed = {"pyproject.toml", "setup.py", project["readme"], *project["license-files"]}
    copied = re.search(r"^COPY ((?:\S+ )+)\./$", DOCKERFILE, flags=re.MULTILINE)
    assert copied and needed <= set(copied.group(1).split()), needed
    assert "RUN pip wheel --no-cache-dir --no-deps -w /wheels ." in DOCKERFILE
    assert "RUN pip install /wheels/*.whl" in DOCKERFILE
    build = SERVICES["migrate"]["build"]
    assert (build["context"], build["dockerfile"]) == ("..", "deploy/Dockerfile")
