"""The consumer group protocol (KIP-848) request by request: ConsumerGroupHeartbeat, ConsumerGroupDescribe,
and the offsets, ListGroups and DescribeGroups of consumer groups.

In memory (tests/support/memory.py) under Trio's autojump clock: session and
rebalance timeouts pass as virtual time. Each test drives members by hand as a
consumer would, and checks Kafka's rules: epochs, the incremental
reconciliation (a partition is never held by two members at once), fencing and
the errors.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio

from kstub.protocol import ErrorCode

from support.groups_raw import heartbeat_join_body as join_body
from support.memory import MemoryClient, memory_cluster
from support.memory import create_topic as create

HB, DESCRIBE = 68, 69


@pytest.fixture
async def mc(autojump_clock):
    async with memory_cluster(1) as cluster:
        yield cluster


def hb_body(group: str, member: str, epoch: int, owned: dict[uuid.UUID, set[int]] | None = None, **extra: Any):
    body: dict[str, Any] = {"group_id": group, "member_id": member, "member_epoch": epoch, **extra}
    if owned is not None:
        body["topic_partitions"] = [{"topic_id": t, "partitions": sorted(p)} for t, p in owned.items()]
    return body


def parts(answer: Any) -> dict[uuid.UUID, set[int]] | None:
    if answer.assignment is None:
        return None
    return {t.topic_id: set(t.partitions) for t in answer.assignment.topic_partitions}


class Member:
    """A consumer's side of the protocol: its epoch and the partitions it owns."""

    def __init__(self, c: MemoryClient, group: str, member_id: str, topics: list[str]) -> None:
        self.c, self.group, self.member_id, self.topics = c, group, member_id, topics
        self.epoch = 0
        self.owned: dict[uuid.UUID, set[int]] = {}

    async def beat(self, **extra: Any) -> Any:
        if self.epoch == 0:
            body = join_body(self.group, self.member_id, self.topics, **extra)
        else:
            body = hb_body(self.group, self.member_id, self.epoch, self.owned, **extra)
        answer = await self.c.request(HB, 1, body)
        assert answer.error_code == 0, (answer.error_code, answer.error_message)
        self.epoch = answer.member_epoch
        assigned = parts(answer)
        if assigned is not None:
            self.owned = {t: p for t, p in assigned.items() if p}  # revoke what is gone, take what is new
        return answer

    def count(self) -> int:
        return sum(len(p) for p in self.owned.values())


def assert_disjoint(members: list[Member]) -> None:
    seen: set[tuple[uuid.UUID, int]] = set()
    for m in members:
        for t, ps in m.owned.items():
            for p in ps:
                assert (t, p) not in seen, f"partition {p} owned twice"
                seen.add((t, p))


async def settle(members: list[Member], rounds: int = 6) -> None:
    for _ in range(rounds):
        await trio.sleep(1)  # group.consumer.assignment.interval.ms: a new target at most once a second
        for m in members:
            await m.beat()
            assert_disjoint(members)


