"""Playing members against a `GroupCoordinator` directly (no sockets), under Trio's MockClock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from kstub.cluster.config import BrokerConfig
from kstub.cluster.coordinator import GroupCoordinator
from kstub.cluster.groups import GroupState, JoinResult
from kstub.cluster.membership import JoinRequest, SyncRequest
from kstub.cluster.model import ClusterState
from kstub.protocol.consumer_protocol import encode_subscription

SESSION_MS = 10_000
REBALANCE_MS = 30_000
SUBSCRIPTION = encode_subscription({"topics": ["t"]})
RETENTION = {"offsets.retention.minutes": "1", "offsets.retention.check.interval.ms": "1000"}


def make_cluster(**config: str) -> ClusterState:
    cluster = ClusterState(BrokerConfig({"group.initial.rebalance.delay.ms": "0", **config}))
    cluster.add_broker(0, "127.0.0.1", 9092)
    cluster.create_topic("t", 4)
    cluster.create_topic("u", 1)
    return cluster


@asynccontextmanager
async def running(**config: str) -> AsyncIterator[GroupCoordinator]:
    """A coordinator with its timer task running."""
    cluster = make_cluster(**config)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cluster.groups.run)
        yield cluster.groups
        nursery.cancel_scope.cancel()


async def join(
    c: GroupCoordinator,
    member_id: str = "",
    *,
    group: str = "g",
    instance_id: str | None = None,
    session_ms: int = SESSION_MS,
    rebalance_ms: int = REBALANCE_MS,
    protocols: list[tuple[str, bytes]] | None = None,
) -> JoinResult:
    return await c.join(
        JoinRequest(
            group,
            member_id,
            instance_id,
            "client",
            "/127.0.0.1",
            session_ms,
            rebalance_ms,
            "consumer",
            protocols or [("range", SUBSCRIPTION)],
            require_known_member_id=False,
        )
    )


async def join_in_background(nursery: trio.Nursery, c: GroupCoordinator, results: dict, key: str, **kw) -> None:
    """Start a JoinGroup and return once it is parked (or answered)."""

    async def run() -> None:
        results[key] = await join(c, **kw)

    nursery.start_soon(run)
    await trio.testing.wait_all_tasks_blocked()


async def stable_group(c: GroupCoordinator, n: int, group: str = "g", static: bool = False) -> list[str]:
    """n members, joined and synced, as real clients do it: a Stable group."""
    instance = (lambda i: f"instance-{i}") if static else (lambda i: None)
    first = await join(c, group=group, instance_id=instance(0))
    ids = [first.member_id]
    for i in range(1, n):
        # a newcomer's join parks the group in PreparingRebalance; everyone already in rejoins
        results: dict[str, JoinResult] = {}
        async with trio.open_nursery() as nursery:
            await join_in_background(nursery, c, results, "new", group=group, instance_id=instance(i))
            for k, member_id in enumerate(ids):
                await join_in_background(
                    nursery, c, results, str(k), group=group, member_id=member_id, instance_id=instance(k)
                )
        ids.append(results["new"].member_id)
    g = c.groups[group]
    assert g.state is GroupState.COMPLETING_REBALANCE and list(g.members) == ids
    async with trio.open_nursery() as nursery:
        for member_id in ids:
            if member_id != g.leader_id:
                nursery.start_soon(
                    c.sync, SyncRequest(group, g.generation_id, member_id, g.members[member_id].instance_id)
                )
        await trio.testing.wait_all_tasks_blocked()
        leader = g.members[g.leader_id]
        await c.sync(
            SyncRequest(
                group, g.generation_id, leader.member_id, leader.instance_id, assignments={m: m.encode() for m in ids}
            )
        )
    assert g.state is GroupState.STABLE
    return ids
