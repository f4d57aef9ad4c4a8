"""The feature levels kstub's brokers report in ApiVersions (KIP-584), as Kafka 4.4 reports them.

Each entry is one feature: the range of levels a broker supports and the
level the cluster has finalized (0: not finalized, so not listed as such).
Only features whose behaviour kstub serves are listed: a client that sees
``transaction.version`` 2 or ``group.version`` 1 uses transactions v2 or the
new consumer protocol. The code that serves a feature adds its entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .transactions.coordinator import TRANSACTION_VERSION


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    min_version: int
    max_version: int
    #: the finalized level (0: not finalized)
    level: int


FEATURES: list[Feature] = [
    # KRaft's own features: kstub poses as a KRaft cluster of Kafka 4.4 (metadata.version 4.4-IV? = 33)
    Feature("kraft.version", 0, 1, 0),
    Feature("metadata.version", 7, 33, 33),
    # the consumer group protocol (KIP-848): kstub/cluster/consumer_group/
    Feature("group.version", 0, 1, 1),
    # transactions v2 (KIP-890 part 2: EndTxn v5, Produce v12 adding partitions, TxnOffsetCommit v5), which
    # the Java 4.x client uses once finalized: kstub/cluster/transactions/
    Feature("transaction.version", 0, 2, TRANSACTION_VERSION),
]

#: the metadata offset at which the features were finalized (Kafka's epoch moves with its metadata log)
FINALIZED_EPOCH = 1


def supported(api_version: int) -> list[dict[str, object]]:
    """The supported ranges; before ApiVersions v4 a range starting at 0 is left out (KAFKA-17011), as Kafka does."""
    return [
        {"name": f.name, "min_version": f.min_version, "max_version": f.max_version}
        for f in FEATURES
        if api_version >= 4 or f.min_version > 0
    ]


def finalized() -> list[dict[str, object]]:
    return [
        {"name": f.name, "min_version_level": f.level, "max_version_level": f.level} for f in FEATURES if f.level > 0
    ]