async def test_join_gets_every_partition_then_a_second_member_gets_half_after_revocation(mc, autojump_clock) -> None:
    c = mc.connect()
    tid = await create(c, "t", 6)
    a = Member(c, "g", "member-a", ["t"])
    answer = await a.beat()
    # a new group's first member joins at epoch 2, as in Kafka 4.4
    assert (answer.member_epoch, answer.heartbeat_interval_ms, answer.member_id) == (2, 5000, "member-a")
    assert a.owned == {tid: set(range(6))}

    async def described() -> Any:
        answer = await c.request(DESCRIBE, 1, {"group_ids": ["g"], "include_authorized_operations": False})
        return answer.groups[0]

    b = Member(c, "g", "member-b", ["t"])
    answer = await b.beat()
    # the group moved to epoch 3, but a new target waits for the assignment interval: b is at epoch 2, with nothing
    assert answer.member_epoch == 2 and b.owned == {}
    g = await described()
    assert (g.group_state, g.group_epoch, g.assignment_epoch) == ("Assigning", 3, 2)
    await trio.sleep(1)
    answer = await b.beat()  # the target is computed; b's partitions are still a's: it gets none yet
    assert answer.member_epoch == 3 and answer.assignment is None and b.owned == {}
    answer = await a.beat()  # a must revoke 3 first, and stays at epoch 2 until it has
    assert answer.member_epoch == 2 and a.owned == {tid: {0, 1, 2}}
    assert_disjoint([a, b])
    g = await described()
    assert (g.group_state, g.group_epoch, g.assignment_epoch) == ("Reconciling", 3, 3)
    answer = await a.beat()  # it no longer owns them: epoch 3
    assert answer.member_epoch == 3
    await b.beat()
    assert b.owned == {tid: {3, 4, 5}}
    assert_disjoint([a, b])
    g = await described()
    assert (g.error_code, g.group_state, g.group_epoch, g.assignment_epoch, g.assignor_name) == (
        0, "Stable", 3, 3, "uniform",
    )  # fmt: skip
    assert sorted(m.member_id for m in g.members) == ["member-a", "member-b"]
    for m in g.members:
        assert m.member_type == 1 and m.member_epoch == 3
        assert [tp.topic_name for tp in m.assignment.topic_partitions] == ["t"]
        assert m.assignment == m.target_assignment


async def test_three_members_six_partitions_then_one_leaves(mc, autojump_clock) -> None:
    c = mc.connect()
    await create(c, "t", 6)
    members = [Member(c, "g", f"m{i}", ["t"]) for i in range(3)]
    await settle(members)
    assert [m.count() for m in members] == [2, 2, 2]
    answer = await c.request(HB, 1, hb_body("g", "m0", -1))
    assert (answer.error_code, answer.member_epoch, answer.member_id) == (0, -1, "m0")
    described = await c.request(DESCRIBE, 0, {"group_ids": ["g"], "include_authorized_operations": False})
    assert described.groups[0].group_state == "Assigning"  # the next heartbeat computes the target
    await settle(members[1:])
    assert [m.count() for m in members[1:]] == [3, 3]


async def test_errors(mc, autojump_clock) -> None:
    c = mc.connect()
    await create(c, "t", 2)

    async def error(body: dict[str, Any], version: int = 1) -> tuple[int, str | None]:
        answer = await c.request(HB, version, body)
        return answer.error_code, answer.error_message

    assert await error(hb_body("nope", "m", 1)) == (ErrorCode.GROUP_ID_NOT_FOUND, "Consumer group nope not found.")
    assert await error(join_body("g", "")) == (ErrorCode.INVALID_REQUEST, "MemberId can't be empty.")
    assert (await error(join_body("g", "m", rebalance_timeout_ms=-1)))[0] == ErrorCode.INVALID_REQUEST
    assert (await error(join_body("g", "m")))[1] == (
        "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining."
    )
    assert await error(hb_body("g", "m", -3)) == (ErrorCode.INVALID_REQUEST, "MemberEpoch is invalid.")
    assert await error(join_body("g", "m", ["t"], server_assignor="sticky")) == (
        ErrorCode.UNSUPPORTED_ASSIGNOR,
        "ServerAssignor sticky is not supported. Supported assignors: uniform, range.",
    )
    assert (await error(join_body("g", "m", subscribed_topic_regex="(")))[0] == ErrorCode.INVALID_REGULAR_EXPRESSION
    m = Member(c, "g", "m", ["t"])
    await m.beat()
    assert (await error(hb_body("g", "other", 1)))[0] == ErrorCode.UNKNOWN_MEMBER_ID
    assert (await error(hb_body("g", "m", 5)))[0] == ErrorCode.FENCED_MEMBER_EPOCH
    assert (await error(hb_body("g", "other", -1)))[0] == ErrorCode.UNKNOWN_MEMBER_ID


