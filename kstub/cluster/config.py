"""Broker and topic settings, named as in Kafka's server.properties and topic configs.

`BrokerConfig` holds the broker-level settings: static ones (``-c key=value``
on the command line) and dynamic ones (AlterConfigs on a BROKER resource, for
one broker or, with an empty name, the cluster-wide default). Values are typed
from the table below; names kstub does not know are kept, with a warning, as
Kafka does with unused settings.

`TOPIC_CONFIGS` is Kafka's topic config table (LogConfig): every name Kafka
accepts, with its type, default and validator, so a config Kafka accepts is
accepted here too and a bad one gets Kafka's INVALID_CONFIG message. Each topic
config falls back to its broker synonyms (ServerTopicConfigSynonyms), in
order: ``retention.ms`` to ``log.retention.ms``, ``log.retention.minutes``,
``log.retention.hours``. `describe_topic_config` reports a value with the
source and synonyms Kafka's DescribeConfigs gives (ConfigHelper). Which of the
configs kstub actually honours is listed in `HONOURED_TOPIC_CONFIGS`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

log = logging.getLogger("kstub.config")

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


class ConfigType(IntEnum):
    """DescribeConfigs' ConfigType (v3+)."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(IntEnum):
    """DescribeConfigs' ConfigSource (v1+)."""

    UNKNOWN = 0
    TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6


class ConfigError(ValueError):
    """A config value Kafka's ConfigDef rejects; the message is Kafka's."""


class InvalidConfig(ValueError):
    """A topic config that Kafka would answer with INVALID_CONFIG."""


# --- Kafka's ConfigDef: parsing, validation, string form -------------------------------

_INTEGER = re.compile(r"[+-]?\d+")
_LIST_SPLIT = re.compile(r"\s*,\s*")
_RANGES = {
    ConfigType.INT: (-(2**31), INT_MAX),
    ConfigType.SHORT: (-(2**15), 2**15 - 1),
    ConfigType.LONG: (-(2**63), LONG_MAX),
}


def _invalid(name: str, value: object, message: str) -> ConfigError:
    shown = "[" + ", ".join(value) + "]" if isinstance(value, list) else value
    return ConfigError(f"Invalid value {shown} for configuration {name}: {message}")


def parse_typed(name: str, raw: str, type_: ConfigType) -> Any:
    """Kafka's ConfigDef.parseType for a string value."""
    trimmed = raw.strip()
    if type_ is ConfigType.BOOLEAN:
        if trimmed.lower() in ("true", "false"):
            return trimmed.lower() == "true"
        raise _invalid(name, raw, "Expected value to be either true or false")
    if type_ in _RANGES:
        low, high = _RANGES[type_]
        if not _INTEGER.fullmatch(trimmed) or not low <= int(trimmed) <= high:
            raise _invalid(name, raw, f"Not a number of type {type_.name}")
        return int(trimmed)
    if type_ is ConfigType.DOUBLE:
        try:
            return float(trimmed)
        except ValueError:
            raise _invalid(name, raw, "Not a number of type DOUBLE") from None
    if type_ is ConfigType.LIST:
        return [] if not trimmed else _LIST_SPLIT.split(trimmed)
    return trimmed


def to_config_string(value: Any) -> str | None:
    """Kafka's ConfigDef.convertToString."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


Validator = Callable[[str, Any], None]


def at_least(minimum: float) -> Validator:
    def check(name: str, value: Any) -> None:
        if value is not None and value < minimum:
            raise _invalid(name, value, f"Value must be at least {minimum}")

    return check


def between(low: float, high: float) -> Validator:
    def check(name: str, value: Any) -> None:
        if value is None:
            return
        if value < low:
            raise _invalid(name, value, f"Value must be at least {low}")
        if value > high:
            raise _invalid(name, value, f"Value must be no more than {high}")

    return check


def one_of(*choices: str) -> Validator:
    def check(name: str, value: Any) -> None:
        for v in value if isinstance(value, list) else [value]:
            if v not in choices:
                raise _invalid(name, v, "String must be one of: " + ", ".join(choices))

    return check


def _throttled_replicas(name: str, value: list[str]) -> None:
    if value == ["*"]:
        return
    for v in value:
        if not re.fullmatch(r"\d+:\d+", v.strip()):
            raise _invalid(
                name,
                value,
                "must be the literal '*' or a list of replicas in the following format: "
                "[partitionId]:[brokerId],[partitionId]:[brokerId],...",
            )


def _gzip_level(name: str, value: int) -> None:
    if value != -1 and not 1 <= value <= 9:
        raise _invalid(name, value, "Value must be between 1 and 9, or -1 for the default")


def _message_format_version(name: str, value: str) -> None:
    if not re.fullmatch(r"0\.(8\.[0-2]|9\.0|10\.[0-2]|11\.0)(\.\d+)?(-IV\d+)?|[1-9]\.\d+(-IV\d+)?(\.\d+)?", value):
        raise _invalid(name, value, "Unknown metadata.version")


@dataclass(frozen=True)
class Synonym:
    """A broker setting a topic config falls back to; `scale` converts its unit to the topic's (hours to ms)."""

    name: str
    scale: int = 1


