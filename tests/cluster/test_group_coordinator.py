"""The group coordinator's timers, driven by Trio's MockClock (no sockets, no real waiting).

Each test builds a cluster model, starts the coordinator's timer task in a
nursery and plays members against it. With the autojump clock, time moves
only when every task is blocked, straight to the next deadline, so a test of
a 45-second session timeout or a one-minute offset retention runs in
milliseconds and asserts exact Kafka semantics (what happens just before and
just after a deadline), not sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from kstub.cluster.coordinator import GroupCoordinator
from kstub.cluster.groups import GroupState, JoinResult
from kstub.cluster.membership import JoinRequest, SyncRequest
from kstub.protocol import ErrorCode

from support.coordinator import (
    REBALANCE_MS,
    RETENTION,
    SESSION_MS,
    SUBSCRIPTION,
    join,
    join_in_background,
    make_cluster,
    running,
    stable_group,
)


@pytest.fixture
async def coordinator() -> AsyncIterator[GroupCoordinator]:
    """A running coordinator (tests also ask for autojump_clock: pytest-trio takes the clock from the test)."""
    async with running() as c:
        yield c


async def test_member_that_stops_heartbeating_is_removed_after_its_session_timeout(coordinator, autojump_clock):
    a, b = await stable_group(coordinator, 2)
    group = coordinator.groups["g"]
    gen = group.generation_id
    start = trio.current_time()
    # a keeps heartbeating, b goes silent
    while trio.current_time() - start < SESSION_MS / 1000 - 1:
        assert coordinator.heartbeat("g", gen, a, None) == ErrorCode.NONE
        await trio.sleep(3)
    assert b in group.members and group.state is GroupState.STABLE
    await trio.sleep(2)  # past b's session timeout
    assert b not in group.members
    assert group.state is GroupState.PREPARING_REBALANCE
    assert coordinator.heartbeat("g", gen, a, None) == ErrorCode.REBALANCE_IN_PROGRESS
    assert coordinator.heartbeat("g", gen, b, None) == ErrorCode.UNKNOWN_MEMBER_ID
    rejoined = await join(coordinator, a)
    assert (rejoined.error, rejoined.generation_id, rejoined.leader) == (ErrorCode.NONE, gen + 1, a)
    assert [m for m, _, _ in rejoined.members] == [a]


async def test_member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout(coordinator, autojump_clock):
    a, b = await stable_group(coordinator, 2)
    group = coordinator.groups["g"]
    gen = group.generation_id
    results: dict[str, JoinResult] = {}
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        await join_in_background(nursery, coordinator, results, "a", member_id=a)
        assert group.state is GroupState.PREPARING_REBALANCE
        # b heartbeats (so its session does not expire) but never rejoins
        while b in group.members:
            assert coordinator.heartbeat("g", gen, b, None) == ErrorCode.REBALANCE_IN_PROGRESS
            await trio.sleep(2)
        assert trio.current_time() - start == pytest.approx(REBALANCE_MS / 1000, abs=2)
    assert results["a"].generation_id == gen + 1 and [m for m, _, _ in results["a"].members] == [a]
    assert b not in group.members


async def test_initial_rebalance_delay_waits_and_extends_for_new_members(autojump_clock):
    async with running(**{"group.initial.rebalance.delay.ms": "3000"}) as c:
        results: dict[str, JoinResult] = {}
        async with trio.open_nursery() as nursery:
            start = trio.current_time()
            await join_in_background(nursery, c, results, "first")
            await trio.sleep(2)
            assert not results and c.groups["g"].state is GroupState.PREPARING_REBALANCE
            await join_in_background(nursery, c, results, "second")
            await trio.sleep(2)  # 4 s: the first delay is over, but a member arrived during it
            assert not results
        elapsed = trio.current_time() - start
    assert elapsed == pytest.approx(6, abs=0.01)  # 3 s, then 3 s more
    assert results["first"].generation_id == results["second"].generation_id == 1
    assert len(results["first"].members) + len(results["second"].members) == 2  # the leader got both


async def test_member_that_never_syncs_is_removed_after_the_rebalance_timeout(coordinator, autojump_clock):
    a = (await join(coordinator)).member_id
    results: dict[str, JoinResult] = {}
    async with trio.open_nursery() as nursery:
        await join_in_background(nursery, coordinator, results, "b")
        await join_in_background(nursery, coordinator, results, "a", member_id=a)
    b = results["b"].member_id
    group = coordinator.groups["g"]
    assert group.state is GroupState.COMPLETING_REBALANCE and group.leader_id == a
    await coordinator.sync(SyncRequest("g", 2, a, assignments={a: b"A", b: b"B"}))
    assert group.state is GroupState.STABLE
    start = trio.current_time()
    while b in group.members:  # both heartbeat, only b never sends SyncGroup
        assert coordinator.heartbeat("g", 2, a, None) == ErrorCode.NONE
        assert coordinator.heartbeat("g", 2, b, None) == ErrorCode.NONE
        await trio.sleep(1)
    assert trio.current_time() - start == pytest.approx(REBALANCE_MS / 1000, abs=1)
    assert group.state is GroupState.PREPARING_REBALANCE


async def test_a_member_id_handed_out_but_never_used_expires(coordinator, autojump_clock):
    first = await coordinator.join(
        JoinRequest("g", "", None, "c", "/h", SESSION_MS, REBALANCE_MS, "consumer", [("range", b"")])
    )
    assert first.error == ErrorCode.MEMBER_ID_REQUIRED and first.member_id.startswith("c-")
    assert first.member_id in coordinator.groups["g"].pending_members
    await trio.sleep(SESSION_MS / 1000 - 0.1)
    assert first.member_id in coordinator.groups["g"].pending_members
    await trio.sleep(0.2)
    assert "g" not in coordinator.groups or first.member_id not in coordinator.groups["g"].pending_members
    late = await join(coordinator, first.member_id)
    assert late.error == ErrorCode.UNKNOWN_MEMBER_ID


async def test_pending_member_delays_the_join_until_it_comes_back(coordinator, autojump_clock):
    a, b = await stable_group(coordinator, 2)
    group = coordinator.groups["g"]
    pending = await coordinator.join(
        JoinRequest("g", "", None, "c", "/h", SESSION_MS, REBALANCE_MS, "consumer", [("range", b"")])
    )
    results: dict[str, JoinResult] = {}
    async with trio.open_nursery() as nursery:
        await join_in_background(nursery, coordinator, results, "a", member_id=a)
        await join_in_background(nursery, coordinator, results, "b", member_id=b)
        assert not results, "a handed-out member id is awaited"
        await join_in_background(nursery, coordinator, results, "c", member_id=pending.member_id)
    assert {r.generation_id for r in results.values()} == {group.generation_id} and len(group.members) == 3


async def test_static_member_restart_within_session_timeout_keeps_the_generation(coordinator, autojump_clock):
    leader, follower = await stable_group(coordinator, 2, static=True)
    s = coordinator.groups["g"]
    gen = s.generation_id
    iid = s.members[follower].instance_id
    # the follower's process restarts: same instance id, empty member id, within the session timeout
    await trio.sleep(SESSION_MS / 1000 / 2)
    coordinator.heartbeat("g", gen, leader, s.members[leader].instance_id)
    back = await join(coordinator, instance_id=iid)
    assert back.error == ErrorCode.NONE and back.generation_id == gen and back.member_id != follower
    assert back.leader == leader and back.members == []
    assert s.state is GroupState.STABLE and s.generation_id == gen
    synced = await coordinator.sync(SyncRequest("g", gen, back.member_id, iid))
    assert synced.assignment == follower.encode()  # the old member's assignment carried over
    # the old process, if it is still alive, is fenced
    assert coordinator.heartbeat("g", gen, follower, iid) == ErrorCode.FENCED_INSTANCE_ID
    # a static member that stays away past its session timeout is removed like any other
    for _ in range(int(SESSION_MS / 1000 / 2) + 1):
        coordinator.heartbeat("g", gen, leader, s.members[leader].instance_id)
        await trio.sleep(2)
    assert back.member_id not in s.members and iid not in s.static_members
    assert s.state is GroupState.PREPARING_REBALANCE


async def test_static_leader_rejoining_is_told_another_leader_unless_skipping_assignment(coordinator, autojump_clock):
    leader, _ = await stable_group(coordinator, 2, static=True)
    s = coordinator.groups["g"]
    iid = s.members[leader].instance_id
    old = await join(coordinator, instance_id=iid)
    assert old.leader == leader and old.member_id != leader and old.members == []  # v0-8: acts as a follower
    newer = await coordinator.join(
        JoinRequest(
            "g",
            "",
            iid,
            "c",
            "/h",
            SESSION_MS,
            REBALANCE_MS,
            "consumer",
            [("range", SUBSCRIPTION)],
            supports_skip_assignment=True,
        )
    )
    # KIP-814 (v9): the returning leader gets the members, and is told not to reassign
    assert newer.skip_assignment and newer.leader == newer.member_id and len(newer.members) == 2
    assert s.state is GroupState.STABLE


def commit(c: GroupCoordinator, group: str, topic: str, partition: int, offset: int, retention_ms: int = -1) -> None:
    g = c.validate_commit(group, -1, "", None)
    c.store_offset(g, topic, partition, offset, 0, "", retention_ms)


async def test_offsets_of_an_empty_group_expire_after_the_retention(autojump_clock):
    async with running(**RETENTION) as coordinator:
        a, b = await stable_group(coordinator, 2)
        group = coordinator.groups["g"]
        g = coordinator.validate_commit("g", group.generation_id, a, None)
        coordinator.store_offset(g, "t", 0, 42, 0, "")
        coordinator.leave("g", [(a, None), (b, None)])
        assert group.state is GroupState.EMPTY
        await trio.sleep(59)
        assert coordinator.committed("g")[("t", 0)].offset == 42
        await trio.sleep(2.01)  # retention passed, and a check (every second) has run
        assert coordinator.committed("g") == {}
        assert "g" not in coordinator.groups  # empty, with no offsets: removed


async def test_simple_group_offsets_expire_per_commit_and_an_explicit_retention_wins(autojump_clock):
    async with running(**RETENTION) as coordinator:
        commit(coordinator, "simple", "t", 0, 10)
        await trio.sleep(30)
        commit(coordinator, "simple", "t", 1, 11)
        commit(coordinator, "simple", "t", 2, 12, retention_ms=5_000)  # OffsetCommit v2-4
        await trio.sleep(6.01)
        assert sorted(coordinator.committed("simple")) == [("t", 0), ("t", 1)]
        await trio.sleep(25)  # 61 s after the first commit
        assert sorted(coordinator.committed("simple")) == [("t", 1)]
        await trio.sleep(31)
        assert "simple" not in coordinator.groups


async def test_a_stable_group_keeps_offsets_of_topics_it_subscribes_to(autojump_clock):
    async with running(**RETENTION) as coordinator:
        a, b = await stable_group(coordinator, 2)  # subscribed to "t"
        group = coordinator.groups["g"]
        assert group.subscribed_topics == {"t"}
        g = coordinator.validate_commit("g", group.generation_id, a, None)
        coordinator.store_offset(g, "t", 0, 7, 0, "")
        coordinator.store_offset(g, "u", 0, 8, 0, "")
        for _ in range(35):
            coordinator.heartbeat("g", group.generation_id, a, None)
            coordinator.heartbeat("g", group.generation_id, b, None)
            await trio.sleep(2)
        assert group.state is GroupState.STABLE
        assert sorted(coordinator.committed("g")) == [("t", 0)]


async def test_deleting_a_topic_deletes_its_offsets(autojump_clock):
    async with running() as coordinator:
        commit(coordinator, "g1", "t", 0, 1)
        commit(coordinator, "g1", "u", 0, 2)
        commit(coordinator, "g2", "u", 0, 3)
        coordinator.cluster.delete_topic("u")
        assert sorted(coordinator.committed("g1")) == [("t", 0)]
        assert "g2" not in coordinator.groups


async def test_a_v1_commit_timestamp_dates_the_commit(autojump_clock):
    async with running(**RETENTION) as coordinator:
        g = coordinator.validate_commit("simple", -1, "", None)
        wall_now = coordinator.cluster.now_ms()
        coordinator.store_offset(g, "t", 0, 1, -1, "", commit_timestamp_ms=wall_now - 50_000)
        coordinator.store_offset(g, "t", 1, 1, -1, "")
        await trio.sleep(9)
        assert sorted(coordinator.committed("simple")) == [("t", 0), ("t", 1)]
        await trio.sleep(2.01)  # 61 s after the dated commit
        assert sorted(coordinator.committed("simple")) == [("t", 1)]


def test_groups_are_placed_as_kafka_places_them():
    from kstub.cluster.coordinator import java_string_hash

    # well-known values of Java's String.hashCode, wrap-around included
    words = ("", "test", "hello", "Aa", "BB", "polygenelubricants")
    assert [java_string_hash(s) for s in words] == [0, 3556498, 99162322, 2112, 2112, -(2**31)]
    cluster = make_cluster()
    # Kafka: Utils.abs(groupId.hashCode) % offsets.topic.num.partitions, where Utils.abs(MIN_VALUE) is 0
    assert cluster.groups.partition_for("test") == 3556498 % 50 == 48
    assert cluster.groups.partition_for("polygenelubricants") == 0
    # a negative hash (-286202439): its absolute value, not the hash with the sign bit masked (which gives 9)
    assert cluster.groups.partition_for("d081522d2-g1") == 286202439 % 50 == 39
    cluster.add_broker(1, "127.0.0.1", 9093)
    cluster.add_broker(2, "127.0.0.1", 9094)
    assert cluster.groups.coordinator_for("test").node_id == 48 % 3
    assert cluster.groups.coordinator_for("hello").node_id == 22 % 3
    cluster.brokers[0].alive = False  # its groups move to the next broker up; the others stay
    assert cluster.groups.coordinator_for("test").node_id == 1
    assert cluster.groups.coordinator_for("hello").node_id == 1
    cluster.brokers[1].alive = False
    assert cluster.groups.coordinator_for("test").node_id == 2


async def test_static_members_that_do_not_rejoin_stay_in_the_group(coordinator, autojump_clock):
    a, b = await stable_group(coordinator, 2, static=True)
    group = coordinator.groups["g"]
    gen = group.generation_id
    results: dict[str, JoinResult] = {}
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        await join_in_background(nursery, coordinator, results, "a", member_id=a, instance_id="instance-0")
        while group.state is GroupState.PREPARING_REBALANCE:  # b heartbeats but does not rejoin
            assert coordinator.heartbeat("g", gen, b, "instance-1") == ErrorCode.REBALANCE_IN_PROGRESS
            await trio.sleep(1)
        # at the rebalance timeout the generation completes without b, but b is still a member (and in the list)
        assert trio.current_time() - start == pytest.approx(REBALANCE_MS / 1000, abs=1)
    assert results["a"].generation_id == gen + 1 and {m for m, _, _ in results["a"].members} == {a, b}
    assert b in group.members and group.static_members["instance-1"] == b
