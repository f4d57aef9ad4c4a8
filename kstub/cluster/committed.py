"""Committed offsets: validating and storing commits, fetching, deleting and expiring them.

A commit goes to the group's coordinator (kstub/cluster/coordinator.py), which
owns the groups; this unit holds Kafka's rules for offsets: which commits a
group accepts (generation, member, the "simple" group of a consumer without
group management), how long an offset lives (offsets.retention.minutes, or
OffsetCommit v2-4's own retention), which may be deleted (OffsetDelete: only
for topics the group does not consume), and the periodic cleanup that expires
them. Commits are written through to the cluster's store (``--data-dir``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kstub.protocol import ErrorCode
from kstub.protocol.consumer_protocol import PROTOCOL_TYPE as CONSUMER_PROTOCOL

from .coordinator_part import CoordinatorPart
from .groups import CommittedOffset, Group, GroupError, GroupState, TopicPartition

if TYPE_CHECKING:
    from .coordinator import GroupCoordinator

log = logging.getLogger("kstub.groups")


class CommittedOffsets(CoordinatorPart):
    """Kafka's rules for the offsets the coordinator's groups commit."""

    def __init__(self, coordinator: GroupCoordinator) -> None:
        super().__init__(coordinator)
        self._next_cleanup: float | None = None

    def _remove_group(self, group: Group, why: str) -> None:
        self._coordinator.remove_group(group, why)

    # --- the periodic cleanup (offsets.retention.check.interval.ms) ---------------------------

    def next_deadline(self) -> float | None:
        return self._next_cleanup

    def tick(self, now: float) -> None:
        interval = self.cluster.config["offsets.retention.check.interval.ms"] / 1000
        if self._next_cleanup is None:
            self._next_cleanup = now + interval
        elif now >= self._next_cleanup:
            self.expire_offsets(now)
            self._next_cleanup = now + interval

    def validate_commit(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None) -> Group:
        """The group a commit may go to, else GroupError (Kafka's validateOffsetCommit).

        A commit with generation -1 and no member id comes from a consumer that
        does not use group management (assign()) or from an admin tool: it
        creates a "simple" group if there is none, and is accepted only while
        the group is empty.
        """
        return self._commit_group(group_id, generation_id, member_id, instance_id, transactional=False)

    def validate_txn_commit(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None) -> Group:
        """The group a TxnOffsetCommit may go to, else GroupError (Kafka's checks with isTransactional):
        as `validate_commit`, but neither an anonymous commit to a group with members nor one during
        a rebalance is refused."""
        return self._commit_group(group_id, generation_id, member_id, instance_id, transactional=True)

    def _commit_group(
        self, group_id: str, generation_id: int, member_id: str, instance_id: str | None, *, transactional: bool
    ) -> Group:
        now = self._now()
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                raise GroupError(ErrorCode.ILLEGAL_GENERATION)
            group = self._create_group(group_id, now)
        if group.is_(GroupState.DEAD):
            raise GroupError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        if generation_id < 0 and group.is_(GroupState.EMPTY):
            return group
        if generation_id >= 0 or member_id or instance_id is not None:
            error = group.validate_member(member_id, instance_id)
            if error is not None:
                raise GroupError(error)
            if generation_id != group.generation_id:
                raise GroupError(ErrorCode.ILLEGAL_GENERATION)
        elif not transactional and not group.is_(GroupState.EMPTY):
            raise GroupError(ErrorCode.UNKNOWN_MEMBER_ID)
        if transactional:
            return group
        if group.is_(GroupState.COMPLETING_REBALANCE):
            raise GroupError(ErrorCode.REBALANCE_IN_PROGRESS)
        member = group.members.get(member_id)
        if member is not None:
            member.last_heartbeat = now
        return group

    def store_offset(
        self,
        group: Group,
        topic: str,
        partition: int,
        offset: int,
        leader_epoch: int,
        metadata: str,
        retention_ms: int = -1,
        commit_timestamp_ms: int = -1,
    ) -> None:
        """Store a commit. OffsetCommit v1 may date it (`commit_timestamp_ms`, wall clock), v2-4 give it a
        retention of its own; both only change when it expires."""
        now = self._now()
        committed_at = now
        if commit_timestamp_ms >= 0:
            committed_at = now - (self.cluster.now_ms() - commit_timestamp_ms) / 1000
        expire_at = now + retention_ms / 1000 if retention_ms >= 0 else None
        group.offsets[(topic, partition)] = CommittedOffset(offset, leader_epoch, metadata, committed_at, expire_at)
        self.cluster.store.save_offsets(group.group_id, {(topic, partition): (offset, leader_epoch, metadata)})

    # --- transactional offsets (TxnOffsetCommit) -----------------------------------------------

    def store_pending(
        self, group: Group, producer_id: int, topic: str, partition: int, offset: int, leader_epoch: int, metadata: str
    ) -> None:
        """A TxnOffsetCommit's offset: pending until its transaction's marker (`complete_transaction`)."""
        pending = group.pending_txn_offsets.setdefault(producer_id, {})
        pending[(topic, partition)] = CommittedOffset(offset, leader_epoch, metadata, self._now())

    def has_pending(self, group_id: str, tp: TopicPartition) -> bool:
        """Whether a transaction holds an offset of `tp` not yet committed (OffsetFetch require_stable)."""
        group = self.groups.get(group_id)
        return group is not None and any(tp in offsets for offsets in group.pending_txn_offsets.values())

    def complete_transaction(self, producer_id: int, offsets_partition: int, commit: bool) -> None:
        """The marker of `producer_id`'s transaction reached __consumer_offsets partition `offsets_partition`:
        its pending offsets of the groups there become committed (commit) or are dropped (abort)."""
        for group in list(self.groups.values()):
            if self._coordinator.partition_for(group.group_id) != offsets_partition:
                continue
            pending = group.pending_txn_offsets.pop(producer_id, None)
            if not pending or not commit:
                continue
            now = self._now()
            for tp, o in pending.items():
                group.offsets[tp] = CommittedOffset(o.offset, o.leader_epoch, o.metadata, now)
            self.cluster.store.save_offsets(
                group.group_id, {tp: (o.offset, o.leader_epoch, o.metadata) for tp, o in pending.items()}
            )

    def _forget_offsets(self, group: Group, partitions: list[TopicPartition]) -> None:
        """Drop committed offsets (OffsetDelete, expiry, a deleted topic), in memory and in the store."""
        for tp in partitions:
            group.offsets.pop(tp, None)
        if partitions:
            self.cluster.store.save_offsets(group.group_id, dict.fromkeys(partitions))

    def restore_offsets(self, saved: dict[str, dict[TopicPartition, tuple[int, int, str | None]]]) -> None:
        """Committed offsets the store kept from a previous run (--data-dir): each group comes back empty."""
        now = self._now()
        for group_id, offsets in saved.items():
            if not offsets:
                continue
            group = self.groups.get(group_id) or self._create_group(group_id, now)
            for tp, (offset, leader_epoch, metadata) in offsets.items():
                group.offsets[tp] = CommittedOffset(offset, leader_epoch, metadata or "", now)
        if saved:
            log.info("restored the committed offsets of %d group(s)", len(saved))

    def committed(self, group_id: str) -> dict[TopicPartition, CommittedOffset]:
        group = self.groups.get(group_id)
        return {} if group is None else group.offsets

    def delete_offsets(
        self, group_id: str, partitions: list[TopicPartition]
    ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        """OffsetDelete: only for partitions the group does not consume (Kafka's handleDeleteOffsets)."""
        group = self.groups.get(group_id)
        if group is None or group.is_(GroupState.DEAD):
            return ErrorCode.GROUP_ID_NOT_FOUND, {}
        errors: dict[TopicPartition, ErrorCode] = {}
        if group.is_(GroupState.EMPTY):
            eligible = partitions
        elif group.protocol_type == CONSUMER_PROTOCOL:
            eligible = [tp for tp in partitions if not group.is_subscribed_to(tp[0])]
            errors.update(
                (tp, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC) for tp in partitions if group.is_subscribed_to(tp[0])
            )
        else:
            return ErrorCode.NON_EMPTY_GROUP, {}
        self._forget_offsets(group, eligible)
        for tp in eligible:
            errors[tp] = ErrorCode.NONE
        self._drop_if_unused(group)
        return ErrorCode.NONE, errors

    def _drop_if_unused(self, group: Group) -> None:
        unused = not group.offsets and not group.pending_members and not group.pending_txn_offsets
        if group.is_(GroupState.EMPTY) and unused:
            self._remove_group(group, "empty, with no offsets")

    def expire_offsets(self, now: float | None = None) -> None:
        """Kafka's periodic cleanup: expire old offsets, then drop empty groups that have none left.

        An empty consumer group's offsets expire offsets.retention.minutes after
        it became empty; a simple group's, that long after each commit; a stable
        consumer group's, that long after the commit, for topics it no longer
        subscribes to. An explicit retention (OffsetCommit v2-4) wins.
        """
        now = self._now() if now is None else now
        retention = self.cluster.config["offsets.retention.minutes"] * 60.0
        for group in list(self.groups.values()):
            expired = [tp for tp, o in group.offsets.items() if self._offset_expired(group, tp[0], o, now, retention)]
            self._forget_offsets(group, expired)
            if expired:
                log.info("group %s: %d committed offsets expired", group.group_id, len(expired))
            self._drop_if_unused(group)

    @staticmethod
    def _offset_expired(group: Group, topic: str, o: CommittedOffset, now: float, retention: float) -> bool:
        if group.protocol_type is not None and group.is_(GroupState.EMPTY):
            since = group.state_since
        elif group.protocol_type is None or (
            group.protocol_type == CONSUMER_PROTOCOL
            and group.subscribed_topics is not None
            and group.is_(GroupState.STABLE)
            and topic not in group.subscribed_topics
        ):
            since = o.commit_time
        else:
            return False
        return now >= o.expire_at if o.expire_at is not None else now - since >= retention

    def on_topic_deleted(self, topic: str) -> None:
        """A deleted topic takes its committed offsets with it (Kafka's onPartitionsDeleted)."""
        for group in list(self.groups.values()):
            self._forget_offsets(group, [tp for tp in group.offsets if tp[0] == topic])
            self._drop_if_unused(group)
