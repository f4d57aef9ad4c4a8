"""Classic consumer group steps for differential tests, each compared on both brokers.

A member is named by its alias (``member#1``), the same on both sides; each
request carries each side's own member id (`Side.raw`). Every helper makes
its requests with `Pair.compare`, so every step of a scenario is a
comparison, not only the last.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kstub.protocol import ErrorCode
from kstub.protocol.consumer_protocol import PROTOCOL_TYPE, encode_assignment, encode_subscription

from .differential import Pair, Side, Submitted

FIND_COORDINATOR, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 10, 11, 12, 13, 14

SESSION_MS = 30_000  # long enough that no member expires during a test, even on a slow machine
REBALANCE_MS = 30_000


def subscription(*topics: str) -> bytes:
    """A consumer's JoinGroup metadata subscribing to `topics`."""
    return encode_subscription({"topics": list(topics), "user_data": None, "owned_partitions": []}, 1)


def assignment(**partitions: Sequence[int]) -> bytes:
    return encode_assignment(
        {"assigned_partitions": [{"topic": t, "partitions": list(p)} for t, p in partitions.items()], "user_data": None}
    )


def protocols(*topics: str, names: Sequence[str] = ("range",)) -> list[dict[str, Any]]:
    return [{"name": name, "metadata": subscription(*topics)} for name in names]


def member(side: Side, alias: str) -> str:
    """This side's member id for `alias` (or `alias` itself when it is a literal id such as "")."""
    return side.raw("member", alias)


def new_group(pair: Pair, what: str = "g") -> str:
    """A unique group id whose coordinator is ready on both brokers."""
    group = pair.name(what)
    pair.wait_for_coordinator(group)
    return group


def join_body(
    group: str,
    member_alias: str = "",
    *,
    instance: str | None = None,
    protocol_type: str = PROTOCOL_TYPE,
    protos: list[dict[str, Any]] | None = None,
    session_ms: int = SESSION_MS,
    rebalance_ms: int = REBALANCE_MS,
) -> Any:
    """A JoinGroup body as a function of the side."""
    return lambda side: {
        "group_id": group,
        "session_timeout_ms": session_ms,
        "rebalance_timeout_ms": rebalance_ms,
        "member_id": member(side, member_alias),
        "group_instance_id": instance,
        "protocol_type": protocol_type,
        "protocols": protocols() if protos is None else protos,
        "reason": None,
    }


def join(pair: Pair, group: str, member_alias: str = "", *, version: int | None = None, **kw: Any) -> Any:
    """One compared JoinGroup; Kafka's (normalised) answer. The leader's member list is compared
    as a set: Kafka lists members in hash order."""
    return pair.compare(JOIN_GROUP, join_body(group, member_alias, **kw), version=version, unordered=("members",))[1]


def submit_join(pair: Pair, group: str, member_alias: str = "", **kw: Any) -> Submitted:
    """A JoinGroup sent to both and left waiting (for the rest of the group); `.compare()` it later."""
    return pair.submit(JOIN_GROUP, join_body(group, member_alias, **kw))


def describe(pair: Pair, *groups: str, version: int | None = None, operations: bool = False) -> Any:
    """DescribeGroups compared (groups and members as sets: Kafka answers them in hash order)."""
    body = {"groups": list(groups), "include_authorized_operations": operations}
    return pair.compare(15, body, version=version, unordered=("groups", "members"))[1]


def state(side: Side, group: str) -> str:
    return side.conn.request(15, {"groups": [group], "include_authorized_operations": False}).groups[0].group_state


def wait_state(pair: Pair, group: str, wanted: str, timeout: float = 30.0) -> None:
    """Wait until `group` is in state `wanted` on both brokers (after a request sent with `submit`
    that another connection's request must follow). Polls DescribeGroups; not compared."""
    deadline = time.monotonic() + timeout
    for side in pair.sides:
        while (now := state(side, group)) != wanted:
            if time.monotonic() > deadline:
                raise AssertionError(f"{side.name}: group {group} is {now}, not {wanted}, after {timeout:.0f} s")
            time.sleep(0.05)


def sync_body(
    group: str,
    member_alias: str,
    generation: int,
    assignments: dict[str, bytes] | None = None,
    *,
    instance: str | None = None,
    protocol_type: str | None = PROTOCOL_TYPE,
    protocol_name: str | None = "range",
) -> Any:
    return lambda side: {
        "group_id": group,
        "generation_id": generation,
        "member_id": member(side, member_alias),
        "group_instance_id": instance,
        "protocol_type": protocol_type,
        "protocol_name": protocol_name,
        "assignments": [{"member_id": member(side, m), "assignment": a} for m, a in (assignments or {}).items()],
    }


