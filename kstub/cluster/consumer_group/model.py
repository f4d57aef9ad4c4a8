"""Consumer groups (KIP-848) as data: the group epoch, the target assignment, members and their epochs.

Assignments are kept by topic id, as the protocol carries them: a mapping
topic id → frozenset of partition indexes. A group's state follows from its
members, as in Kafka:

    Empty        no members
    Assigning    the group epoch moved past the target assignment's epoch
    Reconciling  some member is not yet at the target epoch, or is revoking/waiting
    Stable       every member is at the target epoch with its target partitions
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field

from kstub.protocol import ErrorCode

#: topic id → partitions
Assignment = dict[uuid.UUID, frozenset[int]]

#: ConsumerGroupHeartbeat's special epochs
JOIN_EPOCH = 0
LEAVE_EPOCH = -1
STATIC_LEAVE_EPOCH = -2


class ConsumerGroupState(enum.Enum):
    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


class MemberState(enum.Enum):
    STABLE = "stable"
    UNREVOKED_PARTITIONS = "unrevoked_partitions"
    UNRELEASED_PARTITIONS = "unreleased_partitions"


@dataclass(frozen=True)
class ClassicProtocol:
    """A member of a consumer group that speaks the classic protocol (JoinGroup, SyncGroup, Heartbeat):
    what its JoinGroup said (Kafka's ClassicMemberMetadata)."""

    session_timeout_ms: int
    #: (name, metadata) as in its JoinGroup, the first preferred
    protocols: tuple[tuple[str, bytes], ...]


@dataclass(eq=False)
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    #: the principal of its last heartbeat and its address as ACLs name it (regex topics are filtered by them)
    principal: str = "User:ANONYMOUS"
    acl_host: str = ""
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: tuple[str, ...] = ()
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    state: MemberState = MemberState.STABLE
    member_epoch: int = 0
    previous_member_epoch: int = 0
    assigned: Assignment = field(default_factory=dict)
    pending_revocation: Assignment = field(default_factory=dict)
    #: when the member is fenced unless it heartbeats (group.consumer.session.timeout.ms)
    session_deadline: float | None = None
    #: while it holds partitions to revoke: when it is fenced unless it revoked them
    rebalance_deadline: float | None = None
    rebalance_deadline_epoch: int = -1
    #: set for a member that uses the classic protocol (a mixed group: kstub/cluster/consumer_group/classic.py)
    classic: ClassicProtocol | None = None
    #: a classic member that joined: when it is fenced unless it sent its SyncGroup (Kafka's sync timer)
    sync_deadline: float | None = None

    def owned(self) -> Assignment:
        """Partitions the member holds: assigned, or still to revoke."""
        out = dict(self.assigned)
        for topic_id, parts in self.pending_revocation.items():
            out[topic_id] = out.get(topic_id, frozenset()) | parts
        return out

    def deadlines(self) -> list[float]:
        return [d for d in (self.session_deadline, self.rebalance_deadline, self.sync_deadline) if d is not None]


@dataclass(eq=False)
class ConsumerGroup:
    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id → member id
    #: the target assignment of each member, computed at `assignment_epoch`
    target: dict[str, Assignment] = field(default_factory=dict)
    #: the subscribed topics as last seen: name → (topic id, partition count)
    subscription_metadata: dict[str, tuple[uuid.UUID, int]] = field(default_factory=dict)
    #: (topic id, partition) → epoch of the member that holds it (assigned or revoking)
    partition_epochs: dict[tuple[uuid.UUID, int], int] = field(default_factory=dict)
    #: when the target assignment was last computed (trio clock)
    assigned_at: float | None = None

    @property
    def state(self) -> ConsumerGroupState:
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch != self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        for m in self.members.values():
            if m.state is not MemberState.STABLE or m.member_epoch != self.assignment_epoch:
                return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    def static_member(self, instance_id: str) -> ConsumerMember | None:
        member_id = self.static_members.get(instance_id)
        return None if member_id is None else self.members.get(member_id)

    def current_partition_epoch(self, topic_id: uuid.UUID, partition: int) -> int:
        return self.partition_epochs.get((topic_id, partition), -1)

    def release(self, member: ConsumerMember) -> None:
        """Forget the partitions `member` holds (before it changes or leaves)."""
        for topic_id, parts in member.owned().items():
            for p in parts:
                self.partition_epochs.pop((topic_id, p), None)

    def hold(self, member: ConsumerMember) -> None:
        for topic_id, parts in member.owned().items():
            for p in parts:
                self.partition_epochs[(topic_id, p)] = member.member_epoch

    def put(self, member: ConsumerMember) -> None:
        old = self.members.get(member.member_id)
        if old is not None:
            self.release(old)
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id
        self.hold(member)

    def remove(self, member_id: str) -> ConsumerMember | None:
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        self.release(member)
        if member.instance_id is not None and self.static_members.get(member.instance_id) == member_id:
            del self.static_members[member.instance_id]
        self.target.pop(member_id, None)
        return member

    def subscribed_topic_names(self) -> set[str]:
        return {t for m in self.members.values() for t in m.subscribed_topic_names}

    def deadlines(self) -> list[float]:
        return [d for m in self.members.values() for d in m.deadlines()]


class ConsumerGroupError(Exception):
    def __init__(self, code: ErrorCode, message: str | None = None) -> None:
        super().__init__(message or code.name)
        self.code = code
        self.message = message