async def test_static_member_leaves_for_a_while_and_gets_its_partitions_back(mc, autojump_clock) -> None:
    c = mc.connect()
    await create(c, "t", 4)
    a = Member(c, "g", "a1", ["t"])
    b = Member(c, "g", "b", ["t"])
    await a.beat(instance_id="i-a")
    await b.beat()
    await settle([a, b])
    kept = a.owned
    # another process with the same instance id cannot join while a holds it
    answer = await c.request(HB, 1, join_body("g", "a2", ["t"], instance_id="i-a"))
    assert answer.error_code == ErrorCode.UNRELEASED_INSTANCE_ID
    answer = await c.request(HB, 1, hb_body("g", "a1", -2, instance_id="i-a"))
    assert (answer.error_code, answer.member_epoch) == (0, -2)
    await b.beat()
    assert b.count() == 2  # a's partitions are not moved while it is away
    a2 = Member(c, "g", "a2", ["t"])
    await a2.beat(instance_id="i-a")
    assert a2.owned == kept
    answer = await c.request(HB, 1, hb_body("g", "a1", a2.epoch, instance_id="i-a"))
    assert answer.error_code == ErrorCode.FENCED_INSTANCE_ID


async def test_session_timeout_fences_and_partitions_move(mc, autojump_clock) -> None:
    c = mc.connect()
    await create(c, "t", 4)
    a, b = Member(c, "g", "a", ["t"]), Member(c, "g", "b", ["t"])
    await settle([a, b])
    for _ in range(12):  # b keeps beating every 5 s; a is silent past the 45 s session timeout
        await trio.sleep(5)
        await b.beat()
    assert b.count() == 4
    answer = await c.request(HB, 1, hb_body("g", "a", a.epoch, a.owned))
    assert answer.error_code == ErrorCode.UNKNOWN_MEMBER_ID


async def test_a_member_that_does_not_revoke_is_fenced_after_its_rebalance_timeout(mc, autojump_clock) -> None:
    c = mc.connect()
    await create(c, "t", 2)
    a = Member(c, "g", "a", ["t"])
    await a.beat(rebalance_timeout_ms=10000)
    b = Member(c, "g", "b", ["t"])
    await b.beat()
    # a heartbeats but still reports both partitions as owned
    for _ in range(3):
        await trio.sleep(4)
        await c.request(HB, 1, hb_body("g", "a", a.epoch, {t: set(range(2)) for t in a.owned}))
        await b.beat()
    await trio.sleep(5)
    await b.beat()
    await b.beat()
    assert b.count() == 2


async def test_regex_subscription_picks_up_a_topic_created_later(mc, autojump_clock) -> None:
    c = mc.connect()
    await create(c, "orders-1", 1)
    await create(c, "other", 1)
    m = Member(c, "g", "m", [])
    m.topics = None  # type: ignore[assignment]
    await m.beat(subscribed_topic_regex="orders-.*")
    assert m.count() == 1
    tid = await create(c, "orders-2", 2)
    await trio.sleep(1)
    await m.beat()
    assert m.count() == 3 and m.owned[tid] == {0, 1}


async def test_range_assignor(mc, autojump_clock) -> None:
    c = mc.connect()
    tid = await create(c, "t", 5)
    members = [Member(c, "g", name, ["t"]) for name in ("b", "a")]
    for m in members:
        await m.beat(server_assignor="range")
    await settle(members)
    by_id = {m.member_id: m.owned.get(tid, set()) for m in members}
    assert by_id == {"a": {0, 1, 2}, "b": {3, 4}}


