"""Request bodies the differential tests send to both brokers (set-up steps and the requests compared)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from support.differential import Pair, Side

Body = dict[str, Any]


def create_body(name: str, partitions: int = 1, rf: int = 1, *, configs: dict[str, str] | None = None,
                assignments: dict[int, list[int]] | None = None, validate_only: bool = False) -> Body:  # fmt: skip
    return {
        "topics": [
            {
                "name": name,
                "num_partitions": partitions,
                "replication_factor": rf,
                "assignments": [{"partition_index": i, "broker_ids": b} for i, b in (assignments or {}).items()],
                "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()],
            }
        ],
        "timeout_ms": 10000,
        "validate_only": validate_only,
    }


def create(pair: Pair, name: str | None = None, partitions: int = 1, **kwargs: Any) -> str:
    """A topic on both brokers (asserting both created it); its name."""
    name = name or pair.name()
    for side, answer in zip(pair.sides, pair.send(19, create_body(name, partitions, **kwargs)), strict=True):
        assert answer.topics[0].error_code == 0, (side.name, answer)
    wait_for_leaders(pair, name, partitions)
    return name


def wait_for_leaders(pair: Pair, name: str, partitions: int) -> None:
    """Until both brokers lead every partition of `name` (Kafka makes its replicas asynchronously).

    Metadata showing a leader is not enough: the broker's replica may come a
    moment later, so ListOffsets must answer for each partition too.
    """
    deadline = time.monotonic() + 15
    for side in pair.sides:
        while True:
            md = side.conn.request(3, {"topics": [{"name": name}], "allow_auto_topic_creation": False})
            t = md.topics[0]
            if t.error_code == 0 and len(t.partitions) == partitions and all(p.leader_id >= 0 for p in t.partitions):
                body = list_offsets_body(name, -1)
                body["topics"][0]["partitions"] = [
                    {"partition_index": i, "current_leader_epoch": -1, "timestamp": -1, "max_num_offsets": 1}
                    for i in range(partitions)
                ]
                lo = side.conn.request(2, body)
                if all(p.error_code == 0 for p in lo.topics[0].partitions):
                    break
            assert time.monotonic() < deadline, (side.name, md)
            time.sleep(0.05)


def produce_body(topic: str, records: bytes | None, *, partition: int = 0, acks: int = -1,
                 transactional_id: str | None = None) -> Body:  # fmt: skip
    return {
        "transactional_id": transactional_id,
        "acks": acks,
        "timeout_ms": 10000,
        "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": records}]}],
    }


def fetch_body(topic: str, offset: int = 0, *, partition: int = 0, max_bytes: int = 50 << 20,
               partition_max_bytes: int = 1 << 20, isolation_level: int = 0, min_bytes: int = 1,
               max_wait_ms: int = 0, log_start_offset: int = -1, current_leader_epoch: int = -1,
               topic_id: Any = None) -> Body:  # fmt: skip
    part = {
        "partition": partition,
        "current_leader_epoch": current_leader_epoch,
        "fetch_offset": offset,
        "last_fetched_epoch": -1,
        "log_start_offset": log_start_offset,
        "partition_max_bytes": partition_max_bytes,
    }
    entry: Body = {"topic": topic, "partitions": [part]}
    if topic_id is not None:
        entry["topic_id"] = topic_id
    return {
        "replica_id": -1,
        "max_wait_ms": max_wait_ms,
        "min_bytes": min_bytes,
        "max_bytes": max_bytes,
        "isolation_level": isolation_level,
        "session_id": 0,
        "session_epoch": -1,
        "topics": [entry],
        "forgotten_topics_data": [],
        "rack_id": "",
    }


def list_offsets_body(topic: str, timestamp: int, *, partition: int = 0, isolation_level: int = 0,
                      current_leader_epoch: int = -1) -> Body:  # fmt: skip
    return {
        "replica_id": -1,
        "isolation_level": isolation_level,
        "topics": [
            {
                "name": topic,
                "partitions": [
                    {
                        "partition_index": partition,
                        "current_leader_epoch": current_leader_epoch,
                        "timestamp": timestamp,
                        "max_num_offsets": 1,
                    }
                ],
            }
        ],
    }


def produce(pair: Pair, topic: str, records: bytes, *, partition: int = 0) -> None:
    """Append `records` on both brokers (asserting success)."""
    for side, answer in zip(pair.sides, pair.send(0, produce_body(topic, records, partition=partition)), strict=True):
        assert answer.responses[0].partition_responses[0].error_code == 0, (side.name, answer)


# --- fetch sessions (KIP-227) ---


def _fetch_partition(partition: int, offset: int) -> Body:
    return {
        "partition": partition,
        "current_leader_epoch": -1,
        "fetch_offset": offset,
        "last_fetched_epoch": -1,
        "log_start_offset": -1,
        "partition_max_bytes": 1 << 20,
    }


def session_fetch(
    session: str | int,
    epoch: int,
    topics: dict[Any, dict[int, int]],
    forgotten: dict[str, list[int]] | None = None,
) -> Any:
    """A Fetch body for each side; `session` is an alias (``session#1``) or a literal id.

    `topics` maps topic → partition → fetch offset.
    """

    def body(side: Side) -> Body:
        return {
            "replica_id": -1,
            "max_wait_ms": 0,
            "min_bytes": 1,
            "max_bytes": 50 << 20,
            "isolation_level": 0,
            "session_id": side.raw("session", session),
            "session_epoch": epoch,
            "topics": [
                {_topic_field(name): name, "partitions": [_fetch_partition(p, o) for p, o in parts.items()]}
                for name, parts in topics.items()
            ],
            "forgotten_topics_data": [{"topic": name, "partitions": ps} for name, ps in (forgotten or {}).items()],
            "rack_id": "",
        }

    return body


def _topic_field(topic: str | uuid.UUID) -> str:
    return "topic_id" if isinstance(topic, uuid.UUID) else "topic"
