#!/usr/bin/env bash
# Create (or list/describe) the wcs-analytics Kafka topics with their partitions and retention.
# Sizes and the reasons behind them: deploy/topics.md.
#
#   deploy/topics.sh create     create every missing topic (existing ones are left as they are)
#   deploy/topics.sh describe   show partitions, replicas and configs of the topics
#   deploy/topics.sh list       print the topic names this script manages, one a line (no broker)
#
# Environment: KAFKA_BOOTSTRAP (127.0.0.1:9092), TOPIC_PREFIX (wcs., = --topic-prefix),
# PARTITIONS (8), REPLICATION (1), MIN_INSYNC (1; use 2 with REPLICATION=3),
# INPUT_RETENTION_MS (7 d), ALERTS_RETENTION_MS (3 d), DEAD_LETTER_RETENTION_MS (30 d),
# MAX_MESSAGE_BYTES (2 MiB: a hook body may be 1 MiB, plus the envelope), ONLY (an extended
# regular expression: manage only the topics whose name ends with a match, e.g. 'call|dead-letter').
# Kafka's own tool: kafka-topics.sh on PATH or in /opt/kafka/bin (the apache/kafka image), else
# org.apache.kafka.tools.TopicCommand from .kafka/libs (deploy/kafka/kafka.sh fetch; needs Java).
# Rows and state do not cross Kafka (the workers write them to ClickHouse); Faust's own
# assignor topic is created by the workers.
set -euo pipefail

# events.catalog.FAMILIES (tests/unit/test_deploy.py keeps them in sync with events.topics)
FAMILIES="connection call message subscription stream data diagnostic unknown"

KAFKA_BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
TOPIC_PREFIX="${TOPIC_PREFIX:-wcs.}"
PARTITIONS="${PARTITIONS:-8}"
REPLICATION="${REPLICATION:-1}"
MIN_INSYNC="${MIN_INSYNC:-1}"
INPUT_RETENTION_MS="${INPUT_RETENTION_MS:-604800000}"
ALERTS_RETENTION_MS="${ALERTS_RETENTION_MS:-259200000}"
DEAD_LETTER_RETENTION_MS="${DEAD_LETTER_RETENTION_MS:-2592000000}"
MAX_MESSAGE_BYTES="${MAX_MESSAGE_BYTES:-2097152}"

here="$(cd "$(dirname "$0")" && pwd)"
libs="${KAFKA_HOME:-$here/../.kafka}/libs"

say() { echo "topics.sh: $*" >&2; }

kafka_topics() {
  if command -v kafka-topics.sh >/dev/null 2>&1; then
    kafka-topics.sh "$@"
  elif [ -x /opt/kafka/bin/kafka-topics.sh ]; then
    /opt/kafka/bin/kafka-topics.sh "$@"
  elif [ -d "$libs" ] && command -v java >/dev/null 2>&1; then
    java -Xmx256m -cp "$libs/*" org.apache.kafka.tools.TopicCommand "$@"
  else
    say "no kafka-topics.sh and no $libs (run deploy/kafka/kafka.sh fetch)"; exit 3
  fi
}

# one line per topic: name retention.ms
plan() {
  {
    for family in $FAMILIES; do echo "${TOPIC_PREFIX}${family} $INPUT_RETENTION_MS"; done
    echo "${TOPIC_PREFIX}alerts $ALERTS_RETENTION_MS"
    echo "${TOPIC_PREFIX}dead-letter $DEAD_LETTER_RETENTION_MS"
  } | { if [ -n "${ONLY:-}" ]; then grep -E -- "^[^ ]*(${ONLY}) " || true; else cat; fi; }
}

create() {
  local topic retention
  while read -r topic retention; do
    kafka_topics --bootstrap-server "$KAFKA_BOOTSTRAP" --create --if-not-exists \
      --topic "$topic" --partitions "$PARTITIONS" --replication-factor "$REPLICATION" \
      --config "retention.ms=$retention" --config "min.insync.replicas=$MIN_INSYNC" \
      --config "max.message.bytes=$MAX_MESSAGE_BYTES" >/dev/null
    say "$topic: ok ($PARTITIONS partitions, rf $REPLICATION, retention.ms $retention)"
  done < <(plan)
}

describe() {
  kafka_topics --bootstrap-server "$KAFKA_BOOTSTRAP" --describe \
    --topic "$(printf '%s' "$TOPIC_PREFIX" | sed 's/[.]/[.]/g').*"
}

case "${1:-}" in
  create) create ;;
  describe) describe ;;
  list) plan | cut -d' ' -f1 ;;
  *) sed -n '2,17p' "$0" >&2; exit 2 ;;
esac
