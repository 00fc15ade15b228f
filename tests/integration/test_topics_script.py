"""deploy/topics.sh: the topic names of events.topics, created on a real broker as sized."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from events.topics import alerts_topic, dead_letter_topic, family_topic, input_topics

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "topics.sh"


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_list_names_every_topic_of_events_topics():
    listed = _run("list", TOPIC_PREFIX="p.")
    assert listed.returncode == 0, listed.stderr
    expected = [*input_topics("p."), alerts_topic("p."), dead_letter_topic("p.")]
    assert listed.stdout.split() == expected


def test_unknown_action_prints_usage_and_fails():
    result = _run("bogus")
    assert result.returncode == 2
    assert "deploy/topics.sh create" in result.stderr


async def _describe(bootstrap: str, topics: list[str]) -> dict[str, tuple[int, str]]:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
        partitions = {t["topic"]: len(t["partitions"]) for t in described}
        resources = [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
        retention = {}
        for response in await admin.describe_configs(resources):
            for _, _, _, name, entries in response.resources:
                retention[name] = next(e[1] for e in entries if e[0] == "retention.ms")
        return {t: (partitions[t], retention[t]) for t in topics}
    finally:
        await admin.close()


def test_create_makes_sized_topics_and_is_idempotent(kafka_bootstrap, topic_prefix):
    if not (REPO / ".kafka" / "libs").is_dir() or shutil.which("java") is None:
        pytest.skip("topics.sh needs .kafka/libs and java (deploy/kafka/kafka.sh fetch)")
    env = {
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "TOPIC_PREFIX": topic_prefix,
        "PARTITIONS": "3",
        "ONLY": "call|alerts|dead-letter",
    }
    for _ in range(2):  # the second run finds them and changes nothing
        created = _run("create", **env)
        assert created.returncode == 0, created.stderr
    topics = [
        family_topic(topic_prefix, "call"),
        alerts_topic(topic_prefix),
        dead_letter_topic(topic_prefix),
    ]
    found = asyncio.run(_describe(kafka_bootstrap, topics))
    assert found == {
        topics[0]: (3, str(7 * 86_400_000)),
        topics[1]: (3, str(3 * 86_400_000)),
        topics[2]: (3, str(30 * 86_400_000)),
    }
