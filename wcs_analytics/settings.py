"""One typed settings object for the wcs-analytics service.

Every setting is defined once in ``FIELDS``: its environment variable
(``WCS_<NAME>``), its command-line flag (``--name-with-dashes``), its type and
default. Values come from defaults, then the environment, then flags, and are
validated at start-up with an error naming the variable and the problem.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from ingest.config import IngestConfig
from ingest.connections import ConnectionLimits
from ingest.read_auth import ReadAuth
from processors.config import ProcessorConfig

# Kafka's default max.message.bytes is 1048588 and aiokafka's max_request_size 1048576:
# a batch record value stays below both with room for its key, headers and framing.
MAX_RECORD_BYTES: Final = 1_000_000


class SettingsError(ValueError):
    """A setting has a bad value; the message names the variable."""


class Secret:
    """A string that never shows up in repr, logs or errors."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be > 0, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must be >= 0, got {value}")
    return value


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.strip():
        return None
    source = Path(text[1:]).read_bytes() if text.startswith("@") else text
    value = orjson.loads(source)
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object (or @file holding one)")
    return value


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _secret(text: str) -> Secret | None:
    return Secret(text) if text else None


def _opt(text: str) -> str | None:
    return text or None


def _opt_path(text: str) -> Path | None:
    return Path(text) if text else None


