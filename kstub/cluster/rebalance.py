"""Rebalances of a classic group: from PreparingRebalance through CompletingRebalance to Stable.

`Rebalance` moves a group between generations as Kafka's classic coordinator
does: preparing a rebalance (with the initial delay of a new group), ending
the join phase when every member rejoined or its deadline passed, electing the
leader and starting the next generation, expiring the sync phase, and removing
members whose sessions expired. The membership unit (kstub/cluster/membership.py)
calls it from JoinGroup, SyncGroup and LeaveGroup; the coordinator's timer task
calls `fire`; coordinator moves call `unload` and `load`.
"""

from __future__ import annotations

import logging

from kstub.protocol import ErrorCode

from .coordinator_part import CoordinatorPart
from .groups import Group, GroupState, JoinResult, Member, SyncResult

log = logging.getLogger("kstub.groups")


class Rebalance(CoordinatorPart):
    """A classic group's generations: rebalances, their deadlines, coordinator moves."""

    # --- timers (the coordinator's task calls this for every group it serves) ---------------------

    def fire(self, group: Group, now: float) -> None:
        """Fire the group's membership timers due at `now`."""
        for member_id, expiry in list(group.pending_members.items()):
            if expiry <= now:
                log.info("group %s: pending member %s expired", group.group_id, member_id)
                del group.pending_members[member_id]
                self.try_complete_join(group, now)
        for member in list(group.members.values()):
            expiry = member.expiry()
            if expiry is not None and expiry <= now and group.members.get(member.member_id) is member:
                log.info("group %s: member %s missed its session timeout", group.group_id, member.member_id)
                self.remove_member_and_update(group, member, now)
        if group.is_(GroupState.PREPARING_REBALANCE) and group.join_deadline is not None and group.join_deadline <= now:
            self.join_phase_expired(group, now)
        if (
            group.is_(GroupState.COMPLETING_REBALANCE, GroupState.STABLE)
            and group.sync_deadline is not None
            and group.sync_deadline <= now
        ):
            self.sync_phase_expired(group, now)

    # --- coordinator moves -----------------------------------------------------

    @staticmethod
    def unload(group: Group) -> None:
        """Kafka's onGroupUnloaded: what the old coordinator holds is answered NOT_COORDINATOR."""
        for member in group.members.values():
            member.answer_parked(ErrorCode.NOT_COORDINATOR)

    @staticmethod
    def load(group: Group, now: float) -> None:
        """Kafka's onGroupLoaded: every member's session starts afresh; so do the rebalance's deadlines."""
        for member in group.members.values():
            member.last_heartbeat = now
        if group.join_deadline is not None:
            group.join_deadline = now + (group.initial_delay[0] if group.initial_delay else group.rebalance_timeout)
        if group.sync_deadline is not None:
            group.sync_deadline = now + group.rebalance_timeout

    # --- rebalancing -------------------------------------------------------

    def maybe_prepare_rebalance(self, group: Group, now: float) -> None:
        if group.is_(GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY):
            self.prepare_rebalance(group, now)

    def prepare_rebalance(self, group: Group, now: float) -> None:
        if group.is_(GroupState.COMPLETING_REBALANCE):
            self.propagate_assignment_error(group, ErrorCode.REBALANCE_IN_PROGRESS)
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

    def propagate_assignment_error(self, group: Group, error: ErrorCode) -> None:
        for member in group.members.values():
            member.assignment = b""
            if member.sync_reply is not None:
                member.sync_reply.set(SyncResult(error))
                member.sync_reply = None

    def try_complete_join(self, group: Group, now: float) -> None:
        """End the join phase early once every member has rejoined (not during the initial delay)."""
        if group.is_(GroupState.PREPARING_REBALANCE) and group.initial_delay is None and group.all_joined():
            self.complete_join(group, now)

    def join_phase_expired(self, group: Group, now: float) -> None:
        if group.initial_delay is not None:
            delay, remaining = group.initial_delay
            if group.new_member_added and remaining > 0:
                # members keep arriving: wait once more, within the rebalance timeout
                group.new_member_added = False
                step = min(delay, remaining)
                group.initial_delay = (delay, max(remaining - step, 0.0))
                group.join_deadline = now + step
                return
        self.complete_join(group, now)

    def complete_join(self, group: Group, now: float) -> None:
        """Kafka's onCompleteJoin: drop who did not rejoin, start the next generation, answer the joins."""
        for member in list(group.members.values()):
            if member.join_reply is None and member.instance_id is None:
                log.info("group %s: member %s did not rejoin in time", group.group_id, member.member_id)
                group.remove(member.member_id)
        if group.members and not self.elect_joined_leader(group):
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
    def elect_joined_leader(group: Group) -> bool:
        leader = group.members.get(group.leader_id or "")
        if leader is not None and leader.join_reply is not None:
            return True
        joined = next((m for m in group.members.values() if m.join_reply is not None), None)
        if joined is None:
            return False
        group.leader_id = joined.member_id
        return True

    def sync_phase_expired(self, group: Group, now: float) -> None:
        group.sync_deadline = None
        if not group.pending_sync:
            return
        for member_id in list(group.pending_sync):
            log.info("group %s: member %s did not send SyncGroup in time", group.group_id, member_id)
            member = group.remove(member_id)
            if member is not None and member.join_reply is not None:
                member.join_reply.set(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
        self.prepare_rebalance(group, now)
        self.try_complete_join(group, now)

    def remove_member_and_update(self, group: Group, member: Member, now: float) -> None:
        member.answer_parked(ErrorCode.UNKNOWN_MEMBER_ID)
        group.remove(member.member_id)
        if group.is_(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self.maybe_prepare_rebalance(group, now)
            self.try_complete_join(group, now)
        elif group.is_(GroupState.PREPARING_REBALANCE):
            self.try_complete_join(group, now)
