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

Typed reads: a broker setting is typed when it is set (``cluster.config["num.partitions"]``
is an int); a topic's settings are strings, as DescribeConfigs reports them, and
`TopicSettings` (``partition.settings``, ``topic.settings(broker_id)``) reads them
typed by their ConfigDef type: ``get_int``, ``get_bool``, ``get_list``, ``get_str``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from .broker_settings import BROKER_SETTINGS, DYNAMIC_BROKER_SETTINGS, SECURITY_SETTINGS, broker_synonyms
from .configdef import (
    INT_MAX,
    LONG_MAX,
    ConfigError,
    ConfigSource,
    ConfigType,
    InvalidConfig,
    Setting,
    Synonym,
    TopicSetting,
    parse_typed,
    to_config_string,
)
from .topic_configs import HONOURED_TOPIC_CONFIGS, TOPIC_CONFIGS

__all__ = [
    "BROKER_SETTINGS",
    "DYNAMIC_BROKER_SETTINGS",
    "HONOURED_TOPIC_CONFIGS",
    "INT_MAX",
    "LONG_MAX",
    "TOPIC_CONFIGS",
    "BrokerConfig",
    "ConfigError",
    "ConfigSource",
    "ConfigType",
    "DescribedConfig",
    "InvalidConfig",
    "Setting",
    "Synonym",
    "SynonymEntry",
    "TopicSetting",
    "TopicSettings",
    "broker_synonyms",
    "describe_broker_config",
    "describe_topic_config",
    "parse_typed",
    "to_config_string",
    "topic_config_value",
    "validate_broker_config",
    "validate_topic_configs",
]

log = logging.getLogger("kstub.config")


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
        #: counts every change of a setting, so that what was derived from them (a topic's effective
        #: configs, cached by `Topic.config`) knows when to look again
        self.generation = 0
        self._static_raw: dict[str, str] = {}
        self._dynamic_default: dict[str, str] = {}
        self._dynamic_broker: dict[int, dict[str, str]] = {}
        for name, value in (overrides or {}).items():
            self.set(name, value)
        # A Kafka 4 cluster is formatted with the cluster-wide min.insync.replicas as a dynamic default
        # (eligible leader replicas, KIP-966): DescribeConfigs reports it as DYNAMIC_DEFAULT_BROKER_CONFIG.
        self.dynamic_default = {"min.insync.replicas": self.raw("min.insync.replicas") or "1"}

    # The layers are read-only views: a change goes through an assignment (or `set`), which counts it.

    @property
    def static_raw(self) -> Mapping[str, str]:
        """``-c`` settings as given (STATIC_BROKER_CONFIG)."""
        return MappingProxyType(self._static_raw)

    @property
    def dynamic_default(self) -> Mapping[str, str]:
        """AlterConfigs on BROKER "": DYNAMIC_DEFAULT_BROKER_CONFIG."""
        return MappingProxyType(self._dynamic_default)

    @dynamic_default.setter
    def dynamic_default(self, values: Mapping[str, str]) -> None:
        self._dynamic_default = dict(values)
        self.generation += 1

    @property
    def dynamic_broker(self) -> Mapping[int, Mapping[str, str]]:
        """AlterConfigs on BROKER "<id>": DYNAMIC_BROKER_CONFIG of that broker."""
        return MappingProxyType({k: MappingProxyType(v) for k, v in self._dynamic_broker.items()})

    @dynamic_broker.setter
    def dynamic_broker(self, values: Mapping[int, Mapping[str, str]]) -> None:
        self._dynamic_broker = {k: dict(v) for k, v in values.items()}
        self.generation += 1

    def set_dynamic_broker(self, broker_id: int, values: Mapping[str, str]) -> None:
        """Replace one broker's dynamic settings."""
        self._dynamic_broker[broker_id] = dict(values)
        self.generation += 1

    def set(self, name: str, value: Any) -> None:
        setting = BROKER_SETTINGS.get(name)
        if setting is None:
            if not name.startswith(SECURITY_SETTINGS):  # read as strings by kstub/security.py
                log.warning("setting %s=%s is not used by kstub", name, value)
            self.unknown[name] = str(value)
            self._static_raw[name] = str(value)
            self.generation += 1
            return
        try:
            self._values[name] = setting.parse(value)
            self.explicit.add(name)
            self._static_raw[name] = to_config_string(value) if isinstance(value, bool) else str(value)
            self.generation += 1
        except ValueError as exc:
            raise ValueError(f"invalid value for {name}: {exc}") from None

    def __getitem__(self, name: str) -> Any:
        """The typed value, dynamic defaults included (per-broker dynamic settings: `value`)."""
        if name in self._dynamic_default and name in BROKER_SETTINGS:
            return BROKER_SETTINGS[name].parse(self._dynamic_default[name])
        return self._values[name]

    def items(self) -> Iterable[tuple[str, Any]]:
        return ((name, self[name]) for name in self._values)

    def raw(self, name: str, broker_id: int | None = None) -> str | None:
        """The setting's string value as one broker sees it, or None (unset, no default)."""
        if broker_id is not None and name in self._dynamic_broker.get(broker_id, {}):
            return self._dynamic_broker[broker_id][name]
        if name in self._dynamic_default:
            return self._dynamic_default[name]
        if name in self._static_raw:
            return self._static_raw[name]
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
        value = _synonym_value(name, synonym.name, raw, setting.type, synonym.scale)
        if value is not None:
            return value
    return setting.default_string or ""


