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
    HIGHEST_VERSION,
    PROTOCOL_TYPE,
    decode_assignment,
    decode_subscription,
    encode_assignment,
)

from ..groups import Group, GroupState, JoinResult, Member, SyncResult
from .model import Assignment, ClassicProtocol, ConsumerGroup, ConsumerMember, MemberState

if TYPE_CHECKING:
    from ..coordinator import GroupCoordinator
    from ..membership import JoinRequest, SyncRequest
    from .membership import ConsumerMembership

log = logging.getLogger("kstub.groups")

UPGRADE_POLICIES = ("upgrade", "bidirectional")
DOWNGRADE_POLICIES = ("downgrade", "bidirectional")


def _error(code: ErrorCode, message: str | None = None) -> Exception:
    from .membership import ConsumerGroupError

    return ConsumerGroupError(code, message)


class ClassicInConsumerGroups:
    """The classic protocol's requests to consumer groups, and the conversions (see the module's doc)."""

    def __init__(self, membership: ConsumerMembership) -> None:
        self._m = membership

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
