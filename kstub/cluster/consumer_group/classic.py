"""Mixed groups: classic members in a consumer group, and conversions between the two kinds of group.

As Kafka 4.x does (``group.consumer.migration.policy``: ``bidirectional``,
the default, ``upgrade``, ``downgrade`` or ``disabled``):

- upgrade: a ConsumerGroupHeartbeat joining a live classic group whose
  members use the ``consumer`` embedded protocol converts it to a consumer
  group. Every classic member becomes a member of it at the classic
  generation, Stable, its current and target assignment what the last
  SyncGroup gave it; JoinGroup and SyncGroup requests parked in a rebalance
  under way are answered REBALANCE_IN_PROGRESS. If the policy forbids it, or
  the group's protocol type is not ``consumer``, the heartbeat is refused
  with GROUP_ID_NOT_FOUND and Kafka's message.
- classic members of a consumer group keep speaking JoinGroup, SyncGroup,
  Heartbeat and LeaveGroup; the coordinator answers them from the consumer
  group: JoinGroup at once (no join phase, no leader: the generation is the
  member's epoch after one reconciliation step with the partitions its
  subscription says it owns), SyncGroup with its assigned partitions, and
  Heartbeat with REBALANCE_IN_PROGRESS whenever it must rejoin to move on
  (the group epoch moved past its epoch, it has partitions to revoke, or the
  partitions it waits for were released).
- downgrade: when the last member using the consumer protocol leaves (or is
  fenced) and classic members remain, the group goes back to being a classic
  group at the consumer group's epoch, every member's assignment its target,
  and a rebalance starts so the classic members rejoin.

ListGroups reports the kind at each moment (``group_type``); DescribeGroups
knows only classic groups, ConsumerGroupDescribe only consumer groups (its
member type tells classic members from the others).

A classic member told to rejoin (REBALANCE_IN_PROGRESS) that does not send
its JoinGroup within its rebalance timeout is fenced (Kafka's join timeout).
A classic static member replacing (same instance id) the last member of the
new protocol also converts the group back, with no rebalance. A member that
joined and does not send its SyncGroup within its rebalance timeout is fenced
too (Kafka's sync timeout).
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from kstub.protocol import DecodeError, ErrorCode
from kstub.protocol.consumer_protocol import (
    PROTOCOL_TYPE,
    decode_subscription,
)

from ..groups import JoinResult, SyncResult
from .conversion import GroupConversion, _error
from .model import ClassicProtocol, ConsumerGroup, ConsumerMember, MemberState

if TYPE_CHECKING:
    from ..membership import JoinRequest, SyncRequest
    from .membership import ConsumerMembership

log = logging.getLogger("kstub.groups")


class ClassicInConsumerGroups(GroupConversion):
    """The classic protocol's requests to consumer groups, and the conversions (see the module's doc)."""

    def __init__(self, membership: ConsumerMembership) -> None:
        self._m = membership

    # --- the classic protocol's requests to a consumer group ---------------------------

    def _member(self, group: ConsumerGroup, member_id: str, instance_id: str | None) -> ConsumerMember:
        """Kafka's validateConsumerGroupMember, then the member must use the classic protocol."""
        if instance_id is None:
            member = group.members.get(member_id)
            if member is None:
                raise _error(
                    ErrorCode.UNKNOWN_MEMBER_ID, f"Member {member_id} is not a member of group {group.group_id}."
                )
        else:
            member = group.static_member(instance_id)
            if member is None:
                raise _error(
                    ErrorCode.UNKNOWN_MEMBER_ID,
                    f"Member with instance id {instance_id} is not a member of group {group.group_id}.",
                )
            if member.member_id != member_id:
                raise _error(ErrorCode.FENCED_INSTANCE_ID)
        if member.classic is None:
            raise _error(ErrorCode.UNKNOWN_MEMBER_ID, f"Member {member.member_id} does not use the classic protocol.")
        return member

    def join(self, group: ConsumerGroup, req: JoinRequest) -> JoinResult:
        from .membership import ConsumerGroupError

        try:
            return self._join(group, req)
        except ConsumerGroupError as exc:
            return JoinResult(exc.code)
        finally:
            self._m.persist()
            self._coordinator.poke()

    def _join(self, group: ConsumerGroup, req: JoinRequest) -> JoinResult:
        config = self._m.cluster.config
        if (
            not config["group.min.session.timeout.ms"]
            <= req.session_timeout_ms
            <= config["group.max.session.timeout.ms"]
        ):
            return JoinResult(ErrorCode.INVALID_SESSION_TIMEOUT, req.member_id)
        unknown = req.member_id == ""
        member_id = str(uuid.uuid4()) if unknown else req.member_id
        if member_id not in group.members and len(group.members) >= int(config["group.consumer.max.size"]):
            return JoinResult(ErrorCode.GROUP_MAX_SIZE_REACHED)
        classic_members = [m for m in group.members.values() if m.classic is not None]
        names = [name for name, _ in req.protocols]
        supported = req.protocol_type == PROTOCOL_TYPE and bool(names)
        if supported and classic_members:
            supported = any(all(n in dict(m.classic.protocols) for m in classic_members) for n in names)  # type: ignore[union-attr]
        if not supported:  # errors past the session timeout's check carry no member id, as in Kafka
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        if unknown and req.instance_id is None and req.require_known_member_id:
            return JoinResult(ErrorCode.MEMBER_ID_REQUIRED, member_id)
        try:
            subscription = decode_subscription(req.protocols[0][1])
        except DecodeError:
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        now = self._coordinator.now()
        member: ConsumerMember
        replaced: ConsumerMember | None = None
        if req.instance_id is None:
            member = group.members.get(member_id) or ConsumerMember(member_id)
        else:
            existing = group.static_member(req.instance_id)
            if existing is None:
                member = ConsumerMember(member_id, instance_id=req.instance_id)
            elif existing.member_id == member_id:
                member = existing
            elif unknown:
                replaced = existing
                # the instance comes back under a new member id: it takes the old one's place and partitions
                target = group.target.pop(existing.member_id, None)
                group.remove(existing.member_id)
                member = ConsumerMember(
                    member_id, instance_id=req.instance_id, member_epoch=0, previous_member_epoch=0,
                    assigned=existing.assigned,
                    subscribed_topic_names=existing.subscribed_topic_names,
                    subscribed_topic_regex=existing.subscribed_topic_regex,
                )  # fmt: skip
                if target is not None:
                    group.target[member_id] = target
            else:
                return JoinResult(ErrorCode.FENCED_INSTANCE_ID)
        topics = tuple(sorted(set(subscription.topics)))
        updated = ConsumerMember(
            member.member_id,
            instance_id=member.instance_id,
            rack_id=subscription.get("rack_id") or member.rack_id,
            client_id=req.client_id,
            client_host=req.client_host,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            subscribed_topic_names=topics,
            subscribed_topic_regex=None,
            server_assignor=None,
            state=member.state,
            member_epoch=member.member_epoch,
            previous_member_epoch=member.previous_member_epoch,
            assigned=member.assigned,
            pending_revocation=member.pending_revocation,
            rebalance_deadline=member.rebalance_deadline,
            rebalance_deadline_epoch=member.rebalance_deadline_epoch,
            classic=ClassicProtocol(req.session_timeout_ms, tuple(req.protocols)),
        )
        fresh = replaced is None and member.member_id not in group.members
        bump = fresh or topics != member.subscribed_topic_names
        group.put(updated)
        if self._m.refresh_metadata(group):
            bump = True
        if bump:
            group.group_epoch += 1
            log.info("consumer group %s: group epoch %d (classic member %s)", group.group_id, group.group_epoch,
                     member_id)  # fmt: skip
        if group.group_epoch > group.assignment_epoch:
            self._m.assign(group)
            group.assigned_at = now
        owned = [(a.topic, list(a.partitions)) for a in subscription.get("owned_partitions") or []]
        owned_ids = [(topic_id, sorted(parts)) for topic_id, parts in self._ids(owned).items()]
        after = self._m.reconcile(group, updated, owned_ids, now)
        after.sync_deadline = now + max(req.rebalance_timeout_ms, 0) / 1000  # its SyncGroup must follow
        first = req.protocols[0][0]
        if replaced is not None and replaced.classic is None and self._downgrade_allowed(group):
            # it replaced the last member of the new protocol: a classic group again, with no rebalance
            self.downgrade(group, rebalance=False)
        return JoinResult(ErrorCode.NONE, after.member_id, after.member_epoch, PROTOCOL_TYPE, first, "", [])

    def sync(self, group: ConsumerGroup, req: SyncRequest) -> SyncResult:
        from .membership import ConsumerGroupError

        try:
            member = self._member(group, req.member_id, req.instance_id)
        except ConsumerGroupError as exc:
            return SyncResult(exc.code)
        if req.generation_id != member.member_epoch:
            return SyncResult(ErrorCode.ILLEGAL_GENERATION)
        assert member.classic is not None
        first = member.classic.protocols[0][0] if member.classic.protocols else None
        if (req.protocol_type is not None and req.protocol_type != PROTOCOL_TYPE) or (
            req.protocol_name is not None and req.protocol_name != first
        ):
            return SyncResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        if group.group_epoch > member.member_epoch and member.state is not MemberState.UNREVOKED_PARTITIONS:
            self._rejoin_by(member)
            self._coordinator.poke()
            return SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
        member.session_deadline = self._coordinator.now() + self._m.member_session_timeout(member)
        member.sync_deadline = None
        self._m.persist()
        self._coordinator.poke()
        return SyncResult(ErrorCode.NONE, self._encode(member, member.assigned), PROTOCOL_TYPE, first)

    def _waiting_on_unreleased(self, group: ConsumerGroup, member: ConsumerMember) -> bool:
        for topic_id, parts in group.target.get(member.member_id, {}).items():
            have = member.assigned.get(topic_id, frozenset())
            if any(group.current_partition_epoch(topic_id, p) != -1 for p in parts - have):
                return True
        return False

    def heartbeat(self, group: ConsumerGroup, generation_id: int, member_id: str, instance_id: str | None) -> ErrorCode:
        from .membership import ConsumerGroupError

        try:
            member = self._member(group, member_id, instance_id)
        except ConsumerGroupError as exc:
            return exc.code
        if generation_id != member.member_epoch:
            return ErrorCode.ILLEGAL_GENERATION
        member.session_deadline = self._coordinator.now() + self._m.member_session_timeout(member)
        self._coordinator.poke()
        if (
            member.member_epoch < group.group_epoch
            or member.state is MemberState.UNREVOKED_PARTITIONS
            or (member.state is MemberState.UNRELEASED_PARTITIONS and not self._waiting_on_unreleased(group, member))
        ):
            self._rejoin_by(member)
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def _rejoin_by(self, member: ConsumerMember) -> None:
        """Told to rejoin: it must, within its rebalance timeout, or be fenced (Kafka's join timeout)."""
        if member.rebalance_deadline is None:
            member.rebalance_deadline = self._coordinator.now() + max(member.rebalance_timeout_ms, 0) / 1000
            member.rebalance_deadline_epoch = member.member_epoch

    def leave(
        self, group: ConsumerGroup, leaving: list[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[tuple[str, str | None, ErrorCode]]]:
        results: list[tuple[str, str | None, ErrorCode]] = []
        fenced: list[ConsumerMember] = []
        for member_id, instance_id in leaving:
            if instance_id is None:
                member = group.members.get(member_id)
                if member is None:
                    results.append((member_id, instance_id, ErrorCode.UNKNOWN_MEMBER_ID))
                    continue
            else:
                member = group.static_member(instance_id)
                if member is None:
                    results.append((member_id, instance_id, ErrorCode.UNKNOWN_MEMBER_ID))
                    continue
                if member_id and member.member_id != member_id:
                    results.append((member_id, instance_id, ErrorCode.FENCED_INSTANCE_ID))
                    continue
            results.append((member_id, instance_id, ErrorCode.NONE))
            fenced.append(member)
        for member in fenced:
            if self._m.groups.get(group.group_id) is group and member.member_id in group.members:
                log.info("consumer group %s: classic member %s left", group.group_id, member.member_id)
                self._m.fence(group, member, "left (LeaveGroup)")
        self._m.persist()
        self._coordinator.poke()
        return ErrorCode.NONE, results