def _setting(default: Any, parse: Callable[[str], Any], help: str, **extra: Any) -> Any:
    meta = {"parse": parse, "help": help, **extra}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = _setting("127.0.0.1", str, "address to listen on (0.0.0.0 to let WCS reach it)")
    port: int = _setting(8090, _positive_int, "HTTP port for the hooks, /metrics, /health")
    data_dir: Path = _setting(Path("data"), Path, "where embedded data lives (chDB, spool, state)")
    clickhouse: str | None = _setting(
        None, _opt, "ClickHouse DSN: chdb:///abs/path or http(s)://user:pass@host:8123"
    )
    database: str = _setting("wcs", str, "ClickHouse database name")
    clickhouse_cluster: str | None = _setting(
        None, _opt, "ClickHouse cluster name: DDL ON CLUSTER with Replicated engines"
    )
    log_level: str = _setting("info", str, "debug, info, warning or error")
    queue_size: int = _setting(100_000, _positive_int, "in-process bus bound (envelopes)")
    shutdown_timeout_ms: int = _setting(
        30_000,
        _positive_int,
        "SIGTERM: exit within this; what the database has not taken by then is spooled",
    )
    batch_rows: int = _setting(100_000, _positive_int, "flush to ClickHouse after this many rows")
    batch_interval_ms: int = _setting(1000, _positive_int, "... or after this many ms")
    processing: str = _setting(
        "auto",
        str,
        "run: process (the runtime in a process of its own, beside the one answering hooks), "
        "inline (one process) or auto (process with 2 or more usable CPUs)",
    )
    max_body_bytes: int = _setting(1 << 20, _positive_int, "largest hook body accepted (413 above)")
    max_connections: int = _setting(
        10_000, _positive_int, "open HTTP connections at most (kept under the open-files limit)"
    )
    connection_reserve: int = _setting(
        1_000,
        _positive_int,
        "connection slots kept for requests in progress: above the cap minus this, the oldest "
        "idle or slow connections are closed",
    )
    header_timeout_ms: int = _setting(
        10_000,
        _positive_int,
        "close a connection whose request headers are not complete this long after it "
        "connected or got its previous answer",
    )
    body_timeout_ms: int = _setting(
        15_000, _positive_int, "close a connection whose request body takes longer than this"
    )
    redact_keys: tuple[str, ...] = _setting(
        (), _csv, "extra body keys to remove before storing (sipPassword, authToken, token always)"
    )
    hmac_secret: Secret | None = _setting(
        None,
        _secret,
        "WCS rest_hook_secret_key: require 'Authorization: WCS <hmac-md5>'",
        secret=True,
    )
    basic_user: str | None = _setting(None, _opt, "require HTTP Basic auth with this user")
    basic_password: Secret | None = _setting(None, _secret, "... and this password", secret=True)
    read_token: Secret | None = _setting(
        None,
        _secret,
        "bearer token for the read side: /dashboard, /api/*, /metrics, /docs (Grafana, Prometheus)",
        secret=True,
    )
    read_user: str | None = _setting(None, _opt, "HTTP Basic user for the read side (browsers)")
    read_password: Secret | None = _setting(None, _secret, "... and its password", secret=True)
    read_open: bool = _setting(
        False,
        _bool,
        "serve the read side without credentials although listening beyond loopback or with "
        "hook auth on (else it answers 401)",
    )
    rest_client_config: dict[str, Any] | None = _setting(
        None, _json_object, "restClientConfig object (JSON or @file) added to connect answers"
    )
    kafka: str | None = _setting(
        None, _opt, "Kafka bootstrap servers HOST:PORT[,HOST:PORT]: production path via Kafka"
    )
    topic_prefix: str = _setting("wcs.", str, "Kafka topic prefix (topics <prefix><family>)")
    topic_partitions: int = _setting(8, _positive_int, "partitions of topics created on start")
    topic_replication: int = _setting(1, _positive_int, "replication factor of created topics")
    create_topics: bool = _setting(True, _bool, "create missing topics on start (else verify)")
    ack: str = _setting(
        "broker", str, "answer WCS after the broker acknowledged (broker) or once queued (buffer)"
    )
    hook_budget_ms: int = _setting(2000, _positive_int, "longest a hook waits for Kafka")
    kafka_linger_ms: int = _setting(
        5, int, "worker producer batching delay (ingest uses --kafka-batch-linger-ms)"
    )
    kafka_batch_linger_ms: int = _setting(
        5, _non_negative_int, "ingest/replay: ms a partition's batch record waits for envelopes"
    )
    kafka_batch_max_envelopes: int = _setting(
        500, _positive_int, "ingest/replay: most envelopes in one Kafka record"
    )
    kafka_batch_max_bytes: int = _setting(
        512 << 10,
        _positive_int,
        f"ingest/replay: largest Kafka record value in bytes (1024 to {MAX_RECORD_BYTES})",
    )
    spool_max_bytes: int = _setting(1 << 30, _positive_int, "disk spool bound when Kafka is down")
    spool_full: str = _setting(
        "drop",
        str,
        "when an envelope cannot be kept (spool full or unwritable): drop (answer 200, count, "
        "log) or reject (answer 503; see docs/production.md for what WCS does then)",
    )
    consumer_group: str = _setting("wcs-analytics", str, "Kafka consumer group of the workers")
    worker_clock: str = _setting(
        "wall",
        str,
        "worker event clock: wall (advances while input is quiet) or events (replay-exact)",
    )
    worker_take_records: int = _setting(
        1000, _positive_int, "worker: input records taken at a time (then flushed when due)"
    )
    crash_after: str = _setting(
        "",
        str,
        "crash tests only: rows:N (or state:N) kills the worker right after the N-th flush "
        "inserted its rows (its state)",
    )
    late_event_retention_ms: int = _setting(
        7 * 24 * 3600_000,
        _positive_int,
        "how late an event may still update a closed session (a real end after a timeout)",
    )
    keepalive_interval_ms: int = _setting(
        10_000, _positive_int, "WCS streaming_sessions_keep_alive_interval"
    )
    call_setup_timeout_ms: int = _setting(5 * 60_000, _positive_int, "close calls stuck in setup")
    call_idle_timeout_ms: int = _setting(12 * 3600_000, _positive_int, "close silent calls")
    stream_idle_timeout_ms: int = _setting(
        12 * 3600_000, _positive_int, "close streams that never had keep-alives"
    )
    connection_idle_timeout_ms: int = _setting(
        24 * 3600_000, _positive_int, "close silent connections"
    )
    # -- FAILED-spike alerting (docs/alerts.md) --
    alert_rules: Path | None = _setting(
        None, _opt_path, "alert rules TOML file (built-in defaults if unset)"
    )
    kafka_alerts: bool = _setting(
        True, _bool, "run the alert detector inside Kafka workers (docs/alerts.md#kafka)"
    )
    alert_webhook_url: str | None = _setting(None, _opt, "POST alerts to this URL (optional)")
    alert_webhook_format: str = _setting(
        "alertmanager", str, "webhook body: alertmanager (Alertmanager v2 list) or json"
    )
    # -- rated exports (docs/rating.md) --
    rates_dir: Path | None = _setting(
        None, _opt_path, "rated exports over the API: each rate deck is a subdirectory here"
    )

    # -- derived ------------------------------------------------------------------------------
    @property
    def dsn(self) -> str:
        if self.clickhouse:
            return self.clickhouse
        return f"chdb://{(self.data_dir / 'chdb').resolve()}"

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb:")

    @property
    def owner_dir(self) -> Path:
        """The directory whose lock makes this process the one owner of the chDB data
        (``--data-dir``, or the parent of an explicit ``chdb:///path``)."""
        if self.clickhouse and self.embedded:
            return Path(self.dsn.removeprefix("chdb://")).parent
        return self.data_dir

    def ingest_config(self) -> IngestConfig:
        basic = None
        if self.basic_user and self.basic_password:
            basic = (self.basic_user, self.basic_password.get())
        defaults = IngestConfig()
        return IngestConfig(
            max_body_bytes=self.max_body_bytes,
            redact_keys=defaults.redact_keys + self.redact_keys,
            hmac_secret=self.hmac_secret.get() if self.hmac_secret else None,
            basic_auth=basic,
            rest_client_config=self.rest_client_config,
        )

    def read_auth(self, host: str | None = None) -> ReadAuth:
        """The read side's credentials and whether they are required (listening on ``host``,
        default ``--host``): beyond loopback or with any auth configured, unless read_open."""
        basic = None
        if self.read_user and self.read_password:
            basic = (self.read_user, self.read_password.get())
        return ReadAuth.decide(
            self.host if host is None else host,
            hook_auth=self.hmac_secret is not None or self.basic_user is not None,
            token=self.read_token.get() if self.read_token else None,
            basic=basic,
            open_read=self.read_open,
        )

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            max_connections=self.max_connections,
            reserve=self.connection_reserve,
            header_timeout_s=self.header_timeout_ms / 1000,
            body_timeout_s=self.body_timeout_ms / 1000,
        )

    def processor_config(self) -> ProcessorConfig:
        return ProcessorConfig(
            keepalive_interval_ms=self.keepalive_interval_ms,
            call_setup_timeout_ms=self.call_setup_timeout_ms,
            call_idle_timeout_ms=self.call_idle_timeout_ms,
            stream_idle_timeout_ms=self.stream_idle_timeout_ms,
            connection_idle_timeout_ms=self.connection_idle_timeout_ms,
            late_event_retention_ms=self.late_event_retention_ms,
        )