@dataclass(frozen=True)
class TopicSetting:
    name: str
    type: ConfigType
    default: Any  # parsed; the value of a topic with no override and no broker synonym
    validator: Validator | None = None
    synonyms: tuple[Synonym, ...] = ()
    doc: str = ""

    def parse(self, raw: str) -> Any:
        """Parse and validate a value as Kafka's LogConfig does; ConfigError with Kafka's message if bad."""
        value = parse_typed(self.name, raw, self.type)
        if self.validator is not None:
            self.validator(self.name, value)
        return value

    def normalize(self, raw: str) -> str:
        """The value as Kafka reports it back (trimmed, lists re-joined, booleans lower case)."""
        return to_config_string(self.parse(raw)) or ""

    @property
    def default_string(self) -> str | None:
        return to_config_string(self.default)


_S = Synonym
_HOUR = 3_600_000
_MINUTE = 60_000

#: Kafka's topic configs (LogConfig.CONFIG), in Kafka's order, with their broker synonyms.
TOPIC_CONFIGS: dict[str, TopicSetting] = {
    s.name: s
    for s in (
        TopicSetting(
            "segment.bytes",
            ConfigType.INT,
            1073741824,
            at_least(14),
            (_S("log.segment.bytes"),),
            "largest size of a segment file before the log rolls a new one",
        ),
        TopicSetting(
            "segment.ms",
            ConfigType.LONG,
            604800000,
            at_least(1),
            (_S("log.roll.ms"), _S("log.roll.hours", _HOUR)),
            "time after which the log rolls a new segment even if the active one is not full",
        ),
        TopicSetting(
            "segment.jitter.ms",
            ConfigType.LONG,
            0,
            at_least(0),
            (_S("log.roll.jitter.ms"), _S("log.roll.jitter.hours", _HOUR)),
        ),
        TopicSetting("segment.index.bytes", ConfigType.INT, 10485760, at_least(4), (_S("log.index.size.max.bytes"),)),
        TopicSetting(
            "flush.messages",
            ConfigType.LONG,
            LONG_MAX,
            at_least(1),
            (_S("log.flush.interval.messages"),),
            "fsync the log after this many messages",
        ),
        TopicSetting(
            "flush.ms",
            ConfigType.LONG,
            LONG_MAX,
            at_least(0),
            (_S("log.flush.interval.ms"), _S("log.flush.scheduler.interval.ms")),
            "fsync the log when its oldest unflushed message is this old (checked by the flush scheduler)",
        ),
        TopicSetting(
            "retention.bytes",
            ConfigType.LONG,
            -1,
            None,
            (_S("log.retention.bytes"),),
            "delete old segments while the partition is larger than this (-1: no limit)",
        ),
        TopicSetting(
            "retention.ms",
            ConfigType.LONG,
            604800000,
            at_least(-1),
            (_S("log.retention.ms"), _S("log.retention.minutes", _MINUTE), _S("log.retention.hours", _HOUR)),
            "delete segments whose newest record is older than this (-1: no limit)",
        ),
        TopicSetting(
            "max.message.bytes",
            ConfigType.INT,
            1048588,
            at_least(0),
            (_S("message.max.bytes"),),
            "largest record batch accepted",
        ),
        TopicSetting("index.interval.bytes", ConfigType.INT, 4096, at_least(0), (_S("log.index.interval.bytes"),)),
        TopicSetting(
            "delete.retention.ms", ConfigType.LONG, 86400000, at_least(0), (_S("log.cleaner.delete.retention.ms"),)
        ),
        TopicSetting(
            "min.compaction.lag.ms", ConfigType.LONG, 0, at_least(0), (_S("log.cleaner.min.compaction.lag.ms"),)
        ),
        TopicSetting(
            "max.compaction.lag.ms", ConfigType.LONG, LONG_MAX, at_least(1), (_S("log.cleaner.max.compaction.lag.ms"),)
        ),
        TopicSetting("file.delete.delay.ms", ConfigType.LONG, 60000, at_least(0), (_S("log.segment.delete.delay.ms"),)),
        TopicSetting(
            "min.cleanable.dirty.ratio", ConfigType.DOUBLE, 0.5, between(0, 1), (_S("log.cleaner.min.cleanable.ratio"),)
        ),
        TopicSetting(
            "cleanup.policy",
            ConfigType.LIST,
            ["delete"],
            one_of("compact", "delete"),
            (_S("log.cleanup.policy"),),
            "delete (retention applies) and/or compact (accepted, not performed)",
        ),
        TopicSetting(
            "unclean.leader.election.enable", ConfigType.BOOLEAN, False, None, (_S("unclean.leader.election.enable"),)
        ),
        TopicSetting(
            "min.insync.replicas",
            ConfigType.INT,
            1,
            at_least(1),
            (_S("min.insync.replicas"),),
            "acks=all produce needs at least this many in-sync replicas",
        ),
        TopicSetting(
            "compression.type",
            ConfigType.STRING,
            "producer",
            one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
            (_S("compression.type"),),
        ),
        TopicSetting("compression.gzip.level", ConfigType.INT, -1, _gzip_level, (_S("compression.gzip.level"),)),
        TopicSetting("compression.lz4.level", ConfigType.INT, 9, between(1, 17), (_S("compression.lz4.level"),)),
        TopicSetting(
            "compression.zstd.level", ConfigType.INT, 3, between(-131072, 22), (_S("compression.zstd.level"),)
        ),
        TopicSetting("preallocate", ConfigType.BOOLEAN, False, None, (_S("log.preallocate"),)),
        TopicSetting(
            "message.format.version",
            ConfigType.STRING,
            "3.0-IV1",
            _message_format_version,
            (_S("log.message.format.version"),),
        ),
        TopicSetting(
            "message.timestamp.type",
            ConfigType.STRING,
            "CreateTime",
            one_of("CreateTime", "LogAppendTime"),
            (_S("log.message.timestamp.type"),),
            "LogAppendTime: the broker stamps batches on append",
        ),
        TopicSetting(
            "message.timestamp.difference.max.ms",
            ConfigType.LONG,
            LONG_MAX,
            at_least(0),
            (_S("log.message.timestamp.difference.max.ms"),),
        ),
        TopicSetting(
            "message.timestamp.before.max.ms",
            ConfigType.LONG,
            LONG_MAX,
            at_least(0),
            (_S("log.message.timestamp.before.max.ms"),),
        ),
        TopicSetting(
            "message.timestamp.after.max.ms",
            ConfigType.LONG,
            LONG_MAX,
            at_least(0),
            (_S("log.message.timestamp.after.max.ms"),),
        ),
        TopicSetting("leader.replication.throttled.replicas", ConfigType.LIST, [], _throttled_replicas),
        TopicSetting("follower.replication.throttled.replicas", ConfigType.LIST, [], _throttled_replicas),
        TopicSetting(
            "message.downconversion.enable", ConfigType.BOOLEAN, True, None, (_S("log.message.downconversion.enable"),)
        ),
        TopicSetting("remote.storage.enable", ConfigType.BOOLEAN, False),
        TopicSetting("local.retention.ms", ConfigType.LONG, -2, at_least(-2), (_S("log.local.retention.ms"),)),
        TopicSetting("local.retention.bytes", ConfigType.LONG, -2, at_least(-2), (_S("log.local.retention.bytes"),)),
        TopicSetting("remote.log.copy.disable", ConfigType.BOOLEAN, False),
        TopicSetting("remote.log.delete.on.disable", ConfigType.BOOLEAN, False),
    )
}

