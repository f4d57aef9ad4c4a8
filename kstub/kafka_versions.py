"""Posing as an older Apache Kafka: `kstub serve --kafka-version 2.8` (setting ``kstub.kafka.version``).

The tables are facts derived from each release's own jars
(kstub/kafka_versions.json, by compat/derive_kafka_versions.py). Posing
as release X, kstub:

- advertises in ApiVersions exactly the APIs and version ranges X's broker
  advertised, as far as kstub implements them (an API kstub does not serve
  stays out; a version newer than kstub's codec is not advertised);
- accepts only the versions X's broker accepted: any other request (an API X
  did not serve, a version X did not know or had removed) closes the
  connection, as Kafka's network layer does. From 4.0 that includes Produce
  v0-v2, which 4.x still advertises for librdkafka's sake (KAFKA-18659);
- reports X's feature levels (none for a release posed as ZooKeeper-based,
  before 3.3) among those kstub serves; ``kraft.version`` stays unfinalized,
  as on a cluster with a static controller quorum;
- answers ConsumerGroupHeartbeat with UNSUPPORTED_VERSION before 4.0, as 3.7-3.9
  brokers did with their default settings (the new consumer protocol was not
  enabled there).

Without a version kstub serves its own newest surface, which also keeps the
versions Kafka 4 removed so that older clients still work
(docs/kafka-versions.md).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from kstub.protocol import APIS, Api


def load_releases() -> dict[str, dict[str, Any]]:
    """The derived table (kstub/kafka_versions.json), per release: ``artifact``, ``kraft``, ``advertised`` and
    ``accepted`` (API key → (min, max)) and ``features`` ((name, min, max, finalized level), oldest release first."""
    raw = json.loads(resources.files("kstub").joinpath("kafka_versions.json").read_text())
    return {
        release: {
            "artifact": entry["artifact"],
            "kraft": entry["kraft"],
            "advertised": {int(k): (low, high) for k, (low, high) in entry["advertised"].items()},
            "accepted": {int(k): (low, high) for k, (low, high) in entry["accepted"].items()},
            "features": [tuple(f) for f in entry["features"]],
        }
        for release, entry in raw.items()
    }


#: what each release's broker advertised and accepted, and its feature levels
RELEASES = load_releases()


@dataclass(frozen=True)
class FeatureLevel:
    name: str
    min_version: int
    max_version: int
    #: the finalized level (0: not finalized)
    level: int


#: the features whose behaviour kstub serves (kstub/cluster/features.py), the only ones reported when posing
SERVED_FEATURES = ("metadata.version", "kraft.version", "group.version", "transaction.version")


@dataclass(frozen=True)
class KafkaVersion:
    """One release kstub poses as."""

    name: str
    #: the release's jars the tables were read from (e.g. 3.9.1)
    artifact: str
    #: posed as a KRaft cluster (3.3+) rather than a ZooKeeper-based one
    kraft: bool
    #: the ApiVersions entries: key → (min, max), limited to what kstub implements
    advertised: dict[int, tuple[int, int]]
    #: the codec's table: only these APIs and versions are read; others close the connection
    accepted: dict[int, Api]
    features: tuple[FeatureLevel, ...]

    @property
    def consumer_group_protocol(self) -> bool:
        """KIP-848's protocol enabled by default (Kafka 4.0 on)."""
        return _key(self.name) >= (4, 0)


def _key(name: str) -> tuple[int, int]:
    major, minor = name.split(".")[:2]
    return int(major), int(minor)


def known() -> list[str]:
    """The releases kstub can pose as, oldest first."""
    return list(RELEASES)


class UnknownKafkaVersion(ValueError):
    pass


def release_name(version: str) -> str:
    """The release (major.minor) a `--kafka-version` value names: ``3.7``, ``3.7.2``, ``4``, ``4.x`` (the newest
    of a major)."""
    value = version.strip().lower()
    parts = value.split(".")
    if len(parts) == 1 or parts[1] in ("x", "*"):
        newest = [r for r in RELEASES if r.split(".")[0] == parts[0]]
        if newest:
            return newest[-1]
    elif ".".join(parts[:2]) in RELEASES:
        return ".".join(parts[:2])
    raise UnknownKafkaVersion(
        f"unknown Kafka version {version!r}: kstub can pose as {', '.join(RELEASES)} (or 2, 3, 4: the newest of each)"
    )


def _clip(served: dict[int, Api], ranges: dict[int, tuple[int, int]]) -> dict[int, tuple[int, int]]:
    out = {}
    for key, (low, high) in ranges.items():
        api = served.get(key)
        if api is None:
            continue
        low, high = max(low, api.min_version), min(high, api.max_version)
        if low <= high:
            out[key] = (low, high)
    return out


@functools.cache
def resolve(version: str) -> KafkaVersion | None:
    """The release named by `version` (`release_name`), or None for kstub's own newest surface ("")."""
    if not version.strip() or version.strip().lower() in ("latest", "newest"):
        return None
    from kstub.handlers import REGISTRY, served_apis

    name = release_name(version)
    entry = RELEASES[name]
    advertised = _clip(served_apis(), entry["advertised"])
    implemented = {key: APIS[key] for key in REGISTRY}
    accepted_ranges = _clip(implemented, entry["accepted"])
    accepted = {
        key: dataclasses.replace(APIS[key], min_version=low, max_version=high)
        for key, (low, high) in accepted_ranges.items()
    }
    features = tuple(
        FeatureLevel(f_name, low, high, 0 if f_name == "kraft.version" else level)
        for f_name, low, high, level in entry["features"]
        if f_name in SERVED_FEATURES
    )
    return KafkaVersion(name, entry["artifact"], entry["kraft"], advertised, accepted, features)