FIELDS: Final = {f.name: f for f in dataclasses.fields(Settings)}
ENV_PREFIX: Final = "WCS_"


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_flags(parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    """Add a flag per setting (all, or ``names``); flags default to None = not given."""
    for name, f in FIELDS.items():
        if names is None or name in names:
            parser.add_argument(
                flag_name(name),
                dest=f"setting_{name}",
                default=None,
                metavar="VALUE",
                help=f"{f.metadata['help']}{_default_text(f)} [env {env_name(name)}]",
            )


def _default_text(f: dataclasses.Field[Any]) -> str:
    """`` (default: X)`` for --help; nothing for unset optional values and secrets."""
    value = f.default
    if value is None or value == () or f.metadata.get("secret"):
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f" (default: {value})".replace("%", "%%")


def load(env: Mapping[str, str], args: argparse.Namespace | None = None) -> Settings:
    """Defaults < environment < flags. Raises SettingsError naming the variable."""
    values: dict[str, Any] = {}
    for name, f in FIELDS.items():
        flag_value = getattr(args, f"setting_{name}", None) if args is not None else None
        source, raw = (
            (flag_name(name), flag_value)
            if flag_value is not None
            else (env_name(name), env.get(env_name(name)))
        )
        if raw is None:
            continue
        try:
            values[name] = f.metadata["parse"](raw)
        except (ValueError, OSError) as exc:
            shown = "***" if f.metadata.get("secret") else repr(raw)
            raise SettingsError(f"{source}={shown}: {exc}") from None
    settings = Settings(**values)
    _validate(settings)
    return settings


def _both(name: str) -> str:
    return f"{flag_name(name)} / {env_name(name)}"


def _validate(settings: Settings) -> None:
    if settings.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise SettingsError(f"{_both('log_level')}: unknown level {settings.log_level!r}")
    if not settings.database.isidentifier():
        raise SettingsError(f"{_both('database')}: {settings.database!r} is not an identifier")
    if bool(settings.basic_user) != bool(settings.basic_password):
        raise SettingsError(f"{_both('basic_user')} and {_both('basic_password')} go together")
    if bool(settings.read_user) != bool(settings.read_password):
        raise SettingsError(f"{_both('read_user')} and {_both('read_password')} go together")
    if settings.read_user and ":" in settings.read_user:
        raise SettingsError(f"{_both('read_user')}: a Basic user name cannot contain ':'")
    if settings.read_open and (settings.read_token or settings.read_user):
        raise SettingsError(
            f"{_both('read_open')} contradicts {_both('read_token')} / {_both('read_user')}: "
            "credentials are required once configured"
        )
    if settings.connection_reserve >= settings.max_connections:
        raise SettingsError(
            f"{_both('connection_reserve')} must be below {_both('max_connections')} "
            f"({settings.connection_reserve} >= {settings.max_connections})"
        )
    if settings.ack not in ("broker", "buffer"):
        raise SettingsError(f"{_both('ack')}: {settings.ack!r} is not 'broker' or 'buffer'")
    if settings.crash_after and not _is_crash_point(settings.crash_after):
        raise SettingsError(
            f"{_both('crash_after')}: {settings.crash_after!r} is not rows:N or state:N"
        )
    if settings.worker_clock not in ("wall", "events"):
        raise SettingsError(
            f"{_both('worker_clock')}: {settings.worker_clock!r} is not 'wall' or 'events'"
        )
    if settings.processing not in ("auto", "process", "inline"):
        raise SettingsError(
            f"{_both('processing')}: {settings.processing!r} is not auto, process or inline"
        )
    if settings.spool_full not in ("drop", "reject"):
        raise SettingsError(
            f"{_both('spool_full')}: {settings.spool_full!r} is not 'drop' or 'reject'"
        )
    if settings.alert_webhook_format not in ("alertmanager", "json"):
        raise SettingsError(
            f"{_both('alert_webhook_format')}: {settings.alert_webhook_format!r} "
            "is not 'alertmanager' or 'json'"
        )
    _validate_batches(settings)
    if settings.kafka is not None and not all(
        _is_host_port(part) for part in settings.kafka.split(",")
    ):
        raise SettingsError(f"{_both('kafka')}: {settings.kafka!r} is not HOST:PORT[,HOST:PORT]")
    dsn = settings.dsn
    if not dsn.startswith(("chdb:///", "http://", "https://")):
        raise SettingsError(
            f"{_both('clickhouse')}: {dsn!r} must start with chdb:///, http:// or https://"
        )


def _is_crash_point(text: str) -> bool:
    point, _, count = text.partition(":")
    return point in ("rows", "state") and count.isdigit() and int(count) > 0


def _validate_batches(settings: Settings) -> None:
    if not 1024 <= settings.kafka_batch_max_bytes <= MAX_RECORD_BYTES:
        raise SettingsError(
            f"{_both('kafka_batch_max_bytes')}: {settings.kafka_batch_max_bytes} is not between "
            f"1024 and {MAX_RECORD_BYTES} (Kafka's default max.message.bytes is 1048588)"
        )
    if settings.kafka_batch_linger_ms * 2 > settings.hook_budget_ms:
        raise SettingsError(
            f"{_both('kafka_batch_linger_ms')}: {settings.kafka_batch_linger_ms} ms is more than "
            f"half of {_both('hook_budget_ms')} ({settings.hook_budget_ms} ms)"
        )


def _is_host_port(text: str) -> bool:
    host, _, port = text.strip().rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536
