"""Requests for hand-made protocol tests: record batches as a producer builds them, and the Produce,
Fetch, ListOffsets and CreateTopics requests the tests send most (`Req`), sent over TCP with
`RawClient` (`create`, `produce`, ...) or over an in-memory connection (tests/broker/).

Batches are support.batches' (kafka-python's record builder, as a real producer builds them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from support.batches import batch as batch  # re-exported: the tests send it with these requests
from support.raw import RawClient


@dataclass(frozen=True)
class Req:
    """A request (key, version, body) and what of its answer the tests look at."""

    api_key: int
    version: int
    body: dict[str, Any]
    pick: Callable[[Any], Any]


def create_req(name: str, partitions: int = 1, rf: int = 1, **extra: Any) -> Req:
    topic = {"name": name, "num_partitions": partitions, "replication_factor": rf, **extra}
    return Req(19, 7, {"topics": [topic], "timeout_ms": 5000}, lambda b: b.topics[0])


def produce_req(topic: str, records: bytes, *, partition: int = 0, acks: int = -1, version: int = 9) -> Req:
    data = [{"name": topic, "partition_data": [{"index": partition, "records": records}]}]
    body = {"acks": acks, "timeout_ms": 5000, "topic_data": data}
    return Req(0, version, body, lambda b: b.responses[0].partition_responses[0])


def fetch_req(
    topic: str,
    offset: int,
    *,
    partition: int = 0,
    max_wait_ms: int = 0,
    min_bytes: int = 1,
    max_bytes: int = 50 * 1024 * 1024,
    partition_max_bytes: int = 1024 * 1024,
    version: int = 12,
) -> Req:
    wanted = {"partition": partition, "fetch_offset": offset, "partition_max_bytes": partition_max_bytes}
    body = {
        "max_wait_ms": max_wait_ms,
        "min_bytes": min_bytes,
        "max_bytes": max_bytes,
        "isolation_level": 0,
        "topics": [{"topic": topic, "partitions": [wanted]}],
    }
    return Req(1, version, body, lambda b: b.responses[0].partitions[0])


def list_offset_req(topic: str, ts: int, *, version: int = 7) -> Req:
    body = {"replica_id": -1, "topics": [{"name": topic, "partitions": [{"partition_index": 0, "timestamp": ts}]}]}
    return Req(2, version, body, lambda b: b.topics[0].partitions[0])


def call(c: RawClient, req: Req) -> Any:
    return req.pick(c.request(req.api_key, req.version, req.body))


def create(c: RawClient, *args: Any, **kwargs: Any) -> Any:
    return call(c, create_req(*args, **kwargs))


def produce(c: RawClient, *args: Any, **kwargs: Any) -> Any:
    return call(c, produce_req(*args, **kwargs))


def fetch(c: RawClient, *args: Any, **kwargs: Any) -> Any:
    return call(c, fetch_req(*args, **kwargs))


def list_offset(c: RawClient, *args: Any, **kwargs: Any) -> Any:
    return call(c, list_offset_req(*args, **kwargs))
