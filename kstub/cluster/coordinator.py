"""The group coordinator: Kafka's classic group protocol over the groups of one cluster.

Which broker answers for a group is the leader of its __consumer_offsets
partition (`GroupCoordinator.coordinator_for`: Kafka's hash of the group id
onto offsets.topic.num.partitions); the handlers refuse requests sent
elsewhere with NOT_COORDINATOR, so clients really talk to "their" broker. The
offsets topic is not a real topic here, but its leaderships move as the
controller moves a real topic's (see `OffsetsPartitions` and "Coordinator
moves" below).

The rules follow Kafka's GroupCoordinator: the JoinGroup MEMBER_ID_REQUIRED
handshake (v4+), waiting for every known member to rejoin within the
rebalance timeout, protocol selection by vote, the leader getting the member
list, SyncGroup handing each member only its own assignment, generations,
static membership (group.instance.id), session timeouts, the initial
rebalance delay of a new group (group.initial.rebalance.delay.ms), pending
sync expiry, offset commit validation and offset expiry.

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
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import trio

from kstub.protocol import ErrorCode
from kstub.protocol.consumer_protocol import PROTOCOL_TYPE as CONSUMER_PROTOCOL

from .groups import (
    CommittedOffset,
    Group,
    GroupError,
    GroupState,
    GroupSummary,
    JoinResult,
    Member,
    SyncResult,
    TopicPartition,
    _Reply,
)

if TYPE_CHECKING:
    from .model import Broker, Cluster

log = logging.getLogger("kstub.groups")


def java_string_hash(s: str) -> int:
    """Java's String.hashCode (over UTF-16 code units), as a signed 32-bit int."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


class OffsetsPartitions:
    """The leaders of the __consumer_offsets partitions, elected as the controller elects any leader.

    Partition k's replicas are every broker, in node id order starting at
    k % brokers (the first is its preferred leader; the offsets topic has no
    log here, so every replica is always in sync). When its leader leaves,
    the first live replica takes over; a returning broker leads only
    partitions left without a leader; preferred leaders come back by
    preferred leader election. Methods that change leaders return the moves
    as {partition: new leader}.
    """

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._leaders: dict[int, int] = {}
        self._brokers: tuple[int, ...] = ()

    def replicas(self, partition: int) -> list[int]:
        ids = sorted(self.cluster.brokers)
        start = partition % len(ids) if ids else 0
        return ids[start:] + ids[:start]

    def _alive(self, broker_id: int) -> bool:
        broker = self.cluster.brokers.get(broker_id)
        return broker is not None and broker.alive

    def _first_live(self, partition: int, also: int | None = None) -> int:
        return next((r for r in self.replicas(partition) if r == also or self._alive(r)), -1)

    def leaders(self, also_alive: int | None = None) -> dict[int, int]:
        """Every partition's leader; elected afresh when the set of brokers changes (at startup)."""
        ids = tuple(sorted(self.cluster.brokers))
        if ids != self._brokers:
            self._brokers = ids
            count = self.cluster.config["offsets.topic.num.partitions"]
            self._leaders = {k: self._first_live(k, also_alive) for k in range(count)}
        return self._leaders

    def leader(self, partition: int) -> int:
        """The leader of `partition` (-1: none)."""
        leaders = self.leaders()
        leader = leaders.get(partition, -1)
        if leader < 0 or not self._alive(leader):
            # a broker marked down behind the controller's back (unit tests): elect as it would
            leader = leaders[partition] = self._first_live(partition)
        return leader

    def broker_left(self, broker_id: int) -> dict[int, int]:
        leaders = self.leaders(also_alive=broker_id)
        moved = {k: self._first_live(k) for k, leader in leaders.items() if leader == broker_id}
        leaders.update(moved)
        return moved

    def broker_returned(self, broker_id: int) -> dict[int, int]:
        """Leaderless partitions (every broker was down) take the first broker back: the offsets
        live in the cluster model, so no replica can be out of sync."""
        leaders = self.leaders()
        moved = {k: broker_id for k, leader in leaders.items() if leader < 0}
        leaders.update(moved)
        return moved

    def elect_preferred(self, partitions: Iterable[int] | None = None) -> dict[int, int]:
        leaders = self.leaders()
        moved = {}
        for k in leaders if partitions is None else partitions:
            preferred = self.replicas(k)[0]
            if leaders[k] != preferred and self._alive(preferred):
                moved[k] = preferred
        leaders.update(moved)
        return moved

    def rebalance_if_imbalanced(self, threshold: float) -> dict[int, int]:
        """Kafka's auto leader rebalance over the offsets partitions (see Controller.rebalance_if_imbalanced)."""
        by_preferred: dict[int, list[int]] = {}
        for k in self.leaders():
            by_preferred.setdefault(self.replicas(k)[0], []).append(k)
        moved: dict[int, int] = {}
        for partitions in by_preferred.values():
            not_led = [k for k in partitions if self._leaders[k] != self.replicas(k)[0]]
            if not_led and len(not_led) / len(partitions) > threshold:
                moved |= self.elect_preferred(not_led)
        return moved