def sync(
    pair: Pair,
    group: str,
    member_alias: str,
    generation: int,
    assignments: dict[str, bytes] | None = None,
    *,
    version: int | None = None,
    **kw: Any,
) -> Any:
    return pair.compare(SYNC_GROUP, sync_body(group, member_alias, generation, assignments, **kw), version=version)[1]


def heartbeat(
    pair: Pair,
    group: str,
    member_alias: str,
    generation: int,
    *,
    instance: str | None = None,
    version: int | None = None,
) -> Any:
    body = lambda side: {  # noqa: E731
        "group_id": group,
        "generation_id": generation,
        "member_id": member(side, member_alias),
        "group_instance_id": instance,
    }
    return pair.compare(HEARTBEAT, body, version=version)[1]


@dataclass
class Joined:
    """A member after its JoinGroup: its alias and generation."""

    member: str
    generation: int
    leader: str


def join_new(pair: Pair, group: str, *, instance: str | None = None, **kw: Any) -> Joined:
    """A new member joins a group with no one else waiting: the MEMBER_ID_REQUIRED handshake for a
    dynamic member (v4+), then the join proper. Both steps are compared."""
    first = join(pair, group, instance=instance, **kw)
    if first["error_code"] == ErrorCode.MEMBER_ID_REQUIRED:
        first = join(pair, group, first["member_id"], instance=instance, **kw)
    assert first["error_code"] == ErrorCode.NONE, first
    return Joined(first["member_id"], first["generation_id"], first["leader"])


def stable_group(pair: Pair, group: str, *topics: str, instance: str | None = None) -> Joined:
    """A one-member group, Stable: join (with the handshake) and sync, every step compared."""
    joined = join_new(pair, group, instance=instance, protos=protocols(*topics))
    answer = sync(
        pair,
        group,
        joined.member,
        joined.generation,
        {joined.member: assignment(**{t: [0] for t in topics})},
        instance=instance,
    )
    assert answer["error_code"] == ErrorCode.NONE, answer
    return joined


def create_topic(pair: Pair, topic: str, partitions: int = 1) -> None:
    """Create `topic` on both (CreateTopics compared), and wait until both know it (Metadata)."""
    body = {
        "topics": [
            {
                "name": topic,
                "num_partitions": partitions,
                "replication_factor": 1,
                "assignments": [],
                "configs": [],
            }
        ],
        "timeout_ms": 30_000,
        "validate_only": False,
    }
    pair.compare(19, body, ignore=("topic_id", "configs"))
    deadline = time.monotonic() + 30
    for side in pair.sides:
        # Kafka's broker learns of the topic from the controller a moment after CreateTopics answers
        while not _known(side, topic, partitions):
            assert time.monotonic() < deadline, f"{side.name} does not know topic {topic}"
            time.sleep(0.05)


def _known(side: Side, topic: str, partitions: int) -> bool:
    (answer,) = side.admin.metadata([topic]).topics
    return (
        answer.error_code == ErrorCode.NONE
        and len(answer.partitions) == partitions
        and all(p.leader_id >= 0 for p in answer.partitions)
    )


def committed_topics(offsets: dict[str, dict[int, int]], metadata: str | None) -> list[dict[str, Any]]:
    """The ``topics`` of an OffsetCommit or TxnOffsetCommit: `offsets` is {topic: {partition: offset}}."""
    return [
        {
            "name": topic,
            "partitions": [
                {
                    "partition_index": p,
                    "committed_offset": o,
                    "committed_leader_epoch": -1,
                    "committed_metadata": metadata,
                }
                for p, o in partitions.items()
            ],
        }
        for topic, partitions in offsets.items()
    ]


def commit_body(
    group: str,
    offsets: dict[str, dict[int, int]],
    *,
    generation: int = -1,
    member_alias: str = "",
    instance: str | None = None,
    metadata: str | None = "",
    retention_ms: int = -1,
) -> Any:
    """An OffsetCommit body as a function of the side: `offsets` is {topic: {partition: offset}}."""
    return lambda side: {
        "group_id": group,
        "generation_id_or_member_epoch": generation,
        "member_id": member(side, member_alias),
        "group_instance_id": instance,
        "retention_time_ms": retention_ms,
        "topics": committed_topics(offsets, metadata),
    }


def commit(pair: Pair, group: str, offsets: dict[str, dict[int, int]], *, version: int | None = None, **kw: Any) -> Any:
    """One compared OffsetCommit; Kafka's answer as {(topic, partition): error code}."""
    answer = pair.compare(8, commit_body(group, offsets, **kw), version=version)[1]
    return {(t["name"], p["partition_index"]): p["error_code"] for t in answer["topics"] for p in t["partitions"]}