#: The topic configs kstub acts on (the others are accepted, stored and described, as Kafka's names).
HONOURED_TOPIC_CONFIGS = (
    "cleanup.policy",
    "flush.messages",
    "flush.ms",
    "max.message.bytes",
    "message.timestamp.type",
    "min.insync.replicas",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
)


# --- broker settings ---------------------------------------------------------------------


def _bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ValueError(f"expected true or false, got {value!r}")


def _int(value: str | int) -> int:
    return int(value)


def _ip_overrides(value: str) -> str:
    """max.connections.per.ip.overrides: ``host:count`` entries, comma-separated (hosts resolved when used)."""
    for entry in str(value).split(","):
        host, sep, count = entry.strip().rpartition(":")
        if entry.strip() and (not sep or not host or not _INTEGER.fullmatch(count.strip())):
            raise ValueError(f"expected host:count entries, got {entry.strip()!r}")
    return str(value)


#: listener, TLS and SASL settings (prefixes), read by kstub/security.py from their string values
SECURITY_SETTINGS = (
    "listeners",
    "advertised.listeners",
    "listener.",
    "ssl.",
    "sasl.",
    "kstub.sasl.",
    "inter.broker.listener.name",
    "connection.failed.authentication.delay.ms",
    "connections.max.reauth.ms",
)


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[Any], Any]
    default: Any  # None: no default (Kafka's null), the setting then falls through to its next synonym
    doc: str = ""
    type: ConfigType | None = None

    @property
    def config_type(self) -> ConfigType:
        if self.type is not None:
            return self.type
        if self.parse is _bool:
            return ConfigType.BOOLEAN
        if self.parse is _int:
            return ConfigType.INT
        return ConfigType.STRING


