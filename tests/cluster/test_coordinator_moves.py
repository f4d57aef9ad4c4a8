"""Group coordinators move with their __consumer_offsets partition's leadership.

The controller is driven directly (a broker leaves, returns, preferred leader
election) and the group coordinator's timers run on Trio's MockClock, so each
rule is checked at its exact deadline: what the old coordinator held is
answered NOT_COORDINATOR, members keep their ids and generation, sessions
start afresh at the new coordinator, a crashed coordinator's timers stand
still until it is fenced, and a returning broker gets its groups back only by
preferred leader election.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio.testing

from kstub.cluster.config import BrokerConfig
from kstub.cluster.coordinator import GroupCoordinator
from kstub.cluster.groups import GroupState, JoinResult
from kstub.cluster.membership import SyncRequest
from kstub.cluster.model import ClusterState
from kstub.protocol import ErrorCode

from support.coordinator import SESSION_MS, join, join_in_background, stable_group

#: "g" hashes to offsets partition 3 (Java hashCode 103 % 50), whose preferred leader is broker 3 % 3 = 0
GROUP = "g"


def three_brokers() -> ClusterState:
    cluster = ClusterState(BrokerConfig({"group.initial.rebalance.delay.ms": "0"}))
    for i in range(3):
        cluster.add_broker(i, "127.0.0.1", 9092 + i)
    cluster.create_topic("t", 4, 3)
    return cluster


@asynccontextmanager
async def running_cluster() -> AsyncIterator[ClusterState]:
    cluster = three_brokers()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cluster.groups.run)
        yield cluster
        nursery.cancel_scope.cancel()


def coordinator_of(c: GroupCoordinator, group: str = GROUP) -> int:
    broker = c.coordinator_for(group)
    return -1 if broker is None else broker.node_id


def test_the_coordinator_follows_offsets_partition_leadership_and_comes_back_by_preferred_election():
    cluster = three_brokers()
    c, controller = cluster.groups, cluster.controller
    assert c.partition_for(GROUP) == 3 and c.offsets.replicas(3) == [0, 1, 2]
    assert coordinator_of(c) == 0
    controller.broker_left(0, "controlled shutdown")
    assert coordinator_of(c) == 1
    controller.broker_left(1, "controlled shutdown")
    assert coordinator_of(c) == 2
    # Returning brokers do not take the group back: 2 still leads the partition.
    controller.broker_returned(0)
    controller.broker_returned(1)
    assert coordinator_of(c) == 2
    # Preferred leader election (of everything) does, as for any partition.
    controller.elect_preferred()
    assert coordinator_of(c) == 0
    # Other partitions were placed on their own preferred brokers from the start and moved back too.
    assert all(c.offsets.leader(k) == c.offsets.replicas(k)[0] for k in range(50))


def test_every_broker_down_leaves_no_coordinator_until_one_returns():
    cluster = three_brokers()
    for b in (0, 1, 2):
        cluster.controller.broker_left(b, "controlled shutdown")
    assert cluster.groups.coordinator_for(GROUP) is None
    cluster.controller.broker_returned(2)
    assert coordinator_of(cluster.groups) == 2  # the only broker up leads every offsets partition
    assert {cluster.groups.offsets.leader(k) for k in range(50)} == {2}


def test_auto_leader_rebalance_moves_groups_back_past_the_imbalance_threshold():
    cluster = three_brokers()
    c = cluster.groups
    cluster.controller.broker_left(0, "controlled shutdown")
    cluster.controller.broker_returned(0)
    assert coordinator_of(c) == 1
    # broker 0 leads none of its preferred offsets partitions: 100% > 10%
    cluster.controller.rebalance_if_imbalanced()
    assert coordinator_of(c) == 0
    assert c.rebalance_if_imbalanced(0.1) == 0


async def test_members_carry_on_at_the_new_coordinator_with_their_ids_and_generation(autojump_clock):
    async with running_cluster() as cluster:
        c = cluster.groups
        a, b = await stable_group(c, 2)
        group = c.groups[GROUP]
        gen = group.generation_id
        c.store_offset(group, "t", 0, 42, 0, "meta")
        await trio.sleep(SESSION_MS / 1000 - 1)  # both sessions nearly over
        cluster.controller.broker_left(0, "controlled shutdown")
        assert coordinator_of(c) == 1
        # The new coordinator "loaded" the group: same members, generation and offsets, fresh sessions.
        assert group.state is GroupState.STABLE and list(group.members) == [a, b] and group.generation_id == gen
        assert c.committed(GROUP)[("t", 0)].offset == 42
        await trio.sleep(SESSION_MS / 1000 - 1)
        assert c.heartbeat(GROUP, gen, a, None) == ErrorCode.NONE
        assert c.heartbeat(GROUP, gen, b, None) == ErrorCode.NONE
        assert group.state is GroupState.STABLE


async def test_a_move_answers_parked_joins_not_coordinator_and_the_rebalance_completes_after(autojump_clock):
    async with running_cluster() as cluster:
        c = cluster.groups
        a, b = await stable_group(c, 2)
        group = c.groups[GROUP]
        gen = group.generation_id
        results: dict[str, JoinResult] = {}
        async with trio.open_nursery() as nursery:
            await join_in_background(nursery, c, results, "a", member_id=a)
            assert group.state is GroupState.PREPARING_REBALANCE
            cluster.controller.broker_left(0, "controlled shutdown")
        assert results["a"].error == ErrorCode.NOT_COORDINATOR
        # Both members rejoin at the new coordinator with their member ids: the rebalance completes.
        async with trio.open_nursery() as nursery:
            await join_in_background(nursery, c, results, "a", member_id=a)
            await join_in_background(nursery, c, results, "b", member_id=b)
        assert [results[k].error for k in "ab"] == [ErrorCode.NONE] * 2
        assert results["a"].generation_id == gen + 1 and group.state is GroupState.COMPLETING_REBALANCE


async def test_a_move_answers_parked_syncs_not_coordinator(autojump_clock):
    async with running_cluster() as cluster:
        c = cluster.groups
        a, b = await stable_group(c, 2)
        group = c.groups[GROUP]
        results: dict[str, JoinResult] = {}
        async with trio.open_nursery() as nursery:  # a rebalance: both rejoin, nobody has synced yet
            await join_in_background(nursery, c, results, "a", member_id=a)
            await join_in_background(nursery, c, results, "b", member_id=b)
        follower = b if group.leader_id == a else a
        assert group.state is GroupState.COMPLETING_REBALANCE
        synced = {}

        async def sync() -> None:
            synced["r"] = await c.sync(SyncRequest(GROUP, group.generation_id, follower))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sync)
            await trio.testing.wait_all_tasks_blocked()
            assert "r" not in synced
            cluster.controller.broker_left(0, "controlled shutdown")
        assert synced["r"].error == ErrorCode.NOT_COORDINATOR


async def test_a_crashed_coordinator_runs_no_timers_until_it_is_fenced(autojump_clock):
    async with running_cluster() as cluster:
        c = cluster.groups
        a, b = await stable_group(c, 2)
        group = c.groups[GROUP]
        # Killed: the process is gone (not running) but the controller has not fenced it yet.
        cluster.brokers[0].running = False
        await trio.sleep(10 * SESSION_MS / 1000)
        assert list(group.members) == [a, b] and group.state is GroupState.STABLE
        assert coordinator_of(c) == 0  # FindCoordinator still names it, as Kafka's Metadata does
        # Its session expires: broker 1 loads the group, and the sessions start now.
        cluster.controller.broker_left(0, "session expired")
        assert coordinator_of(c) == 1
        fenced = trio.current_time()
        await trio.sleep(SESSION_MS / 1000 - 0.5)
        assert list(group.members) == [a, b]
        await trio.sleep(1)  # nobody heartbeated: both sessions are over at the new coordinator
        assert trio.current_time() - fenced > SESSION_MS / 1000
        assert not group.members and group.state is GroupState.EMPTY


async def test_the_join_phase_restarts_at_the_new_coordinator(autojump_clock):
    async with running_cluster() as cluster:
        c = cluster.groups
        a, b = await stable_group(c, 2)
        group = c.groups[GROUP]
        results: dict[str, JoinResult] = {}
        async with trio.open_nursery() as nursery:
            await join_in_background(nursery, c, results, "a", member_id=a)
            deadline = group.join_deadline
            await trio.sleep(SESSION_MS / 1000 - 1)
            cluster.controller.broker_left(0, "controlled shutdown")
        assert results["a"].error == ErrorCode.NOT_COORDINATOR
        assert group.join_deadline == trio.current_time() + group.rebalance_timeout > deadline
        # a rejoins, b never does: b is dropped a whole rebalance timeout after the move, not before
        moved = trio.current_time()
        async with trio.open_nursery() as nursery:
            await join_in_background(nursery, c, results, "a", member_id=a)
            while b in group.members:
                assert c.heartbeat(GROUP, group.generation_id, b, None) == ErrorCode.REBALANCE_IN_PROGRESS
                await trio.sleep(2)
        assert trio.current_time() - moved >= group.rebalance_timeout - 2
        assert results["a"].error == ErrorCode.NONE and list(group.members) == [a]
        rejoined = await join(c, a)
        assert rejoined.error == ErrorCode.NONE
