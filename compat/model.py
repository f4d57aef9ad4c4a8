"""The vocabulary shared by scenarios and client adapters: what is sent, what comes back, how it fails.

Adapters translate these into each client's own API and back, so that a
scenario states its checks once, in these terms, for every client.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Msg:
    """A message to produce. `partition=None` lets the client's partitioner choose."""

    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    partition: int | None = None
    timestamp: int | None = None


@dataclass(frozen=True)
class Delivery:
    """Where the broker acknowledged a produced message."""

    partition: int
    offset: int


@dataclass(frozen=True)
class Record:
    """A consumed message, as the client handed it to the application."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    timestamp: int | None = None

    def content(self) -> tuple[bytes | None, bytes | None, Headers]:
        return (self.key, self.value, self.headers)


@dataclass(frozen=True)
class PartitionMeta:
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class ClusterMeta:
    """What a Metadata answer says: brokers by id, and topics' partitions by index."""

    brokers: dict[int, tuple[str, int]]
    topics: dict[str, dict[int, PartitionMeta]] = field(default_factory=dict)


class ClientError(Exception):
    """A client reported an error. `kind` is Kafka's error name where the client exposes one
    (UNKNOWN_TOPIC_OR_PARTITION, TOPIC_ALREADY_EXISTS, ...), else a short word such as TIMEOUT."""

    def __init__(self, kind: str, message: str = "") -> None:
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.message = message


class Unsupported(Exception):
    """The client cannot perform this operation in the way asked (the cell becomes a skip with this reason)."""


class CheckFailed(AssertionError):
    """A scenario's expectation did not hold."""


class CapabilityMissing(Exception):
    """The cluster under test lacks what the scenario needs (the cell becomes a skip with this reason)."""
