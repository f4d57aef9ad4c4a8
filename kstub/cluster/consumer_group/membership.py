"""ConsumerGroupHeartbeat's rules (KIP-848): join, heartbeat, reconcile, leave, fencing and timers.

One heartbeat does, in Kafka's order: validate the request (INVALID_REQUEST,
UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION, before any group is looked
at); find or create the group (epoch 0 creates it; otherwise
GROUP_ID_NOT_FOUND); find or create the member (a dynamic member by its id,
a static one by its instance id: UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
UNRELEASED_INSTANCE_ID, FENCED_MEMBER_EPOCH); update its subscription; bump
the group epoch when a subscription or the subscribed topics changed (topics
created, deleted or grown; regular expressions are resolved against the
topics at every heartbeat); compute a new target assignment with the group's
assignor when the group epoch moved past it; move the member one step towards
its target (reconcile.py); restart its session timer, and (while it must
revoke partitions) its rebalance timer.

A member that leaves (epoch -1), whose session expires, or that does not
revoke in time is fenced: removed, and the group epoch bumped; the next
heartbeat of any member computes the new target. A static member leaving
with epoch -2 keeps its partitions (and its place) until its session expires
or its instance id rejoins with epoch 0 under a new member id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from kstub.protocol import ErrorCode

from .model import (  # noqa: F401  (ConsumerGroupError: re-exported)
    JOIN_EPOCH,
    LEAVE_EPOCH,
    STATIC_LEAVE_EPOCH,
    Assignment,
    ConsumerGroup,
    ConsumerGroupError,
    ConsumerGroupState,
    ConsumerMember,
    MemberState,
)
from .upkeep import GroupUpkeep, compile_regex

if TYPE_CHECKING:
    from kstub.cluster.coordinator import GroupCoordinator

    from .classic import ClassicInConsumerGroups
    from .reconcile import Owned

log = logging.getLogger("kstub.groups")

#: ConsumerGroupHeartbeat from v1: the member id is the consumer's own, and required
CONSUMER_GENERATED_MEMBER_ID_VERSION = 1


@dataclass
class HeartbeatRequest:
    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: list[str] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    topic_partitions: Owned = None
    client_id: str = ""
    client_host: str = ""
    api_version: int = 1
    #: who sent it and from where (as ACL host entries name it): regexes resolve to the topics it may describe
    principal: str = "User:ANONYMOUS"
    acl_host: str = ""


@dataclass
class HeartbeatResult:
    error: ErrorCode = ErrorCode.NONE
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: Assignment | None = None


class ConsumerMembership(GroupUpkeep):
    """The consumer groups of one coordinator and the rules of their protocol."""

    def __init__(self, coordinator: GroupCoordinator) -> None:
        self._coordinator = coordinator
        self.groups: dict[str, ConsumerGroup] = {}
        #: the periodic cleanup (offsets.retention.check.interval.ms) that drops empty groups without offsets
        self.next_cleanup: float | None = None
        self._classic: ClassicInConsumerGroups | None = None
        #: the groups as last saved (--data-dir: persist.py), to write only what changed
        self._saved: str | None = None

    @property
    def classic(self) -> ClassicInConsumerGroups:
        """Classic members in consumer groups, and conversions between the two kinds (classic.py; imported at
        first use, as the reconciliation, the assignors and the persistence: most servers never see a group)."""
        classic = self._classic
        if classic is None:
            from .classic import ClassicInConsumerGroups

            classic = self._classic = ClassicInConsumerGroups(self)
        return classic

    def heartbeat_interval_ms(self) -> int:
        return self._conf("group.consumer.heartbeat.interval.ms")

    def session_timeout(self) -> float:
        return self._conf("group.consumer.session.timeout.ms") / 1000

    # --- the request --------------------------------------------------------------

    def validate(self, req: HeartbeatRequest) -> None:
        """Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid, in its order."""

        def invalid(message: str) -> ConsumerGroupError:
            return ConsumerGroupError(ErrorCode.INVALID_REQUEST, message)

        if (
            req.api_version >= CONSUMER_GENERATED_MEMBER_ID_VERSION
            or req.member_epoch > 0
            or req.member_epoch == LEAVE_EPOCH
        ) and req.member_id == "":
            raise invalid("MemberId can't be empty.")
        if req.group_id == "":
            raise invalid("GroupId can't be empty.")
        if req.instance_id == "":
            raise invalid("InstanceId can't be empty.")
        if req.rack_id == "":
            raise invalid("RackId can't be empty.")
        if req.member_epoch == JOIN_EPOCH:
            if req.rebalance_timeout_ms == -1:
                raise invalid("RebalanceTimeoutMs must be provided in first request.")
            if req.topic_partitions is None or req.topic_partitions:
                raise invalid("TopicPartitions must be empty when (re-)joining.")
            if req.subscribed_topic_names is None and req.subscribed_topic_regex is None:
                raise invalid("Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
        elif req.member_epoch == STATIC_LEAVE_EPOCH:
            if req.instance_id is None:
                raise invalid("InstanceId can't be null.")
        elif req.member_epoch < STATIC_LEAVE_EPOCH:
            raise invalid("MemberEpoch is invalid.")
        assignors = self.assignors
        if req.server_assignor is not None and req.server_assignor not in assignors:
            raise ConsumerGroupError(
                ErrorCode.UNSUPPORTED_ASSIGNOR,
                f"ServerAssignor {req.server_assignor} is not supported. Supported assignors: {', '.join(assignors)}.",
            )

    def heartbeat(self, req: HeartbeatRequest, now: float) -> HeartbeatResult:
        try:
            self.validate(req)
            if req.member_epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
                return self._leave(req)
            if req.subscribed_topic_regex:
                compile_regex(req.subscribed_topic_regex)
            return self._heartbeat(req, now)
        except ConsumerGroupError as exc:
            return HeartbeatResult(exc.code, exc.message)
        finally:
            self.persist()
            self._coordinator.poke()

    def group(self, group_id: str) -> ConsumerGroup:
        group = self.groups.get(group_id)
        if group is None:
            if group_id in self._coordinator.groups:
                raise ConsumerGroupError(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a consumer group.")
            raise ConsumerGroupError(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} not found.")
        return group

    def _get_or_create(self, group_id: str, create: bool) -> ConsumerGroup:
        group = self.groups.get(group_id)
        if group is not None:
            return group
        if create and self._coordinator.classic_is_live(group_id):
            # the first member of the new protocol in a live classic group: it becomes a consumer group
            return self.classic.upgrade(self._coordinator.groups[group_id])
        if not create:
            if group_id not in self._coordinator.groups:
                # the heartbeat's own wording (ConsumerGroupDescribe says "Group ... not found.")
                raise ConsumerGroupError(ErrorCode.GROUP_ID_NOT_FOUND, f"Consumer group {group_id} not found.")
            return self.group(group_id)
        # as in Kafka 4.4, a new group's first member joins at epoch 2
        group = ConsumerGroup(group_id, group_epoch=1)
        self.groups[group_id] = group
        log.info("consumer group %s: created", group_id)
        return group

    # --- leaving --------------------------------------------------------------------

    def _leave(self, req: HeartbeatRequest) -> HeartbeatResult:
        group = self.group(req.group_id)
        result = HeartbeatResult(member_id=req.member_id, member_epoch=req.member_epoch)
        if req.instance_id is None:
            member = group.members.get(req.member_id)
            if member is None:
                raise self._unknown_member(req.member_id, group)
            log.info("consumer group %s: member %s left", group.group_id, req.member_id)
            self.fence(group, member, "left")
            return result
        member = self._static_member(group, req.instance_id, req.member_id)
        if req.member_epoch == STATIC_LEAVE_EPOCH:
            log.info("consumer group %s: static member %s left for now", group.group_id, req.member_id)
            group.release(member)
            away = replace(member, member_epoch=STATIC_LEAVE_EPOCH, pending_revocation={}, rebalance_deadline=None)
            group.put(away)
            return HeartbeatResult(member_id=member.member_id, member_epoch=STATIC_LEAVE_EPOCH)
        self.fence(group, member, "left")
        return result

    @staticmethod
    def _unknown_member(member_id: str, group: ConsumerGroup) -> ConsumerGroupError:
        return ConsumerGroupError(
            ErrorCode.UNKNOWN_MEMBER_ID, f"Member {member_id} is not a member of group {group.group_id}."
        )

    @staticmethod
    def _static_member(group: ConsumerGroup, instance_id: str, member_id: str) -> ConsumerMember:
        member = group.static_member(instance_id)
        if member is None:
            raise ConsumerGroupError(ErrorCode.UNKNOWN_MEMBER_ID, f"Instance id {instance_id} is unknown.")
        if member.member_id != member_id:
            raise ConsumerGroupError(
                ErrorCode.FENCED_INSTANCE_ID,
                f"Static member {member_id} with instance id {instance_id} was fenced by member {member.member_id}.",
            )
        return member

    def fence(self, group: ConsumerGroup, member: ConsumerMember, why: str) -> None:
        """Remove a member; the group epoch moves, and the next heartbeat assigns its partitions.
        When only classic members are left, the group may go back to being a classic one instead
        (group.consumer.migration.policy: kstub/cluster/consumer_group/classic.py)."""
        group.remove(member.member_id)
        if self.classic.maybe_downgrade(group):
            return
        group.group_epoch += 1
        log.info(
            "consumer group %s: member %s fenced (%s), group epoch %d", group.group_id, member.member_id, why,
            group.group_epoch,
        )  # fmt: skip

    # --- joining and heartbeating ------------------------------------------------------

    @staticmethod
    def _check_epoch(member: ConsumerMember, received: int, owned: Owned) -> None:
        if received > member.member_epoch:
            raise ConsumerGroupError(
                ErrorCode.FENCED_MEMBER_EPOCH,
                f"The consumer group member has a greater member epoch ({received}) than the one known by the "
                f"group coordinator ({member.member_epoch}). The member must abandon all its partitions and rejoin.",
            )
        if received < member.member_epoch:
            subset = owned is not None and all(
                set(parts) <= member.assigned.get(topic_id, frozenset()) for topic_id, parts in owned
            )
            if received != member.previous_member_epoch or not subset:
                raise ConsumerGroupError(
                    ErrorCode.FENCED_MEMBER_EPOCH,
                    f"The consumer group member has a smaller member epoch ({received}) than the one known by the "
                    f"group coordinator ({member.member_epoch}). The member must abandon all its partitions and "
                    "rejoin.",
                )

    def _member(self, group: ConsumerGroup, req: HeartbeatRequest) -> ConsumerMember:
        joining = req.member_epoch == JOIN_EPOCH
        if req.instance_id is None:
            member = group.members.get(req.member_id)
            if member is None:
                if not joining:
                    raise self._unknown_member(req.member_id, group)
                log.info("consumer group %s: member %s joins", group.group_id, req.member_id)
                return ConsumerMember(req.member_id)
            self._check_epoch(member, req.member_epoch, req.topic_partitions)
            return member
        existing = group.static_member(req.instance_id)
        if joining:
            if existing is None:
                log.info(
                    "consumer group %s: static member %s (%s) joins", group.group_id, req.member_id, req.instance_id
                )
                return ConsumerMember(req.member_id, instance_id=req.instance_id)
            if existing.member_epoch != STATIC_LEAVE_EPOCH:
                raise ConsumerGroupError(
                    ErrorCode.UNRELEASED_INSTANCE_ID,
                    f"Static member {req.member_id} with instance id {req.instance_id} cannot join the group "
                    f"because the instance id is owned by {existing.member_id} member.",
                )
            # the instance comes back under a new member id: it takes the place (and partitions) of the old one
            target = group.target.pop(existing.member_id, None)
            group.remove(existing.member_id)
            member = replace(existing, member_id=req.member_id, member_epoch=0, previous_member_epoch=0)
            if target is not None:
                group.target[req.member_id] = target
            group.put(member)
            log.info(
                "consumer group %s: static member %s rejoins as %s", group.group_id, existing.member_id, req.member_id
            )
            return member
        member = self._static_member(group, req.instance_id, req.member_id)
        self._check_epoch(member, req.member_epoch, req.topic_partitions)
        return member

    def _heartbeat(self, req: HeartbeatRequest, now: float) -> HeartbeatResult:
        group = self._get_or_create(req.group_id, req.member_epoch == JOIN_EPOCH)
        if len(group.members) >= self._conf("group.consumer.max.size") and req.member_id not in group.members:
            raise ConsumerGroupError(
                ErrorCode.GROUP_MAX_SIZE_REACHED,
                f"The consumer group has reached its maximum capacity of {self._conf('group.consumer.max.size')} "
                "members.",
            )
        member = self._member(group, req)
        updated = replace(
            member,
            instance_id=req.instance_id if req.instance_id is not None else member.instance_id,
            rack_id=req.rack_id if req.rack_id is not None else member.rack_id,
            rebalance_timeout_ms=(
                req.rebalance_timeout_ms if req.rebalance_timeout_ms != -1 else member.rebalance_timeout_ms
            ),
            server_assignor=req.server_assignor if req.server_assignor is not None else member.server_assignor,
            subscribed_topic_names=(
                tuple(sorted(set(req.subscribed_topic_names)))
                if req.subscribed_topic_names is not None
                else member.subscribed_topic_names
            ),
            subscribed_topic_regex=(
                req.subscribed_topic_regex if req.subscribed_topic_regex is not None else member.subscribed_topic_regex
            ),
            client_id=req.client_id,
            client_host=req.client_host,
            principal=req.principal,
            acl_host=req.acl_host,
        )
        if updated.subscribed_topic_regex == "":
            updated.subscribed_topic_regex = None
        bump = (
            updated.subscribed_topic_names != member.subscribed_topic_names
            or updated.subscribed_topic_regex != member.subscribed_topic_regex
        )
        group.put(updated)
        metadata = self.subscription_metadata(group)
        if metadata != group.subscription_metadata:
            group.subscription_metadata = metadata
            bump = True
        if bump:
            group.group_epoch += 1
            log.info("consumer group %s: group epoch %d", group.group_id, group.group_epoch)
        interval = self._conf("group.consumer.assignment.interval.ms") / 1000
        if group.group_epoch > group.assignment_epoch and (
            group.assigned_at is None or now - group.assigned_at >= interval
        ):
            # Kafka 4.4 computes a new target at most once per group.consumer.assignment.interval.ms;
            # meanwhile members reconcile towards the last one, and the group shows Assigning
            self.assign(group)
            group.assigned_at = now
        after = self.reconcile(group, updated, req.topic_partitions, now)
        full = req.member_epoch == JOIN_EPOCH or (
            req.rebalance_timeout_ms != -1
            and (req.subscribed_topic_names is not None or req.subscribed_topic_regex is not None)
            and req.topic_partitions is not None
        )
        changed = after.assigned != member.assigned
        return HeartbeatResult(
            member_id=after.member_id,
            member_epoch=after.member_epoch,
            heartbeat_interval_ms=self.heartbeat_interval_ms(),
            assignment=after.assigned if full or changed else None,
        )

    def reconcile(self, group: ConsumerGroup, updated: ConsumerMember, owned: Owned, now: float) -> ConsumerMember:
        """Move `updated` (already in the group) one step towards its target; restart its timers."""
        from .reconcile import reconcile

        metadata = group.subscription_metadata
        target = group.target.get(updated.member_id, {})
        subscribed = {metadata[t][0] for t in self.member_topics(updated) if t in metadata}
        group.release(updated)
        after = reconcile(updated, group.assignment_epoch, target, subscribed, group.current_partition_epoch, owned)
        if after.state is MemberState.UNREVOKED_PARTITIONS:
            if after.rebalance_deadline is None or after.rebalance_deadline_epoch != after.member_epoch:
                after.rebalance_deadline = now + max(after.rebalance_timeout_ms, 0) / 1000
                after.rebalance_deadline_epoch = after.member_epoch
        else:
            after.rebalance_deadline = None
        after.session_deadline = now + self.member_session_timeout(after)
        group.put(after)
        return after

    def member_session_timeout(self, member: ConsumerMember) -> float:
        """A member's session timeout: the group's, or what a classic member asked for in its JoinGroup."""
        if member.classic is not None:
            return member.classic.session_timeout_ms / 1000
        return self.session_timeout()

    def refresh_metadata(self, group: ConsumerGroup) -> bool:
        """Recompute the subscribed topics' metadata; True if it changed (the group epoch must move)."""
        metadata = self.subscription_metadata(group)
        if metadata != group.subscription_metadata:
            group.subscription_metadata = metadata
            return True
        return False