_L = ConfigType.LONG

#: Broker settings kstub knows, with Kafka's defaults.
BROKER_SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("auto.create.topics.enable", _bool, True, "create unknown topics on Metadata/Produce"),
        Setting("num.partitions", _int, 1, "partitions of an auto-created topic"),
        Setting("default.replication.factor", _int, 1, "replication factor of an auto-created topic"),
        Setting("message.max.bytes", _int, 1048588, "largest record batch accepted"),
        Setting("socket.request.max.bytes", _int, 104857600, "largest request frame accepted"),
        Setting("fetch.max.bytes", _int, 57671680, "most record bytes in one Fetch response (one batch at least)"),
        Setting("connections.max.idle.ms", _int, 600000, "close a connection idle (or mid-request) this long", _L),
        Setting("max.connections", _int, INT_MAX, "most client connections a broker holds at once"),
        Setting("max.connections.per.ip", _int, INT_MAX, "most connections from one address"),
        Setting(
            "max.connections.per.ip.overrides",
            _ip_overrides,
            "",
            "per-address limits, host:count,host:count (overrides max.connections.per.ip)",
            ConfigType.STRING,
        ),
        Setting(
            "kstub.request.receive.timeout.ms",
            _int,
            30000,
            "close a connection whose request has begun but not fully arrived this long after (not Kafka's)",
            _L,
        ),
        Setting("min.insync.replicas", _int, 1),
        Setting("log.message.timestamp.type", str, "CreateTime"),
        Setting("delete.topic.enable", _bool, True),
        Setting("group.initial.rebalance.delay.ms", _int, 3000, "how long a new group waits for more members"),
        Setting("group.min.session.timeout.ms", _int, 6000, "smallest session timeout a member may ask for"),
        Setting("group.max.session.timeout.ms", _int, 1800000, "largest session timeout a member may ask for"),
        Setting("group.max.size", _int, 2147483647, "most members a group may have"),
        Setting("offsets.retention.minutes", _int, 10080, "how long offsets outlive an empty group"),
        Setting("offsets.retention.check.interval.ms", _int, 600000, "how often expired offsets are removed"),
        Setting("offsets.topic.num.partitions", _int, 50, "spreads groups over coordinators (by group id hash)"),
        Setting("offset.metadata.max.bytes", _int, 4096, "largest metadata string of a committed offset"),
        Setting("offsets.topic.replication.factor", _int, 3, type=ConfigType.SHORT),
        Setting("log.retention.ms", _int, None, "retention.ms of topics without their own", _L),
        Setting("log.retention.minutes", _int, None, "used when log.retention.ms is not set"),
        Setting("log.retention.hours", _int, 168, "used when neither log.retention.ms nor .minutes is set"),
        Setting("log.retention.bytes", _int, -1, "retention.bytes of topics without their own", _L),
        Setting("log.retention.check.interval.ms", _int, 300000, "how often the retention pass runs", _L),
        Setting("log.segment.bytes", _int, 1073741824, "segment.bytes of topics without their own"),
        Setting("log.roll.ms", _int, None, "segment.ms of topics without their own", _L),
        Setting("log.roll.hours", _int, 168, "used when log.roll.ms is not set"),
        Setting("log.cleanup.policy", str, "delete", type=ConfigType.LIST),
        Setting("log.flush.interval.messages", _int, LONG_MAX, "flush.messages of topics without their own", _L),
        Setting("log.flush.interval.ms", _int, None, "flush.ms of topics without their own", _L),
        Setting("log.flush.scheduler.interval.ms", _int, LONG_MAX, "how often the flusher checks flush.ms", _L),
        Setting("log.index.interval.bytes", _int, 4096),
        Setting("log.index.size.max.bytes", _int, 10485760),
        Setting("log.roll.jitter.ms", _int, None, type=_L),
        Setting("log.roll.jitter.hours", _int, 0),
        Setting("log.cleaner.delete.retention.ms", _int, 86400000, type=_L),
        Setting("log.cleaner.min.compaction.lag.ms", _int, 0, type=_L),
        Setting("log.cleaner.max.compaction.lag.ms", _int, LONG_MAX, type=_L),
        Setting("log.cleaner.min.cleanable.ratio", float, 0.5, type=ConfigType.DOUBLE),
        Setting("log.segment.delete.delay.ms", _int, 60000, type=_L),
        Setting("log.preallocate", _bool, False),
        Setting("log.message.format.version", str, "3.0-IV1"),
        Setting("log.message.timestamp.difference.max.ms", _int, LONG_MAX, type=_L),
        Setting("log.message.timestamp.before.max.ms", _int, LONG_MAX, type=_L),
        Setting("log.message.timestamp.after.max.ms", _int, LONG_MAX, type=_L),
        Setting("log.message.downconversion.enable", _bool, True),
        Setting("log.local.retention.ms", _int, -2, type=_L),
        Setting("log.local.retention.bytes", _int, -2, type=_L),
        Setting("unclean.leader.election.enable", _bool, False),
        Setting("compression.type", str, "producer"),
        Setting("compression.gzip.level", _int, -1),
        Setting("compression.lz4.level", _int, 9),
        Setting("compression.zstd.level", _int, 3),
        Setting("producer.id.expiration.ms", _int, 86400000),
        Setting("cluster.id", str, "kstub-cluster-0000000000"),
        Setting(
            "kstub.fsync.on.ack",
            _bool,
            False,
            "with --data-dir: fsync a partition's new data before acknowledging a produce (crash-safe acks)",
        ),
        Setting(
            "kstub.memory.budget.bytes",
            _int,
            134217728,
            "without --data-dir: bytes of batches kept in memory per process; older ones spill to temporary files"
            " (-1: no limit)",
            _L,
        ),
        Setting("kstub.memory.spill.dir", str, "", "where the spill directory is made (empty: the system temp dir)"),
        # replication and the controller
        Setting("replica.lag.time.max.ms", _int, 30000, "a follower this far behind leaves the ISR"),
        Setting("replica.fetch.max.bytes", _int, 1048576, "bytes a follower copies per partition per round"),
        Setting("broker.session.timeout.ms", _int, 9000, "how long after a kill the controller notices"),
        Setting("auto.leader.rebalance.enable", _bool, True, "move leadership back to preferred replicas"),
        Setting("leader.imbalance.check.interval.seconds", _int, 300),
        Setting("leader.imbalance.per.broker.percentage", _int, 10),
    )
}

