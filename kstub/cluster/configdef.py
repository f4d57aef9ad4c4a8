"""Kafka's ConfigDef, as kstub needs it: config types and sources, parsing values from strings,
validators, and the shape of a setting (`Setting` for a broker, `TopicSetting` for a topic config).

The tables of what Kafka configures live beside it: kstub/cluster/topic_configs.py (LogConfig) and
kstub/cluster/broker_settings.py; kstub/cluster/config.py puts them to work.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
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
