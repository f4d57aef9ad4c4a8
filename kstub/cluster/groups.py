"""Consumer groups as data: states, members, generations, committed offsets.

A group moves through Kafka's states (classic group protocol):

    Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
      ▲                 ▲      │                                     │ leader's SyncGroup
      │                 │      └──no members left──▶ Empty           ▼
      └─last member─────┴──────── join, leave, death ───────────── Stable

and Dead once it is deleted or its last offsets expire. The rules that move
it live in kstub/cluster/coordinator.py; this module holds the state and the
small questions asked of it (who is a member, which protocol wins the vote,
when does a member expire).

JoinGroup and SyncGroup are long-polls: a parked request waits on a `_Reply`
(a Trio event with a value) that a later request or a timer answers.
Consumer protocol metadata and assignments are opaque bytes here, except that
a consumer group's subscribed topics are decoded (as Kafka does) for
OffsetDelete and offset expiry.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import trio

from kstub.protocol import DecodeError, ErrorCode
from kstub.protocol.consumer_protocol import PROTOCOL_TYPE as CONSUMER_PROTOCOL
from kstub.protocol.consumer_protocol import decode_subscription

log = logging.getLogger("kstub.groups")

T = TypeVar("T")

#: Kafka's GroupCoordinator.NewMemberJoinTimeoutMs: how long a member that
#: joined but never got a JoinGroup answer is kept (it cannot heartbeat).
NEW_MEMBER_JOIN_TIMEOUT = 300.0


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"

    @classmethod
    def parse(cls, name: str) -> GroupState | None:
        """A state by name, case-insensitively (as ListGroups' states filter)."""
        for state in cls:
            if state.value.lower() == name.lower():
                return state
        return None


@dataclass(slots=True)
class JoinResult:
    error: ErrorCode
    member_id: str = ""
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    members: list[tuple[str, str | None, bytes]] = field(default_factory=list)
    skip_assignment: bool = False


@dataclass(slots=True)
class SyncResult:
    error: ErrorCode
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


class _Reply(Generic[T]):
    """The answer to a parked request: set once, awaited once."""

    __slots__ = ("_event", "_value")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value: T | None = None

    def set(self, value: T) -> None:
        if not self._event.is_set():
            self._value = value
            self._event.set()

    async def wait(self) -> T:
        await self._event.wait()
        assert self._value is not None
        return self._value

    @classmethod
    def ready(cls, value: T) -> _Reply[T]:
        reply: _Reply[T] = cls()
        reply.set(value)
        return reply


@dataclass(eq=False)
class Member:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    session_timeout: float  # seconds
    rebalance_timeout: float  # seconds
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    last_heartbeat: float
    assignment: bytes = b""
    is_new: bool = False
    join_reply: _Reply[JoinResult] | None = None
    sync_reply: _Reply[SyncResult] | None = None

    def metadata(self, protocol: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        return self.protocols == protocols

    def vote(self, candidates: Iterable[str]) -> str:
        wanted = set(candidates)
        return next(name for name, _ in self.protocols if name in wanted)

    def expiry(self) -> float | None:
        """When the member is dead unless it heartbeats (Kafka's shouldKeepAlive)."""
        if self.join_reply is not None:
            # A parked JoinGroup keeps a known member alive; a brand-new one
            # (which cannot heartbeat) only for NEW_MEMBER_JOIN_TIMEOUT.
            return self.last_heartbeat + NEW_MEMBER_JOIN_TIMEOUT if self.is_new else None
        if self.sync_reply is not None:
            return None  # the pending-sync deadline covers it
        return self.last_heartbeat + self.session_timeout

    def answer_parked(self, error: ErrorCode) -> None:
        """Answer the member's parked JoinGroup and SyncGroup, if any, with `error`."""
        if self.join_reply is not None:
            self.join_reply.set(JoinResult(error, self.member_id))
            self.join_reply = None
        if self.sync_reply is not None:
            self.sync_reply.set(SyncResult(error))
            self.sync_reply = None


@dataclass(slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_time: float  # trio clock
    expire_at: float | None = None  # an explicit retention (OffsetCommit v1-4)


TopicPartition = tuple[str, int]


class GroupError(Exception):
    """A request the coordinator refuses as a whole, with Kafka's error code."""

    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.name)
        self.code = code


@dataclass(eq=False)
class Group:
    group_id: str
    state: GroupState
    state_since: float
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id → member id
    pending_members: dict[str, float] = field(default_factory=dict)  # member id → expiry
    pending_sync: set[str] = field(default_factory=set)
    new_member_added: bool = False
    join_deadline: float | None = None
    initial_delay: tuple[float, float] | None = None  # (configured delay, remaining), while it applies
    sync_deadline: float | None = None
    subscribed_topics: frozenset[str] | None = None
    offsets: dict[TopicPartition, CommittedOffset] = field(default_factory=dict)
    #: TxnOffsetCommit's offsets by producer id, visible in `offsets` once the transaction commits
    pending_txn_offsets: dict[int, dict[TopicPartition, CommittedOffset]] = field(default_factory=dict)

    # --- members -----------------------------------------------------------

    def is_(self, *states: GroupState) -> bool:
        return self.state in states

    def transition(self, state: GroupState, now: float) -> None:
        log.info("group %s: %s -> %s (generation %d)", self.group_id, self.state.value, state.value, self.generation_id)
        self.state = state
        self.state_since = now

    @property
    def rebalance_timeout(self) -> float:
        return max((m.rebalance_timeout for m in self.members.values()), default=0.0)

    def supported_protocols(self) -> Counter[str]:
        return Counter(name for m in self.members.values() for name, _ in m.protocols)

    def supports_protocols(self, protocol_type: str, names: list[str]) -> bool:
        if self.is_(GroupState.EMPTY):
            return bool(protocol_type) and bool(names)
        counts = self.supported_protocols()
        size = len(self.members)
        return self.protocol_type == protocol_type and any(counts[n] == size for n in names)

    def select_protocol(self) -> str:
        """Kafka's vote: each member picks its first protocol that every member supports."""
        counts = self.supported_protocols()
        size = len(self.members)
        first = next(iter(self.members.values()))
        candidates = [name for name, _ in first.protocols if counts[name] == size]
        votes = Counter(m.vote(candidates) for m in self.members.values())
        return max(candidates, key=lambda name: (votes[name], -candidates.index(name)))

    def add(self, member: Member) -> None:
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id
        self.pending_members.pop(member.member_id, None)

    def remove(self, member_id: str) -> Member | None:
        member = self.members.pop(member_id, None)
        if (
            member is not None
            and member.instance_id is not None
            and self.static_members.get(member.instance_id) == member_id
        ):
            del self.static_members[member.instance_id]
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        self.pending_members.pop(member_id, None)
        self.pending_sync.discard(member_id)
        return member

    def validate_member(self, member_id: str, instance_id: str | None) -> ErrorCode | None:
        """Kafka's validateCurrentMember: the static mapping first, then the member id."""
        if instance_id is not None:
            current = self.static_members.get(instance_id)
            if current is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if current != member_id:
                log.info(
                    "group %s: fenced %s (instance %s now belongs to %s)",
                    self.group_id,
                    member_id,
                    instance_id,
                    current,
                )
                return ErrorCode.FENCED_INSTANCE_ID
            return None
        if member_id not in self.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        return None

    def all_joined(self) -> bool:
        return not self.pending_members and all(m.join_reply is not None for m in self.members.values())

    def member_list(self) -> list[tuple[str, str | None, bytes]]:
        protocol = self.protocol_name or ""
        return [(m.member_id, m.instance_id, m.metadata(protocol)) for m in self.members.values()]

    def current_join_result(self, member: Member) -> JoinResult:
        return JoinResult(
            ErrorCode.NONE,
            member.member_id,
            self.generation_id,
            self.protocol_type,
            self.protocol_name,
            self.leader_id or "",
            self.member_list() if member.member_id == self.leader_id else [],
        )

    def compute_subscribed_topics(self) -> frozenset[str] | None:
        """The union of a consumer group's subscriptions; None if not known (Kafka's rule)."""
        if self.protocol_type != CONSUMER_PROTOCOL or self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            try:
                topics.update(decode_subscription(member.metadata(self.protocol_name)).topics)
            except DecodeError:
                log.warning("group %s: undecodable subscription from %s", self.group_id, member.member_id)
                return None
        return frozenset(topics)

    def is_subscribed_to(self, topic: str) -> bool:
        return self.subscribed_topics is None or topic in self.subscribed_topics

    # --- timers --------------------------------------------------------------

    def deadlines(self) -> Iterator[float]:
        """Every pending timer; exactly those the coordinator's `_fire` acts on (so none can spin)."""
        if self.join_deadline is not None and self.is_(GroupState.PREPARING_REBALANCE):
            yield self.join_deadline
        if self.sync_deadline is not None and self.is_(GroupState.COMPLETING_REBALANCE, GroupState.STABLE):
            yield self.sync_deadline
        yield from self.pending_members.values()
        for member in self.members.values():
            expiry = member.expiry()
            if expiry is not None:
                yield expiry


@dataclass(slots=True)
class GroupSummary:
    """What DescribeGroups tells about a group."""

    group_id: str
    state: GroupState
    protocol_type: str
    protocol_data: str
    members: list[Member]