#: Broker settings Kafka lets AlterConfigs change at runtime: the first broker synonym of each topic config.
DYNAMIC_BROKER_SETTINGS: frozenset[str] = frozenset(s.synonyms[0].name for s in TOPIC_CONFIGS.values() if s.synonyms)


def broker_synonyms(name: str) -> list[str]:
    """Kafka's DynamicBrokerConfig.brokerConfigSynonyms: the chain a broker setting belongs to."""
    for setting in TOPIC_CONFIGS.values():
        names = [s.name for s in setting.synonyms]
        if len(names) > 1 and name in names:
            return names
    return [name]


@dataclass(frozen=True)
class SynonymEntry:
    name: str
    value: str | None
    source: ConfigSource


class BrokerConfig:
    """Broker settings: Kafka's defaults, overlaid with static (``-c``) and dynamic (AlterConfigs) ones.

    A value is looked up per broker: that broker's dynamic setting, else the
    cluster-wide dynamic default, else the static setting, else Kafka's
    default (which may be None, Kafka's null).
    """

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = {name: s.default for name, s in BROKER_SETTINGS.items()}
        self.unknown: dict[str, str] = {}
        #: names the user set explicitly (Kafka reports them as STATIC_BROKER_CONFIG), as given
        self.explicit: set[str] = set()
        self.static_raw: dict[str, str] = {}
        #: AlterConfigs on BROKER "": DYNAMIC_DEFAULT_BROKER_CONFIG
        self.dynamic_default: dict[str, str] = {}
        #: AlterConfigs on BROKER "<id>": DYNAMIC_BROKER_CONFIG of that broker
        self.dynamic_broker: dict[int, dict[str, str]] = {}
        for name, value in (overrides or {}).items():
            self.set(name, value)

    def set(self, name: str, value: Any) -> None:
        setting = BROKER_SETTINGS.get(name)
        if setting is None:
            if not name.startswith(SECURITY_SETTINGS):  # read as strings by kstub/security.py
                log.warning("setting %s=%s is not used by kstub", name, value)
            self.unknown[name] = str(value)
            self.static_raw[name] = str(value)
            return
        try:
            self._values[name] = setting.parse(value)
            self.explicit.add(name)
            self.static_raw[name] = to_config_string(value) if isinstance(value, bool) else str(value)
        except ValueError as exc:
            raise ValueError(f"invalid value for {name}: {exc}") from None

    def __getitem__(self, name: str) -> Any:
        """The typed value, dynamic defaults included (per-broker dynamic settings: `value`)."""
        if name in self.dynamic_default and name in BROKER_SETTINGS:
            return BROKER_SETTINGS[name].parse(self.dynamic_default[name])
        return self._values[name]

    def items(self) -> Iterable[tuple[str, Any]]:
        return ((name, self[name]) for name in self._values)

    def raw(self, name: str, broker_id: int | None = None) -> str | None:
        """The setting's string value as one broker sees it, or None (unset, no default)."""
        if broker_id is not None and name in self.dynamic_broker.get(broker_id, {}):
            return self.dynamic_broker[broker_id][name]
        if name in self.dynamic_default:
            return self.dynamic_default[name]
        if name in self.static_raw:
            return self.static_raw[name]
        setting = BROKER_SETTINGS.get(name)
        return None if setting is None else to_config_string(setting.default)

    def synonyms(self, name: str, chain: list[str], broker_id: int | None) -> list[SynonymEntry]:
        """Kafka's ConfigHelper.configSynonyms: every place a setting of `chain` is set, by precedence.

        Dynamic per-broker first, then dynamic default, static, Kafka's
        default; then, as Kafka does, everything before the first entry
        named `name` is dropped (so a topic config whose first broker synonym
        is unset reports no synonyms at all, e.g. retention.ms).
        """
        found: list[SynonymEntry] = []
        layers: list[tuple[Mapping[str, str], ConfigSource]] = []
        if broker_id is not None:
            layers.append((self.dynamic_broker.get(broker_id, {}), ConfigSource.DYNAMIC_BROKER_CONFIG))
        layers.append((self.dynamic_default, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG))
        layers.append((self.static_raw, ConfigSource.STATIC_BROKER_CONFIG))
        defaults = {n: to_config_string(s.default) for n, s in BROKER_SETTINGS.items() if s.default is not None}
        layers.append((defaults, ConfigSource.DEFAULT_CONFIG))
        for values, source in layers:
            for n in chain:
                if n in values:
                    found.append(SynonymEntry(n, values[n], source))
        while found and found[0].name != name:
            found.pop(0)
        return found

    @classmethod
    def from_pairs(cls, pairs: Iterable[str]) -> BrokerConfig:
        """From ``key=value`` strings, as given with ``-c``."""
        overrides: dict[str, str] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"expected key=value, got {pair!r}")
            overrides[key.strip()] = value.strip()
        return cls(overrides)


