"""The classic group protocol after the join: SyncGroup, Heartbeat, LeaveGroup.

A part of `ClassicMembership` (kstub/cluster/membership.py, which has the
module's rules and JoinGroup), kept apart from the join phase.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kstub.protocol import ErrorCode

from .coordinator_part import CoordinatorPart
from .groups import GroupState, SyncResult, _Reply

if TYPE_CHECKING:
    from .rebalance import Rebalance

log = logging.getLogger("kstub.groups")


@dataclass(slots=True)
class SyncRequest:
    group_id: str
    generation_id: int
    member_id: str
    instance_id: str | None = None
    protocol_type: str | None = None
    protocol_name: str | None = None
    #: the leader's assignment, by member id (empty from followers)
    assignments: dict[str, bytes] | None = None


class ClassicSyncAndLeave(CoordinatorPart):
    """SyncGroup, Heartbeat and LeaveGroup of the classic protocol: mixed into `ClassicMembership`."""

    # kept by `ClassicMembership`
    rebalance: Rebalance

    # --- SyncGroup -----------------------------------------------------------

    async def sync(self, req: SyncRequest) -> SyncResult:
        """Hand out the leader's assignment; followers wait for it (Kafka's doSyncGroup)."""
        reply = self._sync(req)
        result = await reply.wait()
        group = self.groups.get(req.group_id)
        if result.error == ErrorCode.NONE and group is not None:
            result.protocol_type, result.protocol_name = group.protocol_type, group.protocol_name
        return result

    def _sync(self, req: SyncRequest) -> _Reply[SyncResult]:
        group_id, generation_id, member_id, instance_id = (
            req.group_id,
            req.generation_id,
            req.member_id,
            req.instance_id,
        )
        protocol_type, protocol_name, assignments = req.protocol_type, req.protocol_name, req.assignments
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
                m.assignment = (assignments or {}).get(m.member_id, b"")
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
            self.rebalance.remove_member_and_update(group, group.members[target], now)
            results.append((member_id, instance_id, ErrorCode.NONE))
        if pending_left:
            # As Kafka 4's coordinator: a member leaving rebalances a Stable or CompletingRebalance
            # group even when it was still pending (MEMBER_ID_REQUIRED, not joined yet)
            if group.is_(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self.rebalance.prepare_rebalance(group, now)
            self.rebalance.try_complete_join(group, now)
        self._poke()
        return ErrorCode.NONE, results
