"""Membership in the classic group protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup and rebalances.

The rules follow Kafka's classic GroupCoordinator: the JoinGroup
MEMBER_ID_REQUIRED handshake (v4+), waiting for every known member to rejoin
within the rebalance timeout, protocol selection by vote, the leader getting
the member list, SyncGroup handing each member only its own assignment,
generations, static membership (group.instance.id), session timeouts, the
initial rebalance delay of a new group (group.initial.rebalance.delay.ms) and
pending sync expiry.

The groups, the clock and the timer task belong to the `GroupCoordinator`
(kstub/cluster/coordinator.py); this unit holds the rules and is called by it.
Nothing here awaits in the middle of a change, so no locks are needed: a
JoinGroup or SyncGroup that must wait parks on a `_Reply` that a later request
or a timer answers. SyncGroup, Heartbeat and LeaveGroup are in
kstub/cluster/membership_sync.py. The new consumer protocol (KIP-848) will be a second
membership unit beside this one.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kstub.protocol import ErrorCode

from .groups import Group, GroupState, JoinResult, Member, _Reply
from .membership_sync import ClassicSyncAndLeave, SyncRequest
from .rebalance import Rebalance

if TYPE_CHECKING:
    from .coordinator import GroupCoordinator

log = logging.getLogger("kstub.groups")

__all__ = ["ClassicMembership", "JoinRequest", "SyncRequest"]


@dataclass(slots=True)
class JoinRequest:
    """A JoinGroup as the coordinator needs it (version differences already resolved by the handler)."""

    group_id: str
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    #: v4+: a new member without an id gets MEMBER_ID_REQUIRED and an id to come back with (KIP-394)
    require_known_member_id: bool = True
    #: v9+: a static leader rejoining may be told to skip the assignment (KIP-814)
    supports_skip_assignment: bool = False


class ClassicMembership(ClassicSyncAndLeave):
    """The classic protocol's rules over the coordinator's groups."""

    def __init__(self, coordinator: GroupCoordinator) -> None:
        super().__init__(coordinator)
        #: the group's generations: rebalances, their deadlines, coordinator moves
        self.rebalance = Rebalance(coordinator)

    # --- JoinGroup -----------------------------------------------------------

    async def join(self, req: JoinRequest) -> JoinResult:
        """Join (or rejoin) a group; waits until the join phase ends (Kafka's handleJoinGroup)."""
        reply = self._join(req)
        self._poke()
        return await reply.wait()

    def _join(self, req: JoinRequest) -> _Reply[JoinResult]:
        group_id, member_id, instance_id = req.group_id, req.member_id, req.instance_id
        client_id, client_host = req.client_id, req.client_host
        protocol_type, protocols = req.protocol_type, req.protocols
        session_timeout_ms = req.session_timeout_ms
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
                self.rebalance.remove_member_and_update(group, known, now)
            return _Reply.ready(JoinResult(ErrorCode.GROUP_MAX_SIZE_REACHED, ""))
        names = [name for name, _ in protocols]
        if not group.supports_protocols(protocol_type, names):
            return _Reply.ready(JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id))
        session = session_timeout_ms / 1000
        rebalance = req.rebalance_timeout_ms / 1000
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
                    req.supports_skip_assignment,
                )
            elif instance_id is None and req.require_known_member_id:
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
        self.rebalance.try_complete_join(group, now)
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
        self.rebalance.maybe_prepare_rebalance(group, now)

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
        self.rebalance.maybe_prepare_rebalance(group, now)

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
        member.answer_parked(ErrorCode.FENCED_INSTANCE_ID)  # fence whoever still waits under the old id
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
                self.rebalance.maybe_prepare_rebalance(group, now)
        elif group.is_(GroupState.COMPLETING_REBALANCE):
            # the leader may have assigned to the old member id: start over
            self.rebalance.prepare_rebalance(group, now)