# --- topic configs -----------------------------------------------------------------------


def validate_topic_configs(configs: Mapping[str, str | None]) -> dict[str, str]:
    """Check names and values as Kafka's LogConfig.validate; return the explicit (non-null) settings, normalized."""
    result: dict[str, str] = {}
    for name in configs:
        if name not in TOPIC_CONFIGS:
            raise InvalidConfig(f"Unknown topic config name: {name}")
    for name, value in configs.items():
        if value is None:
            continue
        try:
            result[name] = TOPIC_CONFIGS[name].normalize(value)
        except ConfigError as exc:
            raise InvalidConfig(str(exc)) from None
    lag_min = int(result.get("min.compaction.lag.ms", 0))
    lag_max = int(result.get("max.compaction.lag.ms", LONG_MAX))
    if lag_min > lag_max:
        raise InvalidConfig(
            f"conflict topic config setting min.compaction.lag.ms ({lag_min}) > max.compaction.lag.ms ({lag_max})"
        )
    return result


def topic_config_value(
    name: str, explicit: Mapping[str, str], broker: BrokerConfig, broker_id: int | None = None
) -> str:
    """A topic's effective setting: its override, else the first broker synonym with a value, else Kafka's default."""
    if name in explicit:
        return explicit[name]
    setting = TOPIC_CONFIGS[name]
    for synonym in setting.synonyms:
        raw = broker.raw(synonym.name, broker_id)
        if raw is None:
            continue
        try:
            value = parse_typed(synonym.name, raw, setting.type)
        except ConfigError:
            continue
        if synonym.scale != 1:
            value *= synonym.scale
        if name == "retention.ms" and value < 0:
            value = -1  # KafkaConfig.logRetentionTimeMillis
        return to_config_string(value) or ""
    return setting.default_string or ""