class GroupCoordinator:
    """Every group of one cluster, their timers, and their committed offsets."""

    def __init__(self, cluster: Cluster, *, clock: Callable[[], float] = trio.current_time) -> None:
        self.cluster = cluster
        self.groups: dict[str, Group] = {}
        self._now = clock
        self._wake: trio.Event | None = None
        self._next_cleanup: float | None = None
        self._running = False
        #: who leads each __consumer_offsets partition: the coordinator of its groups
        self.offsets = OffsetsPartitions(cluster)
        cluster.hooks.broker_stopped.append(self._broker_stopped)
        cluster.hooks.broker_started.append(self._broker_started)

    # --- configuration ------------------------------------------------------

    def _config_ms(self, name: str) -> float:
        return self.cluster.config[name] / 1000

    # --- which broker coordinates what --------------------------------------

    def partition_for(self, key: str) -> int:
        """The __consumer_offsets partition of a group, as Kafka computes it."""
        return (java_string_hash(key) & 0x7FFFFFFF) % self.cluster.config["offsets.topic.num.partitions"]

    def coordinator_for(self, key: str) -> Broker | None:
        """The broker coordinating `key`: the leader of its offsets partition (None: no broker is up)."""
        leader = self.offsets.leader(self.partition_for(key))
        return self.cluster.brokers[leader] if leader >= 0 else None

    def is_coordinator(self, key: str, node_id: int) -> bool:
        broker = self.coordinator_for(key)
        return broker is not None and broker.node_id == node_id

    def _serving(self, group: Group) -> bool:
        """Whether a running broker coordinates `group`: a crashed, not yet fenced one runs no timers."""
        broker = self.coordinator_for(group.group_id)
        return broker is not None and broker.running

    # --- coordinator moves (see the module docstring) ----------------------------

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
                self._unload(group)
                self._load(group, self._now())
        self._poke()

    @staticmethod
    def _unload(group: Group) -> None:
        """Kafka's onGroupUnloaded: what the old coordinator holds is answered NOT_COORDINATOR."""
        for member in group.members.values():
            if member.join_reply is not None:
                member.join_reply.set(JoinResult(ErrorCode.NOT_COORDINATOR, member.member_id))
                member.join_reply = None
            if member.sync_reply is not None:
                member.sync_reply.set(SyncResult(ErrorCode.NOT_COORDINATOR))
                member.sync_reply = None

    @staticmethod
    def _load(group: Group, now: float) -> None:
        """Kafka's onGroupLoaded: every member's session starts afresh; so do the rebalance's deadlines."""
        for member in group.members.values():
            member.last_heartbeat = now
        if group.join_deadline is not None:
            group.join_deadline = now + (group.initial_delay[0] if group.initial_delay else group.rebalance_timeout)
        if group.sync_deadline is not None:
            group.sync_deadline = now + group.rebalance_timeout

    # --- the timer task ------------------------------------------------------

    async def run(self) -> None:
        """Fire expired timers until cancelled; one task per cluster (see kstub/server.py)."""
        if self._running:
            return
        self._running = True
        try:
            while True:
                now = self._now()
                self.tick(now)
                self._wake = trio.Event()
                with trio.move_on_at(self._next_deadline()):
                    await self._wake.wait()
        finally:
            self._running = False
            self._wake = None

    def _poke(self) -> None:
        """A deadline may have moved earlier: make `run` recompute."""
        if self._wake is not None:
            self._wake.set()

    def _next_deadline(self) -> float:
        deadlines = [d for g in self.groups.values() if self._serving(g) for d in g.deadlines()]
        if self._next_cleanup is not None:
            deadlines.append(self._next_cleanup)
        return min(deadlines, default=math.inf)

    def tick(self, now: float | None = None) -> None:
        """Fire every timer due at `now`."""
        now = self._now() if now is None else now
        for group in list(self.groups.values()):
            if self.groups.get(group.group_id) is group and self._serving(group):
                self._fire(group, now)
        interval = self._config_ms("offsets.retention.check.interval.ms")
        if self._next_cleanup is None:
            self._next_cleanup = now + interval
        elif now >= self._next_cleanup:
            self.expire_offsets(now)
            self._next_cleanup = now + interval

    def _fire(self, group: Group, now: float) -> None:
        for member_id, expiry in list(group.pending_members.items()):
            if expiry <= now:
                log.info("group %s: pending member %s expired", group.group_id, member_id)
                del group.pending_members[member_id]
                self._try_complete_join(group, now)
        for member in list(group.members.values()):
            expiry = member.expiry()
            if expiry is not None and expiry <= now and group.members.get(member.member_id) is member:
                log.info("group %s: member %s missed its session timeout", group.group_id, member.member_id)
                self._remove_member_and_update(group, member, now)
        if group.is_(GroupState.PREPARING_REBALANCE) and group.join_deadline is not None and group.join_deadline <= now:
            self._join_phase_expired(group, now)
        if (
            group.is_(GroupState.COMPLETING_REBALANCE, GroupState.STABLE)
            and group.sync_deadline is not None
            and group.sync_deadline <= now
        ):
            self._sync_phase_expired(group, now)

    # --- JoinGroup -----------------------------------------------------------

    async def join(
        self,
        group_id: str,
        member_id: str,
        instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        *,
        require_known_member_id: bool,
        supports_skip_assignment: bool = False,
    ) -> JoinResult:
        """Join (or rejoin) a group; waits until the join phase ends (Kafka's handleJoinGroup)."""
        reply = self._join(
            group_id,
            member_id,
            instance_id,
            client_id,
            client_host,
            session_timeout_ms,
            rebalance_timeout_ms,
            protocol_type,
            protocols,
            require_known_member_id,
            supports_skip_assignment,
        )
        self._poke()
        return await reply.wait()

    def _join(
        self,
        group_id: str,
        member_id: str,
        instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        require_known_member_id: bool,
        supports_skip_assignment: bool,
    ) -> _Reply[JoinResult]:
        now = self._now()
        config = self.cluster.config
        if not config["group.min.session.timeout.ms"] <= session_timeout_ms <= config["group.max.session.timeout.ms"]:
            return _Reply.ready(JoinResult(ErrorCode.INVALID_SESSION_TIMEOUT, member_id))
        group = self.groups.get(group_id)
        if group is None:
            if member_id:
                return _Reply.ready(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
            group = self._create_group(group_id, now)
        if group.is_(GroupState.DEAD):
            return _Reply.ready(JoinResult(ErrorCode.COORDINATOR_NOT_AVAILABLE, member_id))
        if not self._accepts_joining_member(group, member_id):
            known = group.members.get(member_id)
            if known is not None:
                self._remove_member_and_update(group, known, now)
            return _Reply.ready(JoinResult(ErrorCode.GROUP_MAX_SIZE_REACHED, ""))
        names = [name for name, _ in protocols]
        if not group.supports_protocols(protocol_type, names):
            return _Reply.ready(JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id))
        session = session_timeout_ms / 1000
        rebalance = rebalance_timeout_ms / 1000
        reply: _Reply[JoinResult] = _Reply()

        if not member_id:
            new_id = f"{instance_id if instance_id is not None else client_id}-{uuid.uuid4()}"
            if instance_id is not None and instance_id in group.static_members:
                self._replace_static_member(
                    group,
                    group.static_members[instance_id],
                    new_id,
                    protocols,
                    session,
                    rebalance,
                    reply,
                    now,
                    supports_skip_assignment,
                )
            elif instance_id is None and require_known_member_id:
                # KIP-394: hand out the id, and wait (one session timeout) for the member to come back with it.
                group.pending_members[new_id] = now + session
                return _Reply.ready(JoinResult(ErrorCode.MEMBER_ID_REQUIRED, new_id))
            else:
                member = Member(
                    new_id, instance_id, client_id, client_host, session, rebalance, protocol_type, protocols, now
                )
                self._add_member_and_rebalance(group, member, reply, now)
        elif member_id in group.pending_members:
            member = Member(
                member_id, instance_id, client_id, client_host, session, rebalance, protocol_type, protocols, now
            )
            self._add_member_and_rebalance(group, member, reply, now)
        else:
            error = group.validate_member(member_id, instance_id)
            if error is not None:
                return _Reply.ready(JoinResult(error, member_id))
            member = group.members[member_id]
            if group.is_(GroupState.PREPARING_REBALANCE):
                self._update_member_and_rebalance(group, member, protocols, session, rebalance, reply, now)
            elif group.is_(GroupState.COMPLETING_REBALANCE):
                if member.matches(protocols):
                    # a lost JoinGroup answer: the member asks again, same metadata
                    reply.set(group.current_join_result(member))
                else:
                    self._update_member_and_rebalance(group, member, protocols, session, rebalance, reply, now)
            elif group.is_(GroupState.STABLE):
                if member.member_id == group.leader_id or not member.matches(protocols):
                    self._update_member_and_rebalance(group, member, protocols, session, rebalance, reply, now)
                else:
                    reply.set(group.current_join_result(member))
            else:
                reply.set(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
        self._try_complete_join(group, now)
        return reply

    def _accepts_joining_member(self, group: Group, member_id: str) -> bool:
        """Kafka's acceptJoiningMember (group.max.size)."""
        max_size = self.cluster.config["group.max.size"]
        if group.is_(GroupState.EMPTY, GroupState.DEAD):
            return True
        if group.is_(GroupState.PREPARING_REBALANCE):
            member = group.members.get(member_id)
            awaiting = sum(1 for m in group.members.values() if m.join_reply is not None)
            return (member is not None and member.join_reply is not None) or awaiting < max_size
        return member_id in group.members or len(group.members) < max_size

    def _add_member_and_rebalance(self, group: Group, member: Member, reply: _Reply[JoinResult], now: float) -> None:
        member.is_new = True
        member.join_reply = reply
        if group.is_(GroupState.PREPARING_REBALANCE) and group.generation_id == 0:
            group.new_member_added = True  # the initial delay may wait once more
        group.add(member)
        member.last_heartbeat = now
        log.info("group %s: member %s joins (instance %s)", group.group_id, member.member_id, member.instance_id)
        self._maybe_prepare_rebalance(group, now)

    def _update_member_and_rebalance(
        self,
        group: Group,
        member: Member,
        protocols: list[tuple[str, bytes]],
        session: float,
        rebalance: float,
        reply: _Reply[JoinResult],
        now: float,
    ) -> None:
        self._update_member(member, protocols, session, rebalance, reply)
        self._maybe_prepare_rebalance(group, now)

    @staticmethod
    def _update_member(
        member: Member,
        protocols: list[tuple[str, bytes]],
        session: float,
        rebalance: float,
        reply: _Reply[JoinResult],
    ) -> None:
        if member.join_reply is not None:
            # a JoinGroup sent again while the first is parked: the newer one wins
            member.join_reply.set(JoinResult(ErrorCode.REBALANCE_IN_PROGRESS, member.member_id))
        member.protocols = protocols
        member.session_timeout = session
        member.rebalance_timeout = rebalance
        member.join_reply = reply

    def _replace_static_member(
        self,
        group: Group,
        old_id: str,
        new_id: str,
        protocols: list[tuple[str, bytes]],
        session: float,
        rebalance: float,
        reply: _Reply[JoinResult],
        now: float,
        supports_skip_assignment: bool,
    ) -> None:
        """A static member came back with a new member id (Kafka's updateStaticMemberAndRebalance)."""
        old_leader = group.leader_id
        member = group.members.pop(old_id)
        # fence whoever still waits under the old id
        if member.join_reply is not None:
            member.join_reply.set(JoinResult(ErrorCode.FENCED_INSTANCE_ID, old_id))
            member.join_reply = None
        if member.sync_reply is not None:
            member.sync_reply.set(SyncResult(ErrorCode.FENCED_INSTANCE_ID))
            member.sync_reply = None
        member.member_id = new_id
        group.members[new_id] = member
        if group.leader_id == old_id:
            group.leader_id = new_id
        if old_id in group.pending_sync:
            group.pending_sync.discard(old_id)
            group.pending_sync.add(new_id)
        assert member.instance_id is not None
        group.static_members[member.instance_id] = new_id
        member.last_heartbeat = now
        self._update_member(member, protocols, session, rebalance, reply)
        log.info("group %s: static member %s replaced %s", group.group_id, new_id, old_id)

        if group.is_(GroupState.STABLE):
            if group.select_protocol() == group.protocol_name:
                # no rebalance: the member gets the current generation back
                member.join_reply = None
                if supports_skip_assignment and group.leader_id == new_id:
                    # KIP-814: the leader learns the members but must not reassign
                    result = group.current_join_result(member)
                    result.skip_assignment = True
                else:
                    result = group.current_join_result(member)
                    result.members = []
                    result.leader = old_leader or ""  # keeps a returning leader from assigning
                reply.set(result)
            else:
                self._maybe_prepare_rebalance(group, now)
        elif group.is_(GroupState.COMPLETING_REBALANCE):
            # the leader may have assigned to the old member id: start over
            self._prepare_rebalance(group, now)

    # --- rebalancing -------------------------------------------------------

    def _create_group(self, group_id: str, now: float) -> Group:
        group = Group(group_id, GroupState.EMPTY, now)
        self.groups[group_id] = group
        return group

    def _maybe_prepare_rebalance(self, group: Group, now: float) -> None:
        if group.is_(GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY):
            self._prepare_rebalance(group, now)

    def _prepare_rebalance(self, group: Group, now: float) -> None:
        if group.is_(GroupState.COMPLETING_REBALANCE):
            self._propagate_assignment_error(group, ErrorCode.REBALANCE_IN_PROGRESS)
        group.sync_deadline = None
        group.pending_sync.clear()
        if group.is_(GroupState.EMPTY):
            delay = self._config_ms("group.initial.rebalance.delay.ms")
            group.initial_delay = (delay, max(group.rebalance_timeout - delay, 0.0))
            group.new_member_added = False
            group.join_deadline = now + delay
        else:
            group.initial_delay = None
            group.join_deadline = now + group.rebalance_timeout
        group.transition(GroupState.PREPARING_REBALANCE, now)
        self._poke()

    def _propagate_assignment_error(self, group: Group, error: ErrorCode) -> None:
        for member in group.members.values():
            member.assignment = b""
            if member.sync_reply is not None:
                member.sync_reply.set(SyncResult(error))
                member.sync_reply = None

    def _try_complete_join(self, group: Group, now: float) -> None:
        """End the join phase early once every member has rejoined (not during the initial delay)."""
        if group.is_(GroupState.PREPARING_REBALANCE) and group.initial_delay is None and group.all_joined():
            self._complete_join(group, now)

    def _join_phase_expired(self, group: Group, now: float) -> None:
        if group.initial_delay is not None:
            delay, remaining = group.initial_delay
            if group.new_member_added and remaining > 0:
                # members keep arriving: wait once more, within the rebalance timeout
                group.new_member_added = False
                step = min(delay, remaining)
                group.initial_delay = (delay, max(remaining - step, 0.0))
                group.join_deadline = now + step
                return
        self._complete_join(group, now)

    def _complete_join(self, group: Group, now: float) -> None:
        """Kafka's onCompleteJoin: drop who did not rejoin, start the next generation, answer the joins."""
        for member in list(group.members.values()):
            if member.join_reply is None and member.instance_id is None:
                log.info("group %s: member %s did not rejoin in time", group.group_id, member.member_id)
                group.remove(member.member_id)
        if group.members and not self._elect_joined_leader(group):
            # only static members that have not rejoined are left: wait for them (or their session timeouts)
            group.initial_delay = None
            group.join_deadline = now + max(group.rebalance_timeout, 1.0)
            return
        group.join_deadline = None
        group.initial_delay = None
        group.generation_id += 1
        if not group.members:
            group.protocol_name = None
            group.subscribed_topics = None
            group.transition(GroupState.EMPTY, now)
            return
        group.protocol_name = group.select_protocol()
        group.subscribed_topics = group.compute_subscribed_topics()
        group.transition(GroupState.COMPLETING_REBALANCE, now)
        for member in group.members.values():
            if member.join_reply is not None:
                member.join_reply.set(group.current_join_result(member))
                member.join_reply = None
            member.is_new = False
            member.last_heartbeat = now
        group.pending_sync = set(group.members)
        group.sync_deadline = now + group.rebalance_timeout
        self._poke()

    @staticmethod
    def _elect_joined_leader(group: Group) -> bool:
        leader = group.members.get(group.leader_id or "")
        if leader is not None and leader.join_reply is not None:
            return True
        joined = next((m for m in group.members.values() if m.join_reply is not None), None)
        if joined is None:
            return False
        group.leader_id = joined.member_id
        return True

    def _sync_phase_expired(self, group: Group, now: float) -> None:
        group.sync_deadline = None
        if not group.pending_sync:
            return
        for member_id in list(group.pending_sync):
            log.info("group %s: member %s did not send SyncGroup in time", group.group_id, member_id)
            member = group.remove(member_id)
            if member is not None and member.join_reply is not None:
                member.join_reply.set(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
        self._prepare_rebalance(group, now)
        self._try_complete_join(group, now)

    def _remove_member_and_update(self, group: Group, member: Member, now: float) -> None:
        if member.join_reply is not None:
            member.join_reply.set(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member.member_id))
            member.join_reply = None
        if member.sync_reply is not None:
            member.sync_reply.set(SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
            member.sync_reply = None
        group.remove(member.member_id)
        if group.is_(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance(group, now)
            self._try_complete_join(group, now)
        elif group.is_(GroupState.PREPARING_REBALANCE):
            self._try_complete_join(group, now)

    # --- SyncGroup -----------------------------------------------------------

    async def sync(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        instance_id: str | None,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: dict[str, bytes],
    ) -> SyncResult:
        """Hand out the leader's assignment; followers wait for it (Kafka's doSyncGroup)."""
        reply = self._sync(group_id, generation_id, member_id, instance_id, protocol_type, protocol_name, assignments)
        result = await reply.wait()
        group = self.groups.get(group_id)
        if result.error == ErrorCode.NONE and group is not None:
            result.protocol_type, result.protocol_name = group.protocol_type, group.protocol_name
        return result

    def _sync(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        instance_id: str | None,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: dict[str, bytes],
    ) -> _Reply[SyncResult]:
        now = self._now()
        group = self.groups.get(group_id)
        if group is None:
            return _Reply.ready(SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
        if group.is_(GroupState.DEAD):
            return _Reply.ready(SyncResult(ErrorCode.COORDINATOR_NOT_AVAILABLE))
        error = group.validate_member(member_id, instance_id)
        if error is not None:
            return _Reply.ready(SyncResult(error))
        if generation_id != group.generation_id:
            return _Reply.ready(SyncResult(ErrorCode.ILLEGAL_GENERATION))
        if (protocol_type is not None and protocol_type != group.protocol_type) or (
            protocol_name is not None and protocol_name != group.protocol_name
        ):
            return _Reply.ready(SyncResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
        member = group.members[member_id]
        if group.is_(GroupState.PREPARING_REBALANCE):
            return _Reply.ready(SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
        if group.is_(GroupState.EMPTY):
            return _Reply.ready(SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
        member.last_heartbeat = now
        group.pending_sync.discard(member_id)
        if not group.pending_sync:
            group.sync_deadline = None
        if group.is_(GroupState.STABLE):
            return _Reply.ready(SyncResult(ErrorCode.NONE, member.assignment))
        # CompletingRebalance
        reply: _Reply[SyncResult] = _Reply()
        if member.sync_reply is not None:
            member.sync_reply.set(SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
        member.sync_reply = reply
        if member_id == group.leader_id:
            for m in group.members.values():
                m.assignment = assignments.get(m.member_id, b"")
            for m in group.members.values():
                if m.sync_reply is not None:
                    m.sync_reply.set(SyncResult(ErrorCode.NONE, m.assignment))
                    m.sync_reply = None
                    m.last_heartbeat = now
            group.transition(GroupState.STABLE, now)
        return reply

    # --- Heartbeat and LeaveGroup -------------------------------------------

    def heartbeat(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None) -> ErrorCode:
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.is_(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = group.validate_member(member_id, instance_id)
        if error is not None:
            return error
        if generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        member = group.members[member_id]
        member.last_heartbeat = self._now()
        if group.is_(GroupState.PREPARING_REBALANCE):
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def leave(
        self, group_id: str, leaving: list[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[tuple[str, str | None, ErrorCode]]]:
        """Remove members by member id, or (admin) by instance id alone; answer per member."""
        now = self._now()
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.NONE, [(m, i, ErrorCode.UNKNOWN_MEMBER_ID) for m, i in leaving]
        if group.is_(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, []
        results = []
        pending_left = False
        for member_id, instance_id in leaving:  # each answer names the member as the request did
            target = member_id
            if not member_id:
                target = group.static_members.get(instance_id) if instance_id is not None else None
                if target is None:
                    results.append((member_id, instance_id, ErrorCode.UNKNOWN_MEMBER_ID))
                    continue
            elif member_id in group.pending_members:
                del group.pending_members[member_id]
                pending_left = True
                results.append((member_id, instance_id, ErrorCode.NONE))
                continue
            else:
                error = group.validate_member(member_id, instance_id)
                if error is not None:
                    results.append((member_id, instance_id, error))
                    continue
            log.info("group %s: member %s leaves", group.group_id, target)
            self._remove_member_and_update(group, group.members[target], now)
            results.append((member_id, instance_id, ErrorCode.NONE))
        if pending_left:
            # As Kafka 4's coordinator: a member leaving rebalances a Stable or CompletingRebalance
            # group even when it was still pending (MEMBER_ID_REQUIRED, not joined yet)
            if group.is_(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._prepare_rebalance(group, now)
            self._try_complete_join(group, now)
        self._poke()
        return ErrorCode.NONE, results

    # --- describe, list, delete ---------------------------------------------

    def describe(self, group_id: str) -> GroupSummary:
        group = self.groups.get(group_id)
        if group is None or group.is_(GroupState.DEAD):
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
        self._remove_group(group, "deleted")
        return ErrorCode.NONE

    def _remove_group(self, group: Group, why: str) -> None:
        for member_id in list(group.pending_members):
            group.remove(member_id)
        if group.offsets:
            self.cluster.store.delete_group(group.group_id)
        group.offsets.clear()
        group.transition(GroupState.DEAD, self._now())
        del self.groups[group.group_id]
        log.info("group %s: removed (%s)", group.group_id, why)

    # --- offsets ---------------------------------------------------------------

    def validate_commit(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None) -> Group:
        """The group a commit may go to, else GroupError (Kafka's validateOffsetCommit).

        A commit with generation -1 and no member id comes from a consumer that
        does not use group management (assign()) or from an admin tool: it
        creates a "simple" group if there is none, and is accepted only while
        the group is empty.
        """
        now = self._now()
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                raise GroupError(ErrorCode.ILLEGAL_GENERATION)
            group = self._create_group(group_id, now)
        if group.is_(GroupState.DEAD):
            raise GroupError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        if generation_id < 0 and group.is_(GroupState.EMPTY):
            return group
        if generation_id >= 0 or member_id or instance_id is not None:
            error = group.validate_member(member_id, instance_id)
            if error is not None:
                raise GroupError(error)
            if generation_id != group.generation_id:
                raise GroupError(ErrorCode.ILLEGAL_GENERATION)
        elif not group.is_(GroupState.EMPTY):
            raise GroupError(ErrorCode.UNKNOWN_MEMBER_ID)
        if group.is_(GroupState.COMPLETING_REBALANCE):
            raise GroupError(ErrorCode.REBALANCE_IN_PROGRESS)
        member = group.members.get(member_id)
        if member is not None:
            member.last_heartbeat = now
        return group

    def store_offset(
        self,
        group: Group,
        topic: str,
        partition: int,
        offset: int,
        leader_epoch: int,
        metadata: str,
        retention_ms: int = -1,
        commit_timestamp_ms: int = -1,
    ) -> None:
        """Store a commit. OffsetCommit v1 may date it (`commit_timestamp_ms`, wall clock), v2-4 give it a
        retention of its own; both only change when it expires."""
        now = self._now()
        committed_at = now
        if commit_timestamp_ms >= 0:
            committed_at = now - (self.cluster.now_ms() - commit_timestamp_ms) / 1000
        expire_at = now + retention_ms / 1000 if retention_ms >= 0 else None
        group.offsets[(topic, partition)] = CommittedOffset(offset, leader_epoch, metadata, committed_at, expire_at)
        self.cluster.store.save_offsets(group.group_id, {(topic, partition): (offset, leader_epoch, metadata)})

    def _forget_offsets(self, group: Group, partitions: list[TopicPartition]) -> None:
        """Drop committed offsets (OffsetDelete, expiry, a deleted topic), in memory and in the store."""
        for tp in partitions:
            group.offsets.pop(tp, None)
        if partitions:
            self.cluster.store.save_offsets(group.group_id, dict.fromkeys(partitions))

    def restore_offsets(self, saved: dict[str, dict[TopicPartition, tuple[int, int, str | None]]]) -> None:
        """Committed offsets the store kept from a previous run (--data-dir): each group comes back empty."""
        now = self._now()
        for group_id, offsets in saved.items():
            if not offsets:
                continue
            group = self.groups.get(group_id) or self._create_group(group_id, now)
            for tp, (offset, leader_epoch, metadata) in offsets.items():
                group.offsets[tp] = CommittedOffset(offset, leader_epoch, metadata or "", now)
        if saved:
            log.info("restored the committed offsets of %d group(s)", len(saved))

    def committed(self, group_id: str) -> dict[TopicPartition, CommittedOffset]:
        group = self.groups.get(group_id)
        return {} if group is None else group.offsets

    def delete_offsets(
        self, group_id: str, partitions: list[TopicPartition]
    ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        """OffsetDelete: only for partitions the group does not consume (Kafka's handleDeleteOffsets)."""
        group = self.groups.get(group_id)
        if group is None or group.is_(GroupState.DEAD):
            return ErrorCode.GROUP_ID_NOT_FOUND, {}
        errors: dict[TopicPartition, ErrorCode] = {}
        if group.is_(GroupState.EMPTY):
            eligible = partitions
        elif group.protocol_type == CONSUMER_PROTOCOL:
            eligible = [tp for tp in partitions if not group.is_subscribed_to(tp[0])]
            errors.update(
                (tp, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC) for tp in partitions if group.is_subscribed_to(tp[0])
            )
        else:
            return ErrorCode.NON_EMPTY_GROUP, {}
        self._forget_offsets(group, eligible)
        for tp in eligible:
            errors[tp] = ErrorCode.NONE
        self._drop_if_unused(group)
        return ErrorCode.NONE, errors

    def _drop_if_unused(self, group: Group) -> None:
        if group.is_(GroupState.EMPTY) and not group.offsets and not group.pending_members:
            self._remove_group(group, "empty, with no offsets")

    def expire_offsets(self, now: float | None = None) -> None:
        """Kafka's periodic cleanup: expire old offsets, then drop empty groups that have none left.

        An empty consumer group's offsets expire offsets.retention.minutes after
        it became empty; a simple group's, that long after each commit; a stable
        consumer group's, that long after the commit, for topics it no longer
        subscribes to. An explicit retention (OffsetCommit v2-4) wins.
        """
        now = self._now() if now is None else now
        retention = self.cluster.config["offsets.retention.minutes"] * 60.0
        for group in list(self.groups.values()):
            expired = [tp for tp, o in group.offsets.items() if self._offset_expired(group, tp[0], o, now, retention)]
            self._forget_offsets(group, expired)
            if expired:
                log.info("group %s: %d committed offsets expired", group.group_id, len(expired))
            self._drop_if_unused(group)

    @staticmethod
    def _offset_expired(group: Group, topic: str, o: CommittedOffset, now: float, retention: float) -> bool:
        if group.protocol_type is not None and group.is_(GroupState.EMPTY):
            since = group.state_since
        elif group.protocol_type is None or (
            group.protocol_type == CONSUMER_PROTOCOL
            and group.subscribed_topics is not None
            and group.is_(GroupState.STABLE)
            and topic not in group.subscribed_topics
        ):
            since = o.commit_time
        else:
            return False
        return now >= o.expire_at if o.expire_at is not None else now - since >= retention

    def on_topic_deleted(self, topic: str) -> None:
        """A deleted topic takes its committed offsets with it (Kafka's onPartitionsDeleted)."""
        for group in list(self.groups.values()):
            self._forget_offsets(group, [tp for tp in group.offsets if tp[0] == topic])
            self._drop_if_unused(group)

    def reset(self) -> None:
        """Forget every group (Cluster.reset); parked requests get COORDINATOR_NOT_AVAILABLE."""
        for group in self.groups.values():
            for member in group.members.values():
                if member.join_reply is not None:
                    member.join_reply.set(JoinResult(ErrorCode.COORDINATOR_NOT_AVAILABLE, member.member_id))
                if member.sync_reply is not None:
                    member.sync_reply.set(SyncResult(ErrorCode.COORDINATOR_NOT_AVAILABLE))
        self.groups.clear()
        self._poke()
