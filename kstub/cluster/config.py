"""Broker and topic settings, named as in Kafka's server.properties and topic configs.

`BrokerConfig` holds the broker-level settings (``-c key=value`` on the command
line). Values are typed from the table below; names kstub does not know are
kept, with a warning, as Kafka does with unused settings. `TOPIC_CONFIGS`
lists the topic-level settings and the broker setting each one falls back to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("kstub.config")


def _bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ValueError(f"expected true or false, got {value!r}")


def _int(value: str | int) -> int:
    return int(value)


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[Any], Any]
    default: Any
    doc: str = ""


#: Broker settings kstub honours, with Kafka's defaults.
BROKER_SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("auto.create.topics.enable", _bool, True, "create unknown topics on Metadata/Produce"),
        Setting("num.partitions", _int, 1, "partitions of an auto-created topic"),
        Setting("default.replication.factor", _int, 1, "replication factor of an auto-created topic"),
        Setting("message.max.bytes", _int, 1048588, "largest record batch accepted"),
        Setting("socket.request.max.bytes", _int, 104857600, "largest request frame accepted"),
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
        Setting("offsets.topic.replication.factor", _int, 3),
        Setting("log.retention.ms", _int, -1),
        Setting("log.retention.hours", _int, 168),
        Setting("log.retention.bytes", _int, -1),
        Setting("log.segment.bytes", _int, 1073741824),
        Setting("producer.id.expiration.ms", _int, 86400000),
        Setting("cluster.id", str, "kstub-cluster-0000000000"),
    )
}


class BrokerConfig:
    """Broker settings: Kafka's defaults overlaid with the user's."""

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = {name: s.default for name, s in BROKER_SETTINGS.items()}
        self.unknown: dict[str, str] = {}
        #: names the user set explicitly (Kafka reports them as STATIC_BROKER_CONFIG)
        self.explicit: set[str] = set()
        for name, value in (overrides or {}).items():
            self.set(name, value)

    def set(self, name: str, value: Any) -> None:
        setting = BROKER_SETTINGS.get(name)
        if setting is None:
            log.warning("setting %s=%s is not used by kstub", name, value)
            self.unknown[name] = str(value)
            return
        try:
            self._values[name] = setting.parse(value)
            self.explicit.add(name)
        except ValueError as exc:
            raise ValueError(f"invalid value for {name}: {exc}") from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def items(self) -> Iterable[tuple[str, Any]]:
        return self._values.items()

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


def _timestamp_type(value: str) -> str:
    if value not in ("CreateTime", "LogAppendTime"):
        raise ValueError("must be CreateTime or LogAppendTime")
    return value


def _cleanup_policy(value: str) -> str:
    parts = {p.strip() for p in value.split(",")}
    if not parts <= {"delete", "compact"}:
        raise ValueError("must be a list of delete, compact")
    return value


def _non_negative(value: str) -> int:
    n = int(value)
    if n < 0:
        raise ValueError("must be >= 0")
    return n


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        n = int(value)
        if n < minimum:
            raise ValueError(f"must be >= {minimum}")
        return n

    return parse


@dataclass(frozen=True)
class TopicSetting:
    name: str
    parse: Callable[[str], Any]
    broker_setting: str | None  # the broker default it falls back to
    default: str


#: Topic-level settings accepted by CreateTopics, with their broker fallbacks.
TOPIC_CONFIGS: dict[str, TopicSetting] = {
    s.name: s
    for s in (
        TopicSetting("cleanup.policy", _cleanup_policy, None, "delete"),
        TopicSetting("compression.type", str, None, "producer"),
        TopicSetting("max.message.bytes", _at_least(0), "message.max.bytes", "1048588"),
        TopicSetting("message.timestamp.type", _timestamp_type, "log.message.timestamp.type", "CreateTime"),
        TopicSetting("min.insync.replicas", _at_least(1), "min.insync.replicas", "1"),
        TopicSetting("retention.ms", _at_least(-1), "log.retention.ms", "604800000"),
        TopicSetting("retention.bytes", _at_least(-1), "log.retention.bytes", "-1"),
        TopicSetting("segment.bytes", _at_least(14), "log.segment.bytes", "1073741824"),
        TopicSetting("segment.ms", _at_least(1), None, "604800000"),
        TopicSetting("flush.messages", _at_least(1), None, "9223372036854775807"),
        TopicSetting("flush.ms", _non_negative, None, "9223372036854775807"),
        TopicSetting("unclean.leader.election.enable", _bool, None, "false"),
        TopicSetting("delete.retention.ms", _non_negative, None, "86400000"),
        TopicSetting("min.compaction.lag.ms", _non_negative, None, "0"),
        TopicSetting("message.timestamp.difference.max.ms", _non_negative, None, "9223372036854775807"),
    )
}


class InvalidConfig(ValueError):
    """A topic config that Kafka would answer with INVALID_CONFIG."""


def validate_topic_configs(configs: Mapping[str, str | None]) -> dict[str, str]:
    """Check names and values; return the explicit (non-null) settings."""
    result: dict[str, str] = {}
    for name, value in configs.items():
        setting = TOPIC_CONFIGS.get(name)
        if setting is None:
            raise InvalidConfig(f"Unknown topic config name: {name}")
        if value is None:
            continue
        try:
            setting.parse(value)
        except ValueError as exc:
            raise InvalidConfig(f"Invalid value {value} for configuration {name}: {exc}") from None
        result[name] = value
    return result
