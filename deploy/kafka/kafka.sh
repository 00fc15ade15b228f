#!/usr/bin/env bash
# A single-node KRaft Apache Kafka for development, tests and CI, fetched from Maven Central.
#
#   deploy/kafka/kafka.sh fetch    download the broker jars (cached in .kafka/libs)
#   deploy/kafka/kafka.sh start    fetch, format storage (once), start on 127.0.0.1:$KAFKA_PORT, wait until ready
#   deploy/kafka/kafka.sh stop     stop it (data kept; `reset` removes it)
#   deploy/kafka/kafka.sh status   exit 0 when running and accepting connections
#   deploy/kafka/kafka.sh reset    stop and delete data and logs
#
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1), KAFKA_HOME (.kafka under the
# repository), KAFKA_HEAP (512m), KAFKA_START_TIMEOUT (90 s). Idempotent: start on a running broker
# only reports it; a port held by another process stops it (exit 4). Needs Java 17+ and Maven.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_HOME="${KAFKA_HOME:-$repo/.kafka}"
KAFKA_HEAP="${KAFKA_HEAP:-512m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
libs="$KAFKA_HOME/libs"
inst="$KAFKA_HOME/broker-$KAFKA_PORT"
pidfile="$inst/kafka.pid"
log="$inst/server.log"

say() { echo "kafka.sh: $*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 || { say "$1 not found: $2"; exit 3; }
}

fetch() {
  if [ -f "$libs/.complete" ]; then return 0; fi
  need java "install a Java 17+ runtime (e.g. apt-get install -y openjdk-17-jre-headless)"
  need mvn "install Maven (e.g. apt-get install -y maven)"
  say "fetching Kafka from Maven Central into $libs"
  mkdir -p "$libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$libs" -DincludeScope=runtime
  touch "$libs/.complete"
}

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/${1:-$KAFKA_PORT}") 2>/dev/null
}

# a port some other process holds: say which and how to choose another, before fetching anything
port_free() {
  local name="$1" port="$2"
  if listening "$port"; then
    say "127.0.0.1:$port is already in use by another process; stop it or choose a free port with" \
      "$name (e.g. $name=$((port + 100)) make kafka)"
    exit 4
  fi
}

write_config() {
  mkdir -p "$inst/data"
  cat >"$inst/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$inst/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
PROPS
  cat >"$inst/log4j2.yaml" <<'YAML'
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka
        level: WARN
      - name: org.apache.kafka
        level: WARN
      - name: kafka.server.KafkaRaftServer
        level: INFO
YAML
}

java_cmd() {
  java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$inst/log4j2.yaml" -cp "$libs/*" "$@"
}

format_storage() {
  if [ -f "$inst/data/meta.properties" ]; then return 0; fi
  local cluster_id
  cluster_id="$(java_cmd kafka.tools.StorageTool random-uuid 2>>"$log" | tail -n 1)"
  say "formatting storage in $inst/data (cluster $cluster_id)"
  java_cmd kafka.tools.StorageTool format --standalone -t "$cluster_id" \
    -c "$inst/server.properties" >>"$log" 2>&1 || {
    say "format failed:"; tail -n 20 "$log" >&2; exit 1; }
}

start() {
  if running && listening; then say "already running on 127.0.0.1:$KAFKA_PORT (pid $(cat "$pidfile"))"; return 0; fi
  port_free KAFKA_PORT "$KAFKA_PORT"
  port_free KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
  fetch
  write_config
  format_storage
  say "starting on 127.0.0.1:$KAFKA_PORT (log $log)"
  local seen; seen="$(wc -l <"$log" 2>/dev/null || echo 0)"  # readiness: only new log lines count
  nohup bash -c "exec $(printf '%q ' java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$inst/log4j2.yaml" -cp "$libs/*" kafka.Kafka \
    "$inst/server.properties")" >>"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  local waited=0
  until listening && tail -n "+$((seen + 1))" "$log" | grep -q "Kafka Server started"; do
    if ! running; then say "broker exited; last log lines:"; tail -n 30 "$log" >&2; exit 1; fi
    if [ "$waited" -ge $((KAFKA_START_TIMEOUT * 10)) ]; then
      say "not ready after ${KAFKA_START_TIMEOUT}s"; tail -n 30 "$log" >&2; exit 1
    fi
    sleep 0.1; waited=$((waited + 1))
  done
  say "ready on 127.0.0.1:$KAFKA_PORT"
}

stop() {
  if ! running; then rm -f "$pidfile"; say "not running"; return 0; fi
  local pid; pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  say "stopped"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) running && listening ;;
  reset) stop; rm -rf "$inst" ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
