"""Create the Kafka topics on start when missing, or verify them when auto-creation is off.

Safe with several replicas starting at once: a topic another replica created in
between (``TopicAlreadyExists``) counts as present. Other per-topic errors (bad
replication factor, policy violations) raise ``TopicsError`` naming the topic.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

log = logging.getLogger(__name__)

ALREADY_EXISTS: Final = 36  # Kafka error code TOPIC_ALREADY_EXISTS
REQUEST_TIMEOUT_MS: Final = 15_000


class TopicsError(RuntimeError):
    """Topics are missing and cannot be created; the message says which and why."""


class TopicsMissing(TopicsError):
    """Topics do not exist and creating them is switched off (--create-topics false)."""


async def ensure_topics(
    bootstrap: str,
    topics: Sequence[str],
    *,
    partitions: int,
    replication: int,
    create: bool,
) -> list[str]:
    """Make sure ``topics`` exist; returns the ones this call created.

    Raises TopicsMissing (creation off), TopicsError (the broker refused), and
    aiokafka's KafkaError / OSError when the broker cannot be reached.
    """
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=REQUEST_TIMEOUT_MS)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return []
        if not create:
            raise TopicsMissing(
                f"Kafka topics missing and --create-topics is off: {', '.join(missing)} "
                "(create them, see deploy/topics.md)"
            )
        created = await _create(admin, missing, partitions, replication)
    finally:
        await admin.close()
    if created:
        log.info("created Kafka topics %s (%d partitions, rf %d)", created, partitions, replication)
    return created


async def _create(admin: Any, names: list[str], partitions: int, replication: int) -> list[str]:
    from aiokafka.admin import NewTopic

    response = await admin.create_topics(
        [NewTopic(t, num_partitions=partitions, replication_factor=replication) for t in names]
    )
    created, failed = check_created(response.topic_errors)
    if failed:
        raise TopicsError("creating Kafka topics failed: " + "; ".join(failed))
    return created


def check_created(topic_errors: Sequence[tuple[Any, ...]]) -> tuple[list[str], list[str]]:
    """(created topics, failure messages) from a CreateTopics response's ``topic_errors``.

    A topic that already exists (another replica was faster) is neither.
    """
    created: list[str] = []
    failed: list[str] = []
    for topic, code, *rest in topic_errors:
        if code == 0:
            created.append(topic)
        elif code != ALREADY_EXISTS:
            message = rest[0] if rest and rest[0] else f"error code {code}"
            failed.append(f"{topic}: {message}")
    return created, failed