@lru_cache(maxsize=1024)
def _synonym_value(name: str, synonym: str, raw: str, type_: ConfigType, scale: int) -> str | None:
    """Topic config `name` as broker setting `synonym` = `raw` gives it (None: not a valid value).

    A pure function of its arguments, cached: read on every produce and every follower append.
    """
    try:
        value = parse_typed(synonym, raw, type_)
    except ConfigError:
        return None
    if scale != 1:
        value *= scale
    if name == "retention.ms" and value < 0:
        value = -1  # KafkaConfig.logRetentionTimeMillis
    return to_config_string(value) or ""


_INT_TYPES = (ConfigType.INT, ConfigType.LONG, ConfigType.SHORT)


class TopicSettings:
    """A topic's configs as one broker sees them, read typed as Kafka's ConfigDef types them.

    Built on a lookup giving the string value (`topic_config_value`: override,
    broker synonyms, Kafka's default); calling the object gives that string.
    Each ``get_*`` checks that the config is of that type in `TOPIC_CONFIGS`,
    so asking ``get_int("cleanup.policy")`` is a programming error (TypeError),
    not a silent misreading. Values were validated when set, so reading them
    does not validate again.
    """

    __slots__ = ("_lookup", "_memo")

    def __init__(
        self, lookup: Callable[[str], str] | None = None, memo: Callable[[], dict[tuple[str, str], Any]] | None = None
    ) -> None:
        self._lookup = lookup or _default_topic_config
        #: the typed values read so far, kept by the owner of the lookup (a Topic) and emptied when a
        #: setting changes: produce and follower appends read a dozen of them per request
        self._memo = memo

    def __call__(self, name: str) -> str:
        """The value as a string (as DescribeConfigs reports it)."""
        return self._lookup(name)

    def _typed(self, name: str, *types: ConfigType) -> str:
        type_ = TOPIC_CONFIGS[name].type
        if type_ not in types:
            raise TypeError(f"topic config {name} is a {type_.name}, not {' or '.join(t.name for t in types)}")
        return self._lookup(name)

    def _read(self, kind: str, name: str, parse: Callable[[str], Any], *types: ConfigType) -> Any:
        if self._memo is None:
            return parse(self._typed(name, *types))
        memo = self._memo()
        try:
            return memo[kind, name]
        except KeyError:
            value = memo[kind, name] = parse(self._typed(name, *types))
            return value

    def get_int(self, name: str) -> int:
        """An INT, LONG or SHORT config (``retention.ms``, ``segment.bytes``, ``min.insync.replicas``...)."""
        return self._read("int", name, int, *_INT_TYPES)

    def get_bool(self, name: str) -> bool:
        """A BOOLEAN config (``unclean.leader.election.enable``...)."""
        return self._read("bool", name, _parse_bool, ConfigType.BOOLEAN)

    def get_list(self, name: str) -> list[str]:
        """A LIST config, split and trimmed (``cleanup.policy``...)."""
        return list(self._read("list", name, _parse_list, ConfigType.LIST))

    def get_str(self, name: str) -> str:
        """A STRING config (``message.timestamp.type``, ``compression.type``...)."""
        return self._read("str", name, str, ConfigType.STRING)

    def get(self, name: str) -> Any:
        """The value typed by its ConfigDef type (int, bool, float, list of str, or str)."""
        return parse_typed(name, self._lookup(name), TOPIC_CONFIGS[name].type)


def _parse_bool(raw: str) -> bool:
    return raw.strip().lower() == "true"


def _parse_list(raw: str) -> tuple[str, ...]:
    raw = raw.strip()
    return tuple(part.strip() for part in raw.split(",")) if raw else ()


def _default_topic_config(name: str) -> str:
    """Kafka's default of a topic config (no override, no broker setting)."""
    return TOPIC_CONFIGS[name].default_string or ""


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
