"""The group coordinator: every group of one cluster, its timers, and where each group lives.

`GroupCoordinator` owns the groups (kstub/cluster/groups.py: the data) and
composes three units, each holding one part of Kafka's rules:

- placement (kstub/cluster/placement.py): which broker coordinates a group,
  the leader of its ``__consumer_offsets`` partition;
- membership (kstub/cluster/membership.py): the classic group protocol,
  JoinGroup, SyncGroup, Heartbeat, LeaveGroup and rebalances;
- committed offsets (kstub/cluster/committed.py): commits, fetches, deletes
  and expiry.

The handlers talk to the coordinator only; it hands each request to its unit.

Timers are deadlines on `trio.current_time()` (so tests can use a MockClock):
member session expiry, the end of the join phase, the end of the sync phase,
and Kafka's periodic offset cleanup. `run` is the one background task that
fires them (kstub/server.py starts it): it sleeps until the nearest deadline,
or until a change that may bring a deadline forward wakes it to recompute.
Nothing here awaits in the middle of a change, so no locks are needed.

Coordinator moves. In Kafka a group lives on the leader of its offsets
partition; when that leadership moves (the broker shuts down, or its session
expires after a crash), the old leader unloads the group, answering the
JoinGroup and SyncGroup requests it holds with NOT_COORDINATOR, and the new
leader loads it from the log: the same members, generation and assignments,
each member's session timer started afresh, committed offsets intact. Members
find the new coordinator (FindCoordinator) and carry on with their member id
and generation; no rebalance is needed. kstub keeps each group in memory
across the move (the same state the log would give back), answers what the
old coordinator held with NOT_COORDINATOR, and restarts the group's timers.
While a crashed coordinator is not yet fenced, its groups' timers stand still,
as nobody runs them in Kafka either. One difference: a rebalance under way
carries on at the new coordinator, where Kafka would restart from the last
generation it stored; members rejoin in both cases. A returning broker does
not take its groups back: leadership returns to a partition's preferred
replica only by preferred leader election (`Controller.elect_preferred`, and
auto.leader.rebalance.enable's periodic check), as for any other partition.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import trio

from kstub.protocol import ErrorCode

from .committed import CommittedOffsets
from .consumer_group import ConsumerMembership, HeartbeatRequest, HeartbeatResult
from .consumer_group.membership import ConsumerGroupError
from .groups import (
    CommittedOffset,
    Group,
    GroupError,
    GroupState,
    GroupSummary,
    JoinResult,
    SyncResult,
    TopicPartition,
)
from .membership import ClassicMembership, JoinRequest, SyncRequest
from .placement import OffsetsPartitions, java_string_hash, kafka_abs

if TYPE_CHECKING:
    from .consumer_group import ConsumerGroup
    from .model import Broker, ClusterState

__all__ = ["GroupCoordinator", "JoinRequest", "SyncRequest", "java_string_hash"]

log = logging.getLogger("kstub.groups")


class GroupCoordinator:
    """Every group of one cluster, their timers, and their committed offsets."""

    def __init__(self, cluster: ClusterState, *, clock: Callable[[], float] = trio.current_time) -> None:
        self.cluster = cluster
        self.groups: dict[str, Group] = {}
        self.now = clock
        self._wake: trio.Event | None = None
        self._running = False
        #: who leads each __consumer_offsets partition: the coordinator of its groups
        self.offsets = OffsetsPartitions(cluster)
        self.membership = ClassicMembership(self)
        self.commits = CommittedOffsets(self)
        #: the consumer group protocol (KIP-848): kstub/cluster/consumer_group/
        self.consumer = ConsumerMembership(self)
        cluster.hooks.broker_stopped.append(self._broker_stopped)
        cluster.hooks.broker_started.append(self._broker_started)

    # --- the groups ---------------------------------------------------------------

    def create_group(self, group_id: str, now: float) -> Group:
        group = Group(group_id, GroupState.EMPTY, now)
        self.groups[group_id] = group
        return group

    def remove_group(self, group: Group, why: str) -> None:
        for member_id in list(group.pending_members):
            group.remove(member_id)
        if group.offsets:
            self.cluster.store.delete_group(group.group_id)
        group.offsets.clear()
        group.transition(GroupState.DEAD, self.now())
        del self.groups[group.group_id]
        log.info("group %s: removed (%s)", group.group_id, why)

    # --- which broker coordinates what --------------------------------------

    def partition_for(self, key: str) -> int:
        """The __consumer_offsets partition of a group, as Kafka computes it."""
        return kafka_abs(java_string_hash(key)) % self.cluster.config["offsets.topic.num.partitions"]

    def coordinator_for(self, key: str) -> Broker | None:
        """The broker coordinating `key`: the leader of its offsets partition (None: no broker is up)."""
        leader = self.offsets.leader(self.partition_for(key))
        return self.cluster.brokers[leader] if leader >= 0 else None

    def is_coordinator(self, key: str, node_id: int) -> bool:
        broker = self.coordinator_for(key)
        return broker is not None and broker.node_id == node_id

    def _serving(self, group: Group | ConsumerGroup) -> bool:
        """Whether a running broker coordinates `group`: a crashed, not yet fenced one runs no timers."""
        broker = self.coordinator_for(group.group_id)
        return broker is not None and broker.running

    # --- coordinator moves -----------------------------------------------------------
    #
    # In Kafka a group lives on the leader of its offsets partition; when that
    # leadership moves (the broker shuts down, or its session expires after a
    # crash), the old leader unloads the group, answering the JoinGroup and
    # SyncGroup requests it holds with NOT_COORDINATOR, and the new leader loads
    # it from the log: the same members, generation and assignments, each
    # member's session timer started afresh, committed offsets intact. Members
    # find the new coordinator (FindCoordinator) and carry on with their member
    # id and generation; no rebalance is needed. kstub keeps each group in memory
    # across the move (the same state the log would give back). While a crashed
    # coordinator is not yet fenced, its groups' timers stand still, as nobody
    # runs them in Kafka either. One difference: a rebalance under way carries on
    # at the new coordinator, where Kafka would restart from the last generation
    # it stored; members rejoin in both cases. A returning broker does not take
    # its groups back: leadership returns to a partition's preferred replica only
    # by preferred leader election, as for any other partition.

    def _broker_stopped(self, broker_id: int) -> None:
        self._move_groups(self.offsets.broker_left(broker_id), f"broker {broker_id} left")

    def _broker_started(self, broker_id: int) -> None:
        self._move_groups(self.offsets.broker_returned(broker_id), f"broker {broker_id} returned")

    def elect_preferred(self) -> int:
        """Preferred leader election of the offsets partitions: groups go back to their preferred
        coordinators where those are up. Returns how many partitions moved."""
        moved = self.offsets.elect_preferred()
        self._move_groups(moved, "preferred leader election")
        return len(moved)

    def rebalance_if_imbalanced(self, threshold: float) -> int:
        """The offsets partitions' share of the controller's auto leader rebalance."""
        moved = self.offsets.rebalance_if_imbalanced(threshold)
        self._move_groups(moved, "auto leader rebalance")
        return len(moved)

    def _move_groups(self, moved: dict[int, int], why: str) -> None:
        """The offsets partitions in `moved` have new leaders: their groups are unloaded and loaded there."""
        if not moved:
            return
        log.info("group coordinator: %d offsets partition(s) have a new leader (%s)", len(moved), why)
        for group in list(self.groups.values()):
            new = moved.get(self.partition_for(group.group_id))
            if new is not None:
                log.info("group %s: coordinator is now broker %d (%s)", group.group_id, new, why)
                self.membership.rebalance.unload(group)
                self.membership.rebalance.load(group, self.now())
        for cgroup in self.consumer.groups.values():
            if self.partition_for(cgroup.group_id) in moved:
                self.consumer.load(cgroup, self.now())
        self.poke()

    # --- the timer task ------------------------------------------------------

    async def run(self) -> None:
        """Fire expired timers until cancelled; one task per cluster (see kstub/server.py)."""
        if self._running:
            return
        self._running = True
        try:
            while True:
                now = self.now()
                self.tick(now)
                self._wake = trio.Event()
                with trio.move_on_at(self._next_deadline()):
                    await self._wake.wait()
        finally:
            self._running = False
            self._wake = None

    def poke(self) -> None:
        """A deadline may have moved earlier: make `run` recompute."""
        if self._wake is not None:
            self._wake.set()

    def _next_deadline(self) -> float:
        deadlines = [d for g in self.groups.values() if self._serving(g) for d in g.deadlines()]
        deadlines += [d for g in self.consumer.groups.values() if self._serving(g) for d in g.deadlines()]
        if self.consumer.next_cleanup is not None:
            deadlines.append(self.consumer.next_cleanup)
        cleanup = self.commits.next_deadline()
        if cleanup is not None:
            deadlines.append(cleanup)
        return min(deadlines, default=math.inf)

    def tick(self, now: float | None = None) -> None:
        """Fire every timer due at `now`."""
        now = self.now() if now is None else now
        for group in list(self.groups.values()):
            if self.groups.get(group.group_id) is group and self._serving(group):
                self.membership.rebalance.fire(group, now)
        for cgroup in list(self.consumer.groups.values()):
            if self._serving(cgroup):
                self.consumer.fire(cgroup, now)
        self.consumer.cleanup(now, lambda group_id: bool(self.committed(group_id)))
        self.consumer.persist()  # members fenced, groups converted or removed by the timers
        self.commits.tick(now)

    # --- membership (the classic protocol) -------------------------------------------

    async def join(self, req: JoinRequest) -> JoinResult:
        cgroup = self.consumer.groups.get(req.group_id)
        if cgroup is not None:
            if cgroup.members:
                # a classic member joins a live consumer group (a mixed group: consumer_group/classic.py)
                return self.consumer.classic.join(cgroup, req)
            del self.consumer.groups[req.group_id]  # an empty consumer group becomes a classic one
        return await self.membership.join(req)

    async def sync(self, req: SyncRequest) -> SyncResult:
        cgroup = self.consumer.groups.get(req.group_id)
        if cgroup is not None:
            return self.consumer.classic.sync(cgroup, req)
        return await self.membership.sync(req)

    def heartbeat(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None) -> ErrorCode:
        cgroup = self.consumer.groups.get(group_id)
        if cgroup is not None:
            return self.consumer.classic.heartbeat(cgroup, generation_id, member_id, instance_id)
        return self.membership.heartbeat(group_id, generation_id, member_id, instance_id)

    def leave(
        self, group_id: str, leaving: list[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[tuple[str, str | None, ErrorCode]]]:
        cgroup = self.consumer.groups.get(group_id)
        if cgroup is not None:
            return self.consumer.classic.leave(cgroup, leaving)
        return self.membership.leave(group_id, leaving)

    # --- describe, list, delete ---------------------------------------------

    def describe(self, group_id: str) -> GroupSummary:
        group = self.groups.get(group_id)
        if group is None or group.is_(GroupState.DEAD) or group_id in self.consumer.groups:
            # a consumer group is not a classic group: DescribeGroups does not know it (as in Kafka)
            return GroupSummary(group_id, GroupState.DEAD, "", "", [])
        protocol = (group.protocol_name or "") if group.is_(GroupState.STABLE) else ""
        return GroupSummary(group_id, group.state, group.protocol_type or "", protocol, list(group.members.values()))

    def list_groups(self, node_id: int, states: Iterable[GroupState] | None = None) -> list[Group]:
        wanted = None if states is None else set(states)
        return [
            g
            for g in self.groups.values()
            if self.is_coordinator(g.group_id, node_id) and (wanted is None or g.state in wanted)
        ]

    def delete_group(self, group_id: str) -> ErrorCode:
        group = self.groups.get(group_id)
        if group is None or group.is_(GroupState.DEAD):
            return ErrorCode.GROUP_ID_NOT_FOUND
        if not group.is_(GroupState.EMPTY):
            return ErrorCode.NON_EMPTY_GROUP
        self.remove_group(group, "deleted")
        return ErrorCode.NONE

    # --- committed offsets ------------------------------------------------------------

    def validate_commit(
        self, group_id: str, generation_id: int, member_id: str, instance_id: str | None, api_version: int = 9
    ) -> Group:
        cgroup = self.consumer.groups.get(group_id)
        if cgroup is not None:
            try:
                self.consumer.validate_commit(cgroup, member_id, generation_id, api_version)
            except ConsumerGroupError as exc:
                raise GroupError(exc.code) from None
            # a consumer group's offsets are kept by an empty classic Group of the same id
            return self.groups.get(group_id) or self.create_group(group_id, self.now())
        if api_version >= 9 and generation_id >= 0 and group_id not in self.groups:
            raise GroupError(ErrorCode.GROUP_ID_NOT_FOUND)  # v9+ (KIP-848); ILLEGAL_GENERATION before
        return self.commits.validate_commit(group_id, generation_id, member_id, instance_id)

    def store_offset(self, group: Group, topic: str, partition: int, offset: int, leader_epoch: int, metadata: str,
                     retention_ms: int = -1, commit_timestamp_ms: int = -1) -> None:  # fmt: skip
        self.commits.store_offset(
            group, topic, partition, offset, leader_epoch, metadata, retention_ms, commit_timestamp_ms
        )

    def restore_offsets(self, saved: dict[str, dict[TopicPartition, tuple[int, int, str | None]]]) -> None:
        self.commits.restore_offsets(saved)

    def committed(self, group_id: str) -> dict[TopicPartition, CommittedOffset]:
        return self.commits.committed(group_id)

    def delete_offsets(
        self, group_id: str, partitions: list[TopicPartition]
    ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        cgroup = self.consumer.groups.get(group_id)
        if cgroup is not None and cgroup.members:
            # a consumer group keeps the offsets of the topics its members subscribe to (Kafka's rule)
            subscribed = {t for m in cgroup.members.values() for t in self.consumer.member_topics(m)}
            errors = {tp: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC for tp in partitions if tp[0] in subscribed}
            if group_id not in self.groups:
                return ErrorCode.NONE, {**dict.fromkeys(partitions, ErrorCode.NONE), **errors}
            error, deleted = self.commits.delete_offsets(group_id, [tp for tp in partitions if tp not in errors])
            return error, {**deleted, **errors}
        return self.commits.delete_offsets(group_id, partitions)

    def expire_offsets(self, now: float | None = None) -> None:
        self.commits.expire_offsets(now)

    def on_topic_deleted(self, topic: str) -> None:
        self.commits.on_topic_deleted(topic)

    def reset(self) -> None:
        """Forget every group (ClusterState.reset); parked requests get COORDINATOR_NOT_AVAILABLE."""
        for group in self.groups.values():
            for member in group.members.values():
                member.answer_parked(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        self.groups.clear()
        self.consumer.reset()
        self.poke()

    # --- the consumer group protocol (KIP-848) ---------------------------------------

    def classic_is_live(self, group_id: str) -> bool:
        """Whether a classic group of this id has members (or a rebalance under way)."""
        group = self.groups.get(group_id)
        return group is not None and (bool(group.members) or not group.is_(GroupState.EMPTY, GroupState.DEAD))

    def consumer_heartbeat(self, req: HeartbeatRequest) -> HeartbeatResult:
        return self.consumer.heartbeat(req, self.now())

    def consumer_group(self, group_id: str) -> ConsumerGroup:
        """A consumer group, else ConsumerGroupError (GROUP_ID_NOT_FOUND)."""
        return self.consumer.group(group_id)

    def validate_fetch(self, group_id: str, member_id: str | None, member_epoch: int) -> ErrorCode:
        """OffsetFetch v9's member check (consumer groups only): the error code, NONE if accepted."""
        cgroup = self.consumer.groups.get(group_id)
        if cgroup is None:
            return ErrorCode.NONE
        try:
            self.consumer.validate_fetch(cgroup, member_id, member_epoch)
        except ConsumerGroupError as exc:
            return exc.code
        return ErrorCode.NONE