async def test_offsets_with_member_epochs(mc, autojump_clock) -> None:
    c = mc.connect()
    await create(c, "t", 1)
    m = Member(c, "g", "m", ["t"])
    await m.beat()

    def commit(epoch: int, member: str = "m") -> dict[str, Any]:
        partition = {"partition_index": 0, "committed_offset": 7, "committed_metadata": ""}
        return {"group_id": "g", "generation_id_or_member_epoch": epoch, "member_id": member,
                "topics": [{"name": "t", "partitions": [partition]}]}  # fmt: skip

    def error(answer: Any) -> int:
        return answer.topics[0].partitions[0].error_code

    assert error(await c.request(8, 9, commit(m.epoch + 1))) == ErrorCode.STALE_MEMBER_EPOCH
    assert error(await c.request(8, 9, commit(m.epoch, "x"))) == ErrorCode.UNKNOWN_MEMBER_ID
    assert error(await c.request(8, 8, commit(m.epoch))) == ErrorCode.UNSUPPORTED_VERSION
    assert error(await c.request(8, 9, commit(-1, ""))) == ErrorCode.UNKNOWN_MEMBER_ID  # the group has members
    assert error(await c.request(8, 9, commit(m.epoch))) == ErrorCode.NONE

    def fetch(member: str | None, epoch: int) -> dict[str, Any]:
        return {"groups": [{"group_id": "g", "member_id": member, "member_epoch": epoch,
                            "topics": [{"name": "t", "partition_indexes": [0]}]}]}  # fmt: skip

    answer = await c.request(9, 9, fetch("m", m.epoch))
    assert answer.groups[0].error_code == 0 and answer.groups[0].topics[0].partitions[0].committed_offset == 7
    assert (await c.request(9, 9, fetch("m", m.epoch - 1))).groups[0].error_code == ErrorCode.STALE_MEMBER_EPOCH
    assert (await c.request(9, 9, fetch("x", 1))).groups[0].error_code == ErrorCode.UNKNOWN_MEMBER_ID
    assert (await c.request(9, 9, fetch(None, -1))).groups[0].error_code == 0  # an admin's fetch


async def test_list_groups_by_type_and_classic_apis_on_a_consumer_group(mc, autojump_clock) -> None:
    c = mc.connect()
    await create(c, "t", 1)
    await Member(c, "cg", "m", ["t"]).beat()
    classic = {"group_id": "classic", "generation_id_or_member_epoch": -1, "member_id": "",
               "topics": [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 1,
                                                         "committed_metadata": ""}]}]}  # fmt: skip
    await c.request(8, 9, classic)

    async def listed(types: list[str]) -> set[tuple[str, str, str]]:
        answer = await c.request(16, 5, {"states_filter": [], "types_filter": types})
        return {(g.group_id, g.group_type, g.group_state) for g in answer.groups}

    assert await listed([]) == {("cg", "consumer", "Stable"), ("classic", "classic", "Empty")}
    assert await listed(["Consumer"]) == {("cg", "consumer", "Stable")}
    assert await listed(["classic"]) == {("classic", "classic", "Empty")}
    # a classic member of another protocol type cannot join a consumer group with members
    join = {"group_id": "cg", "session_timeout_ms": 10000, "rebalance_timeout_ms": 10000, "member_id": "",
            "protocol_type": "connect", "protocols": [{"name": "range", "metadata": b""}]}  # fmt: skip
    assert (await c.request(11, 5, join)).error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    # and a classic group is not a consumer group
    answer = await c.request(DESCRIBE, 0, {"group_ids": ["classic", "none"], "include_authorized_operations": False})
    assert [(g.error_code, g.error_message) for g in answer.groups] == [
        (ErrorCode.GROUP_ID_NOT_FOUND, "Group classic is not a consumer group."),
        (ErrorCode.GROUP_ID_NOT_FOUND, "Group none not found."),
    ]
    deleted = await c.request(42, 2, {"groups_names": ["cg"]})
    assert deleted.results[0].error_code == ErrorCode.NON_EMPTY_GROUP
    await c.request(HB, 1, hb_body("cg", "m", -1))
    deleted = await c.request(42, 2, {"groups_names": ["cg"]})
    assert deleted.results[0].error_code == ErrorCode.NONE
    assert await listed([]) == {("classic", "classic", "Empty")}


