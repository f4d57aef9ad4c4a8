"""Group protocol requests for tests over TCP with `RawClient`: JoinGroup, SyncGroup, Heartbeat,
offset commits and fetches, DescribeGroups, waiting for a group's state."""

from __future__ import annotations

import time
from typing import Any

from kstub.protocol import ErrorCode
from kstub.protocol.consumer_protocol import encode_subscription

from support.raw import RawClient

TOPIC_META = encode_subscription({"topics": ["t"]})


# --- helpers ----------------------------------------------------------------------


def heartbeat_join_body(group: str, member: str, topics: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A ConsumerGroupHeartbeat joining `group` (KIP-848: member epoch 0) subscribed to `topics`, plus `extra`."""
    return {
        "group_id": group,
        "member_id": member,
        "member_epoch": 0,
        "rebalance_timeout_ms": 30000,
        "subscribed_topic_names": topics,
        "topic_partitions": [],
        **extra,
    }


def create_topic(c: RawClient, name: str, partitions: int = 4) -> None:
    body = c.request(
        19, 7, {"topics": [{"name": name, "num_partitions": partitions, "replication_factor": 1}], "timeout_ms": 5000}
    )
    assert body.topics[0].error_code == ErrorCode.NONE


def join_body(
    group: str,
    member_id: str = "",
    *,
    instance_id: str | None = None,
    session_ms: int = 30_000,
    rebalance_ms: int = 30_000,
    protocol_type: str = "consumer",
    protocols: list[tuple[str, bytes]] | None = None,
) -> dict:
    return {
        "group_id": group,
        "session_timeout_ms": session_ms,
        "rebalance_timeout_ms": rebalance_ms,
        "member_id": member_id,
        "group_instance_id": instance_id,
        "protocol_type": protocol_type,
        "protocols": [
            {"name": n, "metadata": m} for n, m in (protocols if protocols is not None else [("range", TOPIC_META)])
        ],
    }


def join(c: RawClient, group: str, member_id: str = "", *, version: int = 7, **kw):
    """A JoinGroup answered at once (MEMBER_ID_REQUIRED, errors, or a join that completes the phase)."""
    return c.request(11, version, join_body(group, member_id, **kw))


def join_new(c: RawClient, group: str, *, version: int = 7, **kw):
    """The v4+ handshake: MEMBER_ID_REQUIRED, then the join with the given id."""
    first = join(c, group, version=version, **kw)
    assert first.error_code == ErrorCode.MEMBER_ID_REQUIRED and first.member_id
    assert (first.generation_id, first.leader, first.members) == (-1, "", [])
    return first.member_id


def sync_body(group: str, generation: int, member_id: str, assignments=None, instance_id=None, **extra) -> dict:
    return {
        # v5+ requires both (as the Java client sends them); a test may override them
        "protocol_type": "consumer",
        "protocol_name": "range",
        **extra,
        "group_id": group,
        "generation_id": generation,
        "member_id": member_id,
        "group_instance_id": instance_id,
        "assignments": [{"member_id": m, "assignment": a} for m, a in (assignments or {}).items()],
    }


def sync(c: RawClient, group: str, generation: int, member_id: str, assignments=None, *, version: int = 5, **kw):
    return c.request(14, version, sync_body(group, generation, member_id, assignments, **kw))


def heartbeat(c: RawClient, group: str, generation: int, member_id: str, instance_id=None, version: int = 4) -> int:
    body = c.request(
        12,
        version,
        {"group_id": group, "generation_id": generation, "member_id": member_id, "group_instance_id": instance_id},
    )
    return body.error_code


def commit(
    c: RawClient,
    group: str,
    topic: str,
    offsets: dict[int, int],
    *,
    generation: int = -1,
    member_id: str = "",
    metadata: str | None = "",
    version: int = 8,
    **extra,
) -> dict[int, int]:
    body = c.request(
        8,
        version,
        {
            "group_id": group,
            "generation_id_or_member_epoch": generation,
            "member_id": member_id,
            "topics": [
                {
                    "name": topic,
                    "partitions": [
                        {
                            "partition_index": p,
                            "committed_offset": o,
                            "committed_leader_epoch": 3,
                            "committed_metadata": metadata,
                        }
                        for p, o in offsets.items()
                    ],
                }
            ],
            **extra,
        },
    )
    return {p.partition_index: p.error_code for p in body.topics[0].partitions}


def fetch_offsets(c: RawClient, group: str, topic: str, partitions: list[int]) -> dict[int, tuple]:
    body = c.request(
        9, 8, {"groups": [{"group_id": group, "topics": [{"name": topic, "partition_indexes": partitions}]}]}
    )
    g = body.groups[0]
    assert g.error_code == ErrorCode.NONE
    return {
        p.partition_index: (p.committed_offset, p.committed_leader_epoch, p.metadata, p.error_code)
        for t in g.topics
        for p in t.partitions
    }


def describe(c: RawClient, group: str, version: int = 5):
    return c.request(15, version, {"groups": [group], "include_authorized_operations": True}).groups[0]


def wait_state(c: RawClient, group: str, state: str, timeout: float = 5.0) -> None:
    """Wait (a bounded time) until the group is in `state`: a request sent elsewhere has been handled."""
    deadline = time.monotonic() + timeout
    while describe(c, group).group_state != state:
        assert time.monotonic() < deadline, f"group {group} never reached {state}"
        time.sleep(0.005)


def connect(kstub_cluster, node_id: int = 0) -> RawClient:
    broker = next(b for b in kstub_cluster.brokers if b.node_id == node_id)
    return RawClient(f"{broker.advertised_host}:{broker.port}")