@dataclass(frozen=True)
class DescribedConfig:
    name: str
    value: str | None
    source: ConfigSource
    read_only: bool
    synonyms: list[SynonymEntry]
    type: ConfigType
    doc: str | None


def describe_topic_config(
    name: str, explicit: Mapping[str, str], broker: BrokerConfig, broker_id: int | None = None
) -> DescribedConfig:
    """One entry of DescribeConfigs for a topic, as Kafka's ConfigHelper.createTopicConfigEntry builds it."""
    setting = TOPIC_CONFIGS[name]
    value = topic_config_value(name, explicit, broker, broker_id)
    synonyms: list[SynonymEntry] = []
    if setting.synonyms:
        first = setting.synonyms[0].name
        synonyms = broker.synonyms(first, [s.name for s in setting.synonyms], broker_id)
    if name in explicit:
        synonyms.insert(0, SynonymEntry(name, value, ConfigSource.TOPIC_CONFIG))
    source = synonyms[0].source if synonyms else ConfigSource.DEFAULT_CONFIG
    return DescribedConfig(name, value, source, False, synonyms, setting.type, setting.doc or None)


def describe_broker_config(name: str, broker: BrokerConfig, broker_id: int | None) -> DescribedConfig:
    """One entry of DescribeConfigs for a broker (`broker_id`) or the cluster default (None)."""
    synonyms = broker.synonyms(name, broker_synonyms(name), broker_id)
    if broker_id is None:  # the default resource shows only dynamic defaults (Kafka: perBrokerConfig=false)
        synonyms = [s for s in synonyms if s.source is ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG]
    setting = BROKER_SETTINGS.get(name)
    value = broker.raw(name, broker_id)
    source = synonyms[0].source if synonyms else ConfigSource.DEFAULT_CONFIG
    type_ = setting.config_type if setting else ConfigType.UNKNOWN
    return DescribedConfig(
        name,
        value,
        source,
        name not in DYNAMIC_BROKER_SETTINGS,
        synonyms,
        type_,
        (setting.doc if setting else "") or None,
    )


def validate_broker_config(name: str, value: str) -> None:
    """Check a dynamic broker setting as Kafka's DynamicBrokerConfig.validate; ConfigError if bad."""
    if name not in DYNAMIC_BROKER_SETTINGS:
        if name in BROKER_SETTINGS:
            raise ConfigError(f"Cannot update these configs dynamically: Set({name})")
        return  # Kafka stores names it does not know
    for setting in TOPIC_CONFIGS.values():
        if setting.synonyms and setting.synonyms[0].name == name:
            parsed = parse_typed(name, value, setting.type)
            if setting.validator is not None:
                setting.validator(name, parsed)
            return