async def test_partitions_added_are_assigned(mc, autojump_clock) -> None:
    c = mc.connect()
    tid = await create(c, "t", 2)
    a, b = Member(c, "g", "a", ["t"]), Member(c, "g", "b", ["t"])
    await settle([a, b])
    assert [a.count(), b.count()] == [1, 1]
    grown = await c.request(37, 3, {"topics": [{"name": "t", "count": 4, "assignments": None}], "timeout_ms": 5000,
                                    "validate_only": False})  # fmt: skip
    assert grown.results[0].error_code == 0
    await settle([a, b])
    assert [a.count(), b.count()] == [2, 2]
    assert a.owned[tid] | b.owned[tid] == {0, 1, 2, 3}


async def test_the_group_survives_its_coordinator_s_crash_mid_reconciliation(autojump_clock) -> None:
    async with memory_cluster(3) as mc3:
        group = "g"
        coordinator = mc3.model.groups.coordinator_for(group).node_id
        other = next(b for b in range(3) if b != coordinator)

        async def find(c: MemoryClient) -> int:
            answer = await c.request(10, 4, {"key_type": 0, "coordinator_keys": [group]})
            return answer.coordinators[0].node_id

        c = mc3.connect(other)
        await c.request(19, 7, {"topics": [{"name": "t", "num_partitions": 4, "replication_factor": 3}],
                                "timeout_ms": 5000})  # fmt: skip
        conn = mc3.connect(coordinator)
        a, b = Member(conn, group, "a", ["t"]), Member(conn, group, "b", ["t"])
        await settle([a], rounds=1)
        await b.beat()  # b joins; a must now revoke half
        partition = ("t", 0)
        committed = {"group_id": group, "generation_id_or_member_epoch": a.epoch, "member_id": "a",
                     "topics": [{"name": partition[0], "partitions": [
                         {"partition_index": 0, "committed_offset": 42, "committed_metadata": ""}]}]}  # fmt: skip
        assert (await conn.request(8, 9, committed)).topics[0].partitions[0].error_code == 0
        await mc3.server.kill_broker(coordinator)
        for _ in range(200):  # until the controller fences the dead broker and the offsets partition moves
            if await find(c) != coordinator:
                break
            await trio.sleep(1)
        new = await find(c)
        assert new != coordinator
        conn = mc3.connect(new)
        a.c = b.c = conn
        await settle([a, b])  # the same members and epochs carry on at the new coordinator
        assert sorted([a.count(), b.count()]) == [2, 2]
        assert_disjoint([a, b])
        wanted = {"group_id": group, "member_id": "a", "member_epoch": a.epoch,
                  "topics": [{"name": "t", "partition_indexes": [0]}]}  # fmt: skip
        fetched = await conn.request(9, 9, {"groups": [wanted]})
        assert fetched.groups[0].topics[0].partitions[0].committed_offset == 42


async def test_an_empty_group_without_offsets_goes_at_the_periodic_cleanup(mc, autojump_clock) -> None:
    c = mc.connect()
    await create(c, "t", 1)
    for group in ("kept", "gone"):
        await Member(c, group, "m", ["t"]).beat()
    partition = {"partition_index": 0, "committed_offset": 1, "committed_metadata": ""}
    commit = {"group_id": "kept", "generation_id_or_member_epoch": 2, "member_id": "m",
              "topics": [{"name": "t", "partitions": [partition]}]}  # fmt: skip
    assert (await c.request(8, 9, commit)).topics[0].partitions[0].error_code == 0
    # a member of a consumer group cannot delete the offsets of a topic it subscribes to
    deleted = await c.request(47, 0, {"group_id": "kept", "topics": [{"name": "t", "partitions": [
        {"partition_index": 0}]}]})  # fmt: skip
    assert deleted.topics[0].partitions[0].error_code == ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
    for group in ("kept", "gone"):
        await c.request(HB, 1, hb_body(group, "m", -1))
    await trio.sleep(601)  # offsets.retention.check.interval.ms
    c = mc.connect()  # (the idle one was closed: connections.max.idle.ms)
    answer = await c.request(16, 5, {"states_filter": [], "types_filter": ["consumer"]})
    assert [(g.group_id, g.group_state) for g in answer.groups] == [("kept", "Empty")]
