"""Converting a group between the two kinds (a base of `ClassicInConsumerGroups`; classic.py describes
the rules): the assignments in either form, the upgrade of a classic group and the downgrade back."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from kstub.protocol import DecodeError, ErrorCode
from kstub.protocol.consumer_protocol import (
    HIGHEST_VERSION,
    PROTOCOL_TYPE,
    decode_assignment,
    decode_subscription,
    encode_assignment,
)

from ..groups import Group, GroupState, Member
from .model import Assignment, ClassicProtocol, ConsumerGroup, ConsumerGroupError, ConsumerMember, MemberState

if TYPE_CHECKING:
    from ..coordinator import GroupCoordinator
    from .membership import ConsumerMembership

log = logging.getLogger("kstub.groups")

UPGRADE_POLICIES = ("upgrade", "bidirectional")
DOWNGRADE_POLICIES = ("downgrade", "bidirectional")


def _error(code: ErrorCode, message: str | None = None) -> Exception:
    return ConsumerGroupError(code, message)


class GroupConversion:
    """Upgrades and downgrades of a coordinator's groups."""

    _m: ConsumerMembership

    @property
    def _coordinator(self) -> GroupCoordinator:
        return self._m._coordinator

    def _policy(self) -> str:
        return str(self._m.cluster.config["group.consumer.migration.policy"]).strip().lower()

    # --- assignments: topic names (classic) ↔ topic ids (consumer) -------------------

    def _ids(self, by_name: list[tuple[str, list[int]]]) -> Assignment:
        out: dict[uuid.UUID, frozenset[int]] = {}
        for name, parts in by_name:
            topic = self._m.cluster.topics.get(name)
            if topic is not None and parts:
                out[topic.topic_id] = out.get(topic.topic_id, frozenset()) | frozenset(parts)
        return out

    def _names(self, assignment: Assignment) -> list[dict[str, object]]:
        names = {t.topic_id: t.name for t in self._m.cluster.topics.values()}
        return [
            {"topic": names[topic_id], "partitions": sorted(parts)}
            for topic_id, parts in sorted(assignment.items(), key=lambda kv: names.get(kv[0], ""))
            if topic_id in names
        ]

    def _encode(self, member: ConsumerMember, assignment: Assignment) -> bytes:
        version = 0
        if member.classic is not None and member.classic.protocols:
            metadata = member.classic.protocols[0][1]
            version = int.from_bytes(metadata[:2], "big", signed=True) if len(metadata) >= 2 else 0
        version = min(max(version, 0), HIGHEST_VERSION)
        return encode_assignment({"assigned_partitions": self._names(assignment), "user_data": None}, version)

    # --- upgrade: classic → consumer --------------------------------------------------

    def upgrade(self, classic: Group) -> ConsumerGroup:
        """Convert a live classic group to a consumer group (Kafka's convertToConsumerGroup)."""
        gid = classic.group_id
        if self._policy() not in UPGRADE_POLICIES:
            raise _error(
                ErrorCode.GROUP_ID_NOT_FOUND,
                f"Cannot upgrade classic group {gid} to consumer group because online upgrade is disabled.",
            )
        if classic.protocol_type != PROTOCOL_TYPE:
            raise _error(
                ErrorCode.GROUP_ID_NOT_FOUND,
                f"Cannot upgrade classic group {gid} to consumer group because the group does not use the "
                "consumer embedded protocol.",
            )
        if len(classic.members) > int(self._m.cluster.config["group.consumer.max.size"]):
            raise _error(
                ErrorCode.GROUP_ID_NOT_FOUND,
                f"Cannot upgrade classic group {gid} to consumer group because the group size exceeds the "
                "consumer group maximum size.",
            )
        now = self._coordinator.now()
        epoch = classic.generation_id
        group = ConsumerGroup(gid, group_epoch=epoch, assignment_epoch=epoch)
        for m in classic.members.values():
            try:
                assigned: Assignment = {}
                if m.assignment:
                    decoded = decode_assignment(m.assignment)
                    if decoded.get("user_data"):
                        raise _error(
                            ErrorCode.GROUP_ID_NOT_FOUND,
                            f"Cannot upgrade classic group {gid} to consumer group because an unsupported custom "
                            "assignor is in use. Please refer to the documentation or switch to a default assignor "
                            "before re-attempting the upgrade.",
                        )
                    assigned = self._ids([(a.topic, list(a.partitions)) for a in decoded.assigned_partitions])
                protocol = classic.protocol_name or (m.protocols[0][0] if m.protocols else "")
                subscription = decode_subscription(m.metadata(protocol))
            except DecodeError:
                raise _error(
                    ErrorCode.GROUP_ID_NOT_FOUND,
                    f"Cannot upgrade classic group {gid} to consumer group because the embedded consumer protocol "
                    "is malformed.",
                ) from None
            member = ConsumerMember(
                m.member_id,
                instance_id=m.instance_id,
                rack_id=subscription.get("rack_id"),
                client_id=m.client_id,
                client_host=m.client_host,
                rebalance_timeout_ms=int(m.rebalance_timeout * 1000),
                subscribed_topic_names=tuple(sorted(set(subscription.topics))),
                state=MemberState.STABLE,
                member_epoch=epoch,
                previous_member_epoch=epoch,
                assigned=assigned,
                classic=ClassicProtocol(int(m.session_timeout * 1000), tuple(m.protocols)),
            )
            member.session_deadline = now + m.session_timeout
            group.target[member.member_id] = assigned
            group.put(member)
        group.subscription_metadata = self._m.subscription_metadata(group)
        # the classic group's requests under way: its members must rejoin (now in the consumer group)
        for m in list(classic.members.values()):
            m.answer_parked(ErrorCode.REBALANCE_IN_PROGRESS)
        classic.members.clear()
        classic.static_members.clear()
        classic.pending_members.clear()
        classic.pending_sync.clear()
        classic.leader_id = None
        classic.join_deadline = classic.sync_deadline = None
        classic.initial_delay = None
        classic.transition(GroupState.EMPTY, now)  # it keeps the group's committed offsets
        self._m.groups[gid] = group
        log.info("group %s: converted the classic group to a consumer group (epoch %d)", gid, epoch)
        return group

    # --- downgrade: consumer → classic ------------------------------------------------

    def maybe_downgrade(self, group: ConsumerGroup) -> bool:
        """After members left: if every member left uses the classic protocol, convert back (as policy allows)."""
        if not group.members or not self._downgrade_allowed(group):
            return False
        self.downgrade(group)
        return True

    def _downgrade_allowed(self, group: ConsumerGroup) -> bool:
        if any(m.classic is None for m in group.members.values()):
            return False
        if self._policy() not in DOWNGRADE_POLICIES:
            log.info("group %s: cannot downgrade to a classic group (migration policy)", group.group_id)
            return False
        return len(group.members) <= int(self._m.cluster.config["group.max.size"])

    def downgrade(self, group: ConsumerGroup, *, rebalance: bool = True) -> Group:
        """Convert to a classic group; after members left it rebalances (not when a static member was replaced)."""
        coordinator = self._coordinator
        now = coordinator.now()
        gid = group.group_id
        classic = coordinator.groups.get(gid) or coordinator.create_group(gid, now)
        classic.generation_id = group.group_epoch
        classic.protocol_type = PROTOCOL_TYPE
        classic.leader_id = None
        for m in group.members.values():
            assert m.classic is not None
            member = Member(
                m.member_id,
                m.instance_id,
                m.client_id,
                m.client_host,
                m.classic.session_timeout_ms / 1000,
                max(m.rebalance_timeout_ms, 0) / 1000,
                PROTOCOL_TYPE,
                list(m.classic.protocols),
                now,
                assignment=self._encode(m, group.target.get(m.member_id, m.assigned)),
            )
            classic.add(member)
        classic.protocol_name = classic.select_protocol()
        classic.subscribed_topics = classic.compute_subscribed_topics()
        classic.transition(GroupState.STABLE, now)
        del self._m.groups[gid]
        log.info("group %s: converted the consumer group to a classic group (generation %d)", gid,
                 classic.generation_id)  # fmt: skip
        if rebalance:
            coordinator.membership.rebalance.prepare_rebalance(classic, now)
        return classic
