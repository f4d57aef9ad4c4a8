"""Mixed groups (Kafka 4.x's online migration), request by request: a live classic group becomes a consumer
group when a ConsumerGroupHeartbeat joins it, its classic members carry on with JoinGroup, SyncGroup and
Heartbeat, and it goes back to being a classic group when the last member of the new protocol leaves.

In memory under Trio's autojump clock (tests/support/memory.py). A partition is never held by a classic member
and a new-protocol member at once; ListGroups and ConsumerGroupDescribe tell the kind of group and of member.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio

from kstub.protocol import ErrorCode
from kstub.protocol.consumer_protocol import decode_assignment, encode_assignment, encode_subscription

from support.memory import MemoryClient, memory_cluster
from support.memory import create_topic as create

HB, DESCRIBE = 68, 69
JOIN, SYNC, HEARTBEAT, LEAVE, LIST, COMMIT, FETCH = 11, 14, 12, 13, 16, 8, 9


@pytest.fixture
async def mc(autojump_clock):
    async with memory_cluster(1, config={"group.initial.rebalance.delay.ms": 0}) as cluster:
        yield cluster


class Classic:
    """A classic consumer (eager, as kafka-python's range assignor): JoinGroup, SyncGroup, Heartbeat by hand."""

    def __init__(self, c: MemoryClient, group: str, topic: str, instance: str | None = None) -> None:
        self.c, self.group, self.topic, self.instance = c, group, topic, instance
        self.member_id, self.generation = "", -1
        self.owned: set[int] = set()

    async def join(self) -> Any:
        self.owned = set()  # eager: it revokes everything before it rejoins
        subscription = encode_subscription({"topics": [self.topic]}, 0)
        body = {"group_id": self.group, "session_timeout_ms": 10000, "rebalance_timeout_ms": 10000,
                "member_id": self.member_id, "group_instance_id": self.instance, "protocol_type": "consumer",
                "protocols": [{"name": "range", "metadata": subscription}]}  # fmt: skip
        answer = await self.c.request(JOIN, 5, body)
        self.member_id = answer.member_id or self.member_id
        if answer.error_code == ErrorCode.MEMBER_ID_REQUIRED:
            self.member_id = body["member_id"] = answer.member_id
            answer = await self.c.request(JOIN, 5, body)
        assert answer.error_code == 0, answer
        self.generation = answer.generation_id
        return answer

    async def sync(self, assignments: dict[str, list[int]] | None = None) -> set[int]:
        wire = [
            {"member_id": m, "assignment": encode_assignment({"assigned_partitions": [{"topic": self.topic,
                                                                                       "partitions": ps}]}, 0)}
            for m, ps in (assignments or {}).items()
        ]  # fmt: skip
        body = {"group_id": self.group, "generation_id": self.generation, "member_id": self.member_id,
                "group_instance_id": self.instance, "assignments": wire}  # fmt: skip
        answer = await self.c.request(SYNC, 3, body)
        assert answer.error_code == 0, answer
        decoded = decode_assignment(answer.assignment)
        self.owned = {p for a in decoded.assigned_partitions for p in a.partitions}
        return self.owned

    async def heartbeat(self) -> ErrorCode:
        body = {"group_id": self.group, "generation_id": self.generation, "member_id": self.member_id,
                "group_instance_id": self.instance}  # fmt: skip
        return ErrorCode((await self.c.request(HEARTBEAT, 3, body)).error_code)

    async def rejoin(self) -> set[int]:
        await self.join()
        return await self.sync()


class New:
    """A member of the new protocol (ConsumerGroupHeartbeat)."""

    def __init__(self, c: MemoryClient, group: str, topic: str, member_id: str) -> None:
        self.c, self.group, self.topic, self.member_id = c, group, topic, member_id
        self.epoch = 0
        self.owned: set[int] = set()
        self.topic_id: uuid.UUID | None = None

    async def beat(self, epoch: int | None = None, **extra: Any) -> Any:
        body: dict[str, Any] = {"group_id": self.group, "member_id": self.member_id,
                                "member_epoch": self.epoch if epoch is None else epoch, **extra}  # fmt: skip
        if self.epoch == 0:
            body.update(rebalance_timeout_ms=30000, subscribed_topic_names=[self.topic], topic_partitions=[])
        elif self.topic_id is not None:
            body["topic_partitions"] = [{"topic_id": self.topic_id, "partitions": sorted(self.owned)}]
        answer = await self.c.request(HB, 1, body)
        assert answer.error_code == 0, (answer.error_code, answer.error_message)
        self.epoch = answer.member_epoch
        if answer.assignment is not None:
            self.owned = {p for t in answer.assignment.topic_partitions for p in t.partitions}
        return answer


async def listed(c: MemoryClient) -> dict[str, tuple[str, str]]:
    answer = await c.request(LIST, 5, {"states_filter": [], "types_filter": []})
    return {g.group_id: (g.group_type, g.group_state) for g in answer.groups}


async def test_a_classic_group_converts_to_a_consumer_group_and_back(mc, autojump_clock) -> None:
    c = mc.connect()
    tid = await create(c, "t", 4)
    a = Classic(c, "g", "t")
    joined = await a.join()
    assert joined.leader == a.member_id and joined.generation_id == 1
    assert await a.sync({a.member_id: [0, 1, 2, 3]}) == {0, 1, 2, 3}
    assert (await listed(c))["g"] == ("classic", "Stable")
    commit = {"group_id": "g", "generation_id_or_member_epoch": a.generation, "member_id": a.member_id,
              "topics": [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 7,
                                                       "committed_metadata": ""}]}]}  # fmt: skip
    assert (await c.request(COMMIT, 8, commit)).topics[0].partitions[0].error_code == 0

    # a member of the new protocol joins: the group converts, at the classic generation (+1 for the join)
    b = New(c, "g", "t", "b-" + uuid.uuid4().hex[:8])
    answer = await b.beat()
    assert answer.member_epoch == 2
    assert b.owned == set()  # a still holds every partition: nothing is free for b yet
    b.topic_id = tid
    assert (await listed(c))["g"] == ("consumer", "Reconciling")
    described = (await c.request(DESCRIBE, 1, {"group_ids": ["g"], "include_authorized_operations": False})).groups[0]
    assert described.error_code == 0 and described.group_epoch == 2
    assert {m.member_id: (m.member_type, m.member_epoch) for m in described.members} == {
        a.member_id: (0, 1),  # classic, still at the classic generation
        b.member_id: (1, 2),
    }
    # DescribeGroups knows classic groups only
    old = (await c.request(15, 5, {"groups": ["g"], "include_authorized_operations": False})).groups[0]
    assert old.group_state == "Dead"

    # the classic member is told to rejoin; it gets its share of the target at once, then b the rest
    assert await a.heartbeat() == ErrorCode.REBALANCE_IN_PROGRESS
    joined = await a.join()
    assert (joined.generation_id, joined.leader, list(joined.members)) == (2, "", [])
    assert joined.protocol_name == "range"
    kept = await a.sync()
    assert len(kept) == 2
    assert await a.heartbeat() == ErrorCode.NONE
    await b.beat()
    assert b.owned == {0, 1, 2, 3} - kept
    await trio.sleep(1)
    await b.beat()
    assert (await listed(c))["g"] == ("consumer", "Stable")
    # the classic member commits with its generation (its member epoch); a stale one is ILLEGAL_GENERATION
    commit["generation_id_or_member_epoch"] = a.generation
    assert (await c.request(COMMIT, 8, commit)).topics[0].partitions[0].error_code == 0
    commit["generation_id_or_member_epoch"] = 1
    assert (await c.request(COMMIT, 8, commit)).topics[0].partitions[0].error_code == ErrorCode.ILLEGAL_GENERATION

    # the last member of the new protocol leaves: back to a classic group, which rebalances
    await b.beat(epoch=-1)
    assert (await listed(c))["g"] == ("classic", "PreparingRebalance")
    assert await a.heartbeat() == ErrorCode.REBALANCE_IN_PROGRESS
    joined = await a.join()
    assert joined.leader == a.member_id and joined.generation_id == 3
    assert await a.sync({a.member_id: [0, 1, 2, 3]}) == {0, 1, 2, 3}
    assert (await listed(c))["g"] == ("classic", "Stable")
    fetched = await c.request(FETCH, 7, {"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0]}]})
    assert fetched.topics[0].partitions[0].committed_offset == 7  # the offsets stayed through both conversions


async def test_two_classic_members_and_one_of_the_new_protocol_never_share_a_partition(mc, autojump_clock) -> None:
    c = mc.connect()
    await create(c, "t", 6)
    a, b = Classic(mc.connect(), "g", "t"), Classic(mc.connect(), "g", "t")
    await a.join()
    await a.sync({a.member_id: list(range(6))})
    leaders: list[str] = []

    async def join(m: Classic) -> None:
        leaders.append((await m.join()).leader)

    async with trio.open_nursery() as n:  # b joins; a is told to rejoin, and the rebalance completes
        n.start_soon(join, b)
        await trio.sleep(0.1)
        assert await a.heartbeat() == ErrorCode.REBALANCE_IN_PROGRESS
        n.start_soon(join, a)
    leader, follower = (a, b) if leaders[0] == a.member_id else (b, a)
    async with trio.open_nursery() as n:
        n.start_soon(follower.sync)
        await trio.sleep(0.1)
        await leader.sync({a.member_id: [0, 1, 2], b.member_id: [3, 4, 5]})
    assert (a.owned, b.owned) == ({0, 1, 2}, {3, 4, 5})
    new = New(c, "g", "t", "n-" + uuid.uuid4().hex[:8])
    for _ in range(8):
        await new.beat()
        for m in (a, b):
            if await m.heartbeat() == ErrorCode.REBALANCE_IN_PROGRESS:
                await m.rejoin()
        owners = [a.owned, b.owned, new.owned]
        assert sum(len(o) for o in owners) == len(set().union(*owners)), owners  # never two owners
        await trio.sleep(1)
    assert sorted(len(o) for o in (a.owned, b.owned, new.owned)) == [2, 2, 2]
    assert a.owned | b.owned | new.owned == set(range(6))


async def test_migration_policy_disabled_refuses_the_upgrade(autojump_clock) -> None:
    async with memory_cluster(1, config={"group.consumer.migration.policy": "disabled",
                                         "group.initial.rebalance.delay.ms": 0}) as mc:  # fmt: skip
        c = mc.connect()
        await create(c, "t", 1)
        a = Classic(c, "g", "t")
        await a.join()
        await a.sync({a.member_id: [0]})
        body = {"group_id": "g", "member_id": "x", "member_epoch": 0, "rebalance_timeout_ms": 30000,
                "subscribed_topic_names": ["t"], "topic_partitions": []}  # fmt: skip
        answer = await c.request(HB, 1, body)
        assert answer.error_code == ErrorCode.GROUP_ID_NOT_FOUND
        assert answer.error_message == (
            "Cannot upgrade classic group g to consumer group because online upgrade is disabled."
        )
        assert (await listed(c))["g"] == ("classic", "Stable")


async def test_a_classic_member_that_does_not_rejoin_is_fenced_after_its_rebalance_timeout(mc, autojump_clock) -> None:
    c = mc.connect()
    await create(c, "t", 2)
    a = Classic(c, "g", "t")
    await a.join()
    await a.sync({a.member_id: [0, 1]})
    b = New(c, "g", "t", "b-" + uuid.uuid4().hex[:8])
    await b.beat()
    assert b.owned == set()
    # a heartbeats (so its session lives on) but never rejoins: after its rebalance timeout (10 s) it is fenced
    told = trio.current_time()
    while (error := await a.heartbeat()) == ErrorCode.REBALANCE_IN_PROGRESS:
        await trio.sleep(1)
    assert error == ErrorCode.UNKNOWN_MEMBER_ID
    assert 10 <= trio.current_time() - told <= 11
    await trio.sleep(1)  # group.consumer.assignment.interval.ms
    await b.beat()
    assert b.owned == {0, 1}


async def test_a_classic_static_member_replacing_the_last_new_one_converts_the_group_back(mc, autojump_clock) -> None:
    """A rolling downgrade with static members: each instance comes back with the classic protocol."""
    c = mc.connect()
    await create(c, "t", 4)
    a = Classic(mc.connect(), "g", "t")
    await a.join()
    await a.sync({a.member_id: [0, 1, 2, 3]})
    s = New(c, "g", "t", "s-" + uuid.uuid4().hex[:8])
    await s.beat(instance_id="i")
    assert await a.heartbeat() == ErrorCode.REBALANCE_IN_PROGRESS
    await a.rejoin()
    for _ in range(3):
        await trio.sleep(1)
        await s.beat(instance_id="i")
    assert (len(a.owned), len(s.owned)) == (2, 2)
    held = set(s.owned)
    await s.beat(epoch=-2, instance_id="i")  # the static member goes away for a while: its place is kept
    assert (await listed(c))["g"][0] == "consumer"
    back = Classic(mc.connect(), "g", "t", instance="i")
    joined = await back.join()
    assert (await listed(c))["g"] == ("classic", "Stable")  # no rebalance: the group is as it was
    assert await back.sync() == held
    assert await a.heartbeat() == ErrorCode.NONE and joined.generation_id == a.generation


async def test_a_classic_member_that_joins_but_never_syncs_is_fenced_after_its_rebalance_timeout(
    mc, autojump_clock
) -> None:
    c = mc.connect()
    await create(c, "t", 2)
    a = Classic(c, "g", "t")
    await a.join()
    await a.sync({a.member_id: [0, 1]})
    b = New(c, "g", "t", "b-" + uuid.uuid4().hex[:8])
    await b.beat()
    assert await a.heartbeat() == ErrorCode.REBALANCE_IN_PROGRESS
    await a.join()  # answered at once; it never sends its SyncGroup, but keeps heartbeating
    joined = trio.current_time()
    while (error := await a.heartbeat()) != ErrorCode.UNKNOWN_MEMBER_ID:
        assert error in (ErrorCode.NONE, ErrorCode.REBALANCE_IN_PROGRESS)
        await trio.sleep(1)
    assert 10 <= trio.current_time() - joined <= 11
