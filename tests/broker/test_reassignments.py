"""AlterPartitionReassignments / ListPartitionReassignments on a 3-broker cluster, without sockets.

New replicas copy the leader's log before the switch: while one of them is held
back (its replica fetcher paused) the reassignment stays in progress, listed
with its adding and removing replicas; once it catches up the replica set
becomes the target, a removed leader hands over to the first target replica,
and the removed replicas' logs are gone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio

from kstub.cluster.model import Partition
from kstub.control import ControlError
from kstub.protocol import ErrorCode

from support.memory import MemoryClient, memory_cluster
from support.raw_requests import batch, fetch_req, produce_req

TOPIC = "moving"
ALTER, LIST = 45, 46


@pytest.fixture
async def cluster(autojump_clock):
    async with memory_cluster(3) as mc:
        yield mc


async def until(p: Partition, condition: Callable[[], bool]) -> None:
    """Wait (on the partition's own events: leadership, ISR, high watermark) until `condition` holds."""
    with trio.fail_after(60):
        while not condition():
            event = trio.Event()
            p.add_waiter(event)
            try:
                await event.wait()
            finally:
                p.remove_waiter(event)


async def alter(c: MemoryClient, partitions: dict[int, list[int] | None], *, version: int = 1, **extra: Any) -> Any:
    topics = [{"name": TOPIC, "partitions": [{"partition_index": i, "replicas": r} for i, r in partitions.items()]}]
    return await c.request(ALTER, version, {"timeout_ms": 30000, "topics": topics, **extra})


def codes(answer: Any) -> list[int]:
    return [p.error_code for t in answer.responses for p in t.partitions]


async def listed(c: MemoryClient, topics: list | None = None) -> list[tuple[str, int, list, list, list]]:
    answer = await c.request(LIST, 0, {"timeout_ms": 30000, "topics": topics})
    assert answer.error_code == ErrorCode.NONE
    return [
        (t.name, p.partition_index, list(p.replicas), list(p.adding_replicas), list(p.removing_replicas))
        for t in answer.topics
        for p in t.partitions
    ]


async def produce_some(c: MemoryClient, batches: int) -> None:
    for _ in range(batches):
        req = produce_req(TOPIC, batch(10, value_size=500))
        assert (await c.request(req.api_key, req.version, req.body)).responses[0].partition_responses[0].error_code == 0


async def test_new_replicas_catch_up_before_the_switch(cluster) -> None:
    model = cluster.model
    p = model.create_topic(TOPIC, assignments={0: [0]}).partitions[0]
    async with cluster.connect(0) as c0:
        await produce_some(c0, 30)
        end = p.log_end_offset
        assert end == 300
        cluster.control.pause_replication(1)
        answer = await alter(c0, {0: [1, 2]})
        assert answer.error_code == ErrorCode.NONE and codes(answer) == [ErrorCode.NONE]
        epoch = p.leader_epoch
        # broker 2 catches up and joins the ISR; broker 1 cannot: the reassignment waits for it
        await until(p, lambda: 2 in p.isr)
        assert await listed(c0) == [(TOPIC, 0, [1, 2, 0], [1, 2], [0])]
        assert await listed(c0, [{"name": TOPIC, "partition_indexes": [0, 1]}]) == [(TOPIC, 0, [1, 2, 0], [1, 2], [0])]
        assert p.leader == 0 and p.replicas == [1, 2, 0] and p.logs[1].log_end_offset == 0
        assert p.logs[2].log_end_offset == end
        await produce_some(c0, 1)  # the leader still takes writes meanwhile
        cluster.control.resume_replication(1)
        await until(p, lambda: not p.adding_replicas)
        assert await listed(c0) == []
        assert p.replicas == [1, 2] and p.isr == [1, 2] and p.leader == 1 and p.leader_epoch == epoch + 1
        assert set(p.logs) == {1, 2} and set(p.states) == {1, 2}
    async with cluster.connect(1) as c1:
        # the new leader serves everything, from offset 0
        req = fetch_req(TOPIC, 0)
        fetched = (await c1.request(req.api_key, req.version, req.body)).responses[0].partitions[0]
        assert fetched.error_code == 0 and fetched.high_watermark == end + 10
        assert p.logs[1].log_end_offset == p.logs[2].log_end_offset == end + 10


async def test_cancel_goes_back_to_the_original_replicas(cluster) -> None:
    p = cluster.model.create_topic(TOPIC, assignments={0: [0, 1]}).partitions[0]
    async with cluster.connect(0) as c0:
        await produce_some(c0, 3)
        cluster.control.pause_replication(2)
        assert codes(await alter(c0, {0: [2, 1]})) == [ErrorCode.NONE]
        assert await listed(c0) == [(TOPIC, 0, [2, 1, 0], [2], [0])]
        assert 2 in p.logs
        assert codes(await alter(c0, {0: None})) == [ErrorCode.NONE]
        assert await listed(c0) == []
        # as Kafka: the replica list without the added replicas, in the reassignment's order
        assert p.replicas == [1, 0] and p.leader == 0 and 2 not in p.logs and 2 not in p.isr
        assert codes(await alter(c0, {0: None})) == [ErrorCode.NO_REASSIGNMENT_IN_PROGRESS]


async def test_reordering_and_removals_in_sync_complete_at_once(cluster) -> None:
    p = cluster.model.create_topic(TOPIC, assignments={0: [0, 1, 2]}).partitions[0]
    async with cluster.connect(0) as c0:
        await produce_some(c0, 2)
        epoch = p.leader_epoch
        assert codes(await alter(c0, {0: [1, 0, 2]})) == [ErrorCode.NONE]
        assert p.replicas == [1, 0, 2] and p.leader == 0 and p.leader_epoch == epoch  # nothing left: no new epoch
        assert codes(await alter(c0, {0: [1, 2]})) == [ErrorCode.NONE]
        assert await listed(c0) == []
        # the leader was removed: the first target replica in the ISR leads, in a new epoch
        assert p.replicas == [1, 2] and p.leader == 1 and p.leader_epoch == epoch + 1 and set(p.logs) == {1, 2}


async def test_errors_as_kafka(cluster) -> None:
    cluster.model.create_topic(TOPIC, assignments={0: [0, 1]})
    async with cluster.connect(0) as c0:
        answer = await alter(c0, {0: [], 1: [0, 1], 2: None})
        assert codes(answer) == [
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ]
        assert codes(await alter(c0, {0: [0, 0]})) == [ErrorCode.INVALID_REPLICA_ASSIGNMENT]
        assert codes(await alter(c0, {0: [0, 7]})) == [ErrorCode.INVALID_REPLICA_ASSIGNMENT]
        assert codes(await alter(c0, {0: None})) == [ErrorCode.NO_REASSIGNMENT_IN_PROGRESS]
        refused = await alter(c0, {0: [0, 1, 2]}, allow_replication_factor_change=False)
        assert codes(refused) == [ErrorCode.INVALID_REPLICATION_FACTOR]
        assert refused.allow_replication_factor_change is False
        nope = [{"name": "nope", "partitions": [{"partition_index": 0, "replicas": [0]}]}]
        body = {"timeout_ms": 1000, "topics": nope}
        assert codes(await c0.request(ALTER, 0, body)) == [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]
        assert await listed(c0, [{"name": "nope", "partition_indexes": [0]}]) == []
        assert await listed(c0) == []


async def test_the_control_plane_uses_the_same_reassignment(cluster) -> None:
    p = cluster.model.create_topic(TOPIC, assignments={0: [0]}).partitions[0]
    control = cluster.control
    control.pause_replication(1)
    state = control.reassign(TOPIC, 0, [1])
    assert state["replicas"] == [1, 0] and state["adding"] == [1] and state["removing"] == [0]
    assert [s["partition"] for s in control.describe_reassignments()] == [0]
    async with cluster.connect(0) as c0:
        assert await listed(c0) == [(TOPIC, 0, [1, 0], [1], [0])]
    with pytest.raises(ControlError, match="INVALID_REPLICA_ASSIGNMENT"):
        control.reassign(TOPIC, 0, [5])
    control.resume_replication(1)
    await until(p, lambda: not p.adding_replicas)
    assert p.replicas == [1] and p.leader == 1 and control.describe_reassignments() == []
