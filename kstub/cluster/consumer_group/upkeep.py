"""A consumer group coordinator's upkeep of its groups (a base of `ConsumerMembership`): subscriptions and
the target assignment, timers, the offsets rules, deletion, and the groups kept in a data directory."""

from __future__ import annotations

import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kstub.cluster.acls import AclOperation, ResourceType
from kstub.protocol import ErrorCode

from .model import ConsumerGroup, ConsumerGroupError, ConsumerGroupState, ConsumerMember, MemberState

if TYPE_CHECKING:
    from kstub.cluster.coordinator import GroupCoordinator
    from kstub.cluster.model import ClusterState

log = logging.getLogger("kstub.groups")


def compile_regex(pattern: str) -> re.Pattern[str]:
    """A subscription's regular expression. Kafka uses RE2/J; Python's `re` accepts a superset
    (backreferences, lookarounds) and spells a few classes differently (\\p{...})."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConsumerGroupError(
            ErrorCode.INVALID_REGULAR_EXPRESSION,
            f"SubscribedTopicRegex `{pattern}` is not a valid regular expression: {exc}.",
        ) from None


class GroupUpkeep:
    """What `ConsumerMembership` does besides answering heartbeats."""

    _coordinator: GroupCoordinator
    groups: dict[str, ConsumerGroup]
    next_cleanup: float | None
    _saved: str | None

    @property
    def cluster(self) -> ClusterState:
        return self._coordinator.cluster

    def _conf(self, name: str) -> int:
        return int(self.cluster.config[name])

    @property
    def assignors(self) -> list[str]:
        from .assignors import ASSIGNORS  # the assignors, the persistence: imported at first use

        value = self.cluster.config["group.consumer.assignors"]
        names = value if isinstance(value, list) else str(value).split(",")
        return [n.strip() for n in names if n.strip() in ASSIGNORS]

    def fence(self, group: ConsumerGroup, member: ConsumerMember, why: str) -> None:  # ConsumerMembership's
        raise NotImplementedError

    def member_session_timeout(self, member: ConsumerMember) -> float:  # ConsumerMembership's
        raise NotImplementedError

    # --- subscriptions and the target assignment ---------------------------------------

    def member_topics(self, member: ConsumerMember) -> set[str]:
        """The topics a member subscribes to: its names, and the topics its regex matches now."""
        topics = set(member.subscribed_topic_names)
        if member.subscribed_topic_regex:
            pattern = compile_regex(member.subscribed_topic_regex)
            matched = (t for t in self.cluster.topics if pattern.fullmatch(t))  # Java's matches(): all of it
            acls = self.cluster.acls
            # as Kafka: only the topics the member's principal may describe (no authorizer: all)
            topics.update(
                t for t in matched if acls.authorize(member.principal, member.acl_host, AclOperation.DESCRIBE,
                                                     ResourceType.TOPIC, t)
            )  # fmt: skip
        return topics

    def subscription_metadata(self, group: ConsumerGroup) -> dict[str, tuple[uuid.UUID, int]]:
        names: set[str] = set()
        for m in group.members.values():
            names |= self.member_topics(m)
        out = {}
        for name in sorted(names):
            topic = self.cluster.topics.get(name)
            if topic is not None:
                out[name] = (topic.topic_id, len(topic.partitions))
        return out

    def preferred_assignor(self, group: ConsumerGroup) -> str:
        votes = Counter(m.server_assignor for m in group.members.values() if m.server_assignor)
        if votes:
            return max(votes, key=lambda name: votes[name])
        assignors = self.assignors
        return assignors[0] if assignors else "uniform"

    def assign(self, group: ConsumerGroup) -> None:
        from .assignors import ASSIGNORS, AssignmentSpec

        metadata = group.subscription_metadata
        spec = AssignmentSpec(
            subscriptions={
                m.member_id: frozenset(t for t in self.member_topics(m) if t in metadata)
                for m in group.members.values()
            },
            topics=metadata,
            previous=dict(group.target),
        )
        name = self.preferred_assignor(group)
        group.target = ASSIGNORS[name](spec)
        group.assignment_epoch = group.group_epoch
        log.info("consumer group %s: target assignment at epoch %d (%s)", group.group_id, group.group_epoch, name)

    # --- timers ----------------------------------------------------------------------

    def deadlines(self, serving: set[str] | None = None) -> list[float]:
        return [d for g in self.groups.values() if serving is None or g.group_id in serving for d in g.deadlines()]

    def fire(self, group: ConsumerGroup, now: float) -> None:
        for member in list(group.members.values()):
            if self.groups.get(group.group_id) is not group:
                return  # fencing a member turned it back into a classic group
            if member.session_deadline is not None and now >= member.session_deadline:
                self.fence(group, member, "session expired")
            elif member.sync_deadline is not None and now >= member.sync_deadline:
                self.fence(group, member, "did not send its SyncGroup within its rebalance timeout")
            elif (
                member.rebalance_deadline is not None
                and now >= member.rebalance_deadline
                and member.state is MemberState.UNREVOKED_PARTITIONS
                and member.member_epoch == member.rebalance_deadline_epoch
            ):
                self.fence(group, member, "did not revoke its partitions within the rebalance timeout")
            elif (
                member.classic is not None
                and member.rebalance_deadline is not None
                and now >= member.rebalance_deadline
            ):
                # told to rejoin (REBALANCE_IN_PROGRESS), a classic member did not in time (a JoinGroup clears it)
                self.fence(group, member, "did not rejoin within its rebalance timeout")
            elif member.rebalance_deadline is not None and now >= member.rebalance_deadline:
                member.rebalance_deadline = None  # it revoked in time: nothing to fire

    def cleanup(self, now: float, has_offsets: Callable[[str], bool]) -> None:
        """As Kafka's periodic cleanup: an empty consumer group with no committed offsets goes."""
        interval = self._conf("offsets.retention.check.interval.ms") / 1000
        if self.next_cleanup is None:
            self.next_cleanup = now + interval
        elif now >= self.next_cleanup:
            self.next_cleanup = now + interval
            for group_id, group in list(self.groups.items()):
                if not group.members and not has_offsets(group_id):
                    del self.groups[group_id]
                    log.info("consumer group %s: removed (empty, with no offsets)", group_id)

    def load(self, group: ConsumerGroup, now: float) -> None:
        """The group's coordinator moved: its members' sessions start afresh there."""
        for member in group.members.values():
            member.session_deadline = now + self.member_session_timeout(member)
            if member.rebalance_deadline is not None:
                member.rebalance_deadline = now + max(member.rebalance_timeout_ms, 0) / 1000
            if member.sync_deadline is not None:
                member.sync_deadline = now + max(member.rebalance_timeout_ms, 0) / 1000

    # --- offsets, describe, delete ---------------------------------------------------

    def validate_commit(self, group: ConsumerGroup, member_id: str, member_epoch: int, api_version: int) -> None:
        if member_epoch < 0 and not group.members:
            return
        member = group.members.get(member_id)
        if member is None:
            raise ConsumerGroupError(ErrorCode.UNKNOWN_MEMBER_ID)
        if member.classic is not None:
            # a classic member commits with its generation: its member epoch (Kafka's rule for mixed groups)
            if member_epoch != member.member_epoch:
                raise ConsumerGroupError(ErrorCode.ILLEGAL_GENERATION)
            return
        if api_version < 9:
            raise ConsumerGroupError(ErrorCode.UNSUPPORTED_VERSION)
        if member_epoch != member.member_epoch:
            raise ConsumerGroupError(ErrorCode.STALE_MEMBER_EPOCH)

    def validate_fetch(self, group: ConsumerGroup, member_id: str | None, member_epoch: int) -> None:
        if member_id is None and member_epoch < 0:
            return
        member = group.members.get(member_id or "")
        if member is None:
            raise ConsumerGroupError(ErrorCode.UNKNOWN_MEMBER_ID)
        if member_epoch != member.member_epoch:
            raise ConsumerGroupError(ErrorCode.STALE_MEMBER_EPOCH)

    def delete(self, group_id: str) -> ErrorCode:
        group = self.groups[group_id]
        if group.state is not ConsumerGroupState.EMPTY:
            return ErrorCode.NON_EMPTY_GROUP
        del self.groups[group_id]
        self.persist()
        return ErrorCode.NONE

    def reset(self) -> None:
        self.groups.clear()
        self.persist()

    # --- a data directory (--data-dir) ---------------------------------------------------

    def persist(self) -> None:
        """Save the groups if their saved state changed (a store that keeps them: kstub/cluster/disk_store.py)."""
        store = self.cluster.store
        if not store.keeps_consumer_groups:
            return
        docs, text = self._saved_form()
        if text != self._saved:
            store.save_consumer_groups(docs)
            self._saved = text

    def _saved_form(self) -> tuple[list[dict[str, Any]], str]:
        """The groups as saved (persist.py), and as text, compared with the last save to know what changed."""
        import json

        from .persist import group_doc

        docs = [group_doc(g) for _, g in sorted(self.groups.items())]
        return docs, json.dumps(docs, separators=(",", ":"), sort_keys=True)

    def restore(self, docs: list[dict[str, Any]]) -> None:
        """The groups a previous run saved: loaded as at a coordinator move (their members' timers afresh)."""
        if not docs:
            return
        from .persist import from_doc

        now = self._coordinator.now()
        for doc in docs:
            group = from_doc(doc)
            self.groups[group.group_id] = group
            self.load(group, now)
        log.info("restored %d consumer group(s)", len(docs))
        self._saved = self._saved_form()[1]
