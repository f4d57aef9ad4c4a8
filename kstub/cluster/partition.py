"""One partition: its replicas, leader, leader epoch and ISR, and the high watermark they make.

Each replica has its own `Log`. The leader appends; followers copy from it
(kstub/cluster/replication.py) and report how far they got, as Kafka's replica
fetchers do; the leader tracks each follower (`ReplicaState`), moves followers
in and out of the ISR and advances the high watermark to what every ISR member
has. Long-polls and acks=all produces wait on events registered with
`Partition.add_waiter`, set when the high watermark or leadership changes.
Leadership changes are the controller's (kstub/cluster/controller.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from kstub.protocol import ErrorCode
from kstub.protocol.records import ProducedBatch
from kstub.protocol.records.control import Marker

from .config import TopicSettings
from .log import Log
from .producers import PartitionProducers

if TYPE_CHECKING:
    from .model import ClusterState, Topic

log = logging.getLogger("kstub.cluster")


@dataclass(slots=True)
class AppendResult:
    error: ErrorCode
    base_offset: int
    log_append_time: int = -1
    #: the offset after the appended (or, for a retried batch, the original) data:
    #: acks=all waits for the high watermark to reach it
    end_offset: int = -1


@dataclass(slots=True)
class ReplicaState:
    """What a partition tracks about one of its replicas, beside the replica's log."""

    #: the high watermark as this replica knows it (a follower learns it when it fetches)
    hw: int = 0
    #: the leader epoch this replica, as a follower, last reconciled its log with (truncation)
    synced_epoch: int = -1
    # The leader's view of this replica as a follower (Kafka's Replica), reset on every leader change:
    #: the log end offset it last reported (-1: not since this leader took over)
    leo: int = -1
    #: when it last had everything the leader had (Kafka's lastCaughtUpTimeMs)
    caught_up_ms: int = 0
    last_fetch_ms: int = 0
    last_fetch_leader_leo: int = -1


@dataclass(eq=False)
class Partition:
    topic: Topic
    index: int
    replicas: list[int]
    leader: int
    leader_epoch: int = 0
    isr: list[int] = field(default_factory=list)
    logs: dict[int, Log] = field(default_factory=dict)
    states: dict[int, ReplicaState] = field(default_factory=dict)
    high_watermark: int = 0
    deleted: bool = False
    #: a reassignment in progress (kstub/cluster/reassignment.py): replicas joining, and leaving once it completes
    adding_replicas: list[int] = field(default_factory=list)
    removing_replicas: list[int] = field(default_factory=list)
    _waiters: set[trio.Event] = field(default_factory=set, repr=False)

    def __repr__(self) -> str:
        return f"<Partition {self.name} leader={self.leader} epoch={self.leader_epoch} isr={self.isr}>"

    @property
    def name(self) -> str:
        return f"{self.topic.name}-{self.index}"

    @property
    def cluster(self) -> ClusterState:
        return self.topic.cluster

    @property
    def leader_log(self) -> Log:
        return self.logs[self.leader]

    @property
    def producers(self) -> PartitionProducers:
        """The idempotent producers' state as the leader's log has it."""
        return self.leader_log.producers

    @property
    def log_start_offset(self) -> int:
        return self.leader_log.log_start_offset

    @property
    def last_stable_offset(self) -> int:
        """The LSO: the first offset of the earliest transaction not yet decided and replicated, or the high
        watermark; read_committed consumers see the data below it (Kafka's UnifiedLog.lastStableOffset).

        When the log start passed that offset (DeleteRecords, retention), Kafka moves it to the log start
        as found in the log: the first offset of the batch that holds it, so the LSO may stay below the
        log start.
        """
        leader_log = self.leader_log
        hw = self.high_watermark
        first = leader_log.producers.first_unstable_offset(hw)
        if first is None:
            return hw
        if first < leader_log.log_start_offset:
            first = leader_log.batch_start(leader_log.log_start_offset)
        return first if first < hw else hw

    @property
    def log_end_offset(self) -> int:
        return self.leader_log.log_end_offset

    @property
    def leader_epoch_start_offset(self) -> int:
        """Where the current leader's epoch began in its log."""
        log = self.leader_log
        for epoch, start in reversed(log.epochs):
            if epoch <= self.leader_epoch:
                return start
        return log.log_start_offset

    def min_insync_replicas(self) -> int:
        """The effective min.insync.replicas: never more than the replicas there are (Kafka 4, KIP-966)."""
        return min(self.settings.get_int("min.insync.replicas"), len(self.replicas))

    # --- the high watermark and those waiting on it -----------------------------

    def advance_high_watermark(self) -> None:
        """Move the high watermark up to what every ISR member has, and wake waiters.

        As in Kafka, the leader's high watermark never goes back; a follower's
        offset counts from its first fetch under this leader.
        """
        leader_log = self.leader_log
        hw = leader_log.log_end_offset
        for r in self.isr:
            if r != self.leader:
                hw = min(hw, self.states[r].leo)
        hw = max(hw, leader_log.log_start_offset)
        if hw > self.high_watermark:
            self.high_watermark = hw
            self.states[self.leader].hw = hw
            self.notify()
            if len(self.isr) > 1:
                # followers learn the new high watermark on their next fetch: let it happen now
                brokers = self.cluster.brokers
                for r in self.isr:
                    if r != self.leader and self.states[r].hw < hw:
                        brokers[r].replication.wake(self)

    def notify(self) -> None:
        for event in self._waiters:
            event.set()
        self._waiters.clear()

    def add_waiter(self, event: trio.Event) -> None:
        self._waiters.add(event)

    def remove_waiter(self, event: trio.Event) -> None:
        self._waiters.discard(event)

    def commit_status(self, end_offset: int, broker_id: int, leader_epoch: int) -> ErrorCode | None:
        """Kafka's checkEnoughReplicasReachOffset for an acks=all append ending at `end_offset`.

        None while the data is not committed yet; NOT_LEADER_OR_FOLLOWER once
        `broker_id` no longer leads (in the epoch of the append);
        NOT_ENOUGH_REPLICAS_AFTER_APPEND if it got committed by an ISR that
        shrank below min.insync.replicas meanwhile.
        """
        if self.deleted or self.leader != broker_id or self.leader_epoch != leader_epoch:
            return ErrorCode.NOT_LEADER_OR_FOLLOWER
        if self.high_watermark < end_offset:
            return None
        if len(self.isr) < self.min_insync_replicas():
            return ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        return ErrorCode.NONE

    def config(self, name: str) -> str:
        """A topic setting as the leader's broker sees it."""
        return self.topic.config(name, self.leader)

    @property
    def settings(self) -> TopicSettings:
        """The topic's settings as the leader's broker sees them, read typed (`get_int`, `get_list`...)."""
        return self.topic.settings(self.leader)

    # --- the leader's side of replication ---------------------------------------

    def append(self, batches: list[ProducedBatch], now_ms: int) -> AppendResult:
        """Append a produce request's batches for this partition (already validated).

        Idempotent batches are checked against the leader's producer state
        first: a retried batch is answered with its original offset and not
        stored again. Under LogAppendTime the broker stamps the batches with
        `now_ms`.
        """
        log_append_time = self.config("message.timestamp.type") == "LogAppendTime"
        append_time = now_ms if log_append_time else -1
        leader_log = self.leader_log
        for batch in batches:
            if batch.producer_id >= 0:
                verdict = leader_log.producers.check(
                    batch.producer_id,
                    batch.producer_epoch,
                    batch.base_sequence,
                    batch.offset_count,
                    batch.is_transactional,
                )
                if verdict.error:
                    return AppendResult(verdict.error, -1)
                if verdict.duplicate_of is not None:
                    end = verdict.duplicate_of + batch.offset_count
                    return AppendResult(ErrorCode.NONE, verdict.duplicate_of, append_time, end)
        return self._append_checked(batches, now_ms, append_time)

    def append_marker(self, batch: ProducedBatch, marker: Marker, now_ms: int) -> AppendResult:
        """Append a transaction marker (a control batch) the coordinator wrote, after Kafka's checks of it."""
        error = self.leader_log.producers.check_marker(
            marker.producer_id, marker.producer_epoch, marker.coordinator_epoch
        )
        if error:
            return AppendResult(error, -1)
        log_append_time = self.config("message.timestamp.type") == "LogAppendTime"
        return self._append_checked([batch], now_ms, now_ms if log_append_time else -1)

    def _append_checked(self, batches: list[ProducedBatch], now_ms: int, append_time: int) -> AppendResult:
        leader_log = self.leader_log
        log_append_time = append_time >= 0
        leo_before = leader_log.log_end_offset
        active_before = leader_log.active_segment
        first = -1
        for batch in batches:
            if log_append_time:
                batch.set_log_append_time(now_ms)
            base = leader_log.append(batch, self.leader_epoch)
            if first < 0:
                first = base
        if leader_log.active_segment is not active_before:
            self.cluster.cleaner.rolled(self)  # a closed segment may be cleanable (compacted topics)
        if len(self.replicas) > 1:
            self._leader_appended(leo_before, now_ms)
        self.advance_high_watermark()
        return AppendResult(ErrorCode.NONE, first, append_time, leader_log.log_end_offset)

    def _leader_appended(self, leo_before: int, now_ms: int) -> None:
        """Followers that had everything were caught up until now; wake their fetchers."""
        brokers = self.cluster.brokers
        leader_replication = brokers[self.leader].replication
        for r in self.replicas:
            if r == self.leader:
                continue
            if r in self.isr and self.states[r].leo >= leo_before:
                self.states[r].caught_up_ms = now_ms
                leader_replication.wake_isr_check()
            brokers[r].replication.wake(self)

    def follower_fetched(self, replica: int, fetch_offset: int, log_end_offset: int, now_ms: int) -> None:
        """A follower fetched from `fetch_offset` and now ends at `log_end_offset` (Kafka's updateFollowerFetchState).

        Updates when it was last caught up, lets it back into the ISR once it
        has the high watermark and the current epoch's start, and advances the
        high watermark.
        """
        st = self.states[replica]
        leader_leo = self.leader_log.log_end_offset
        if fetch_offset >= leader_leo or log_end_offset >= leader_leo:
            st.caught_up_ms = now_ms
        elif st.last_fetch_leader_leo >= 0 and fetch_offset >= st.last_fetch_leader_leo:
            st.caught_up_ms = max(st.caught_up_ms, st.last_fetch_ms)
        st.last_fetch_leader_leo = leader_leo
        st.last_fetch_ms = now_ms
        st.leo = log_end_offset
        if (
            replica not in self.isr
            and self.cluster.brokers[replica].alive
            and log_end_offset >= self.high_watermark
            and log_end_offset >= self.leader_epoch_start_offset
        ):
            self.isr = [r for r in self.replicas if r in self.isr or r == replica]
            self._save_state()
            self.cluster.brokers[self.leader].stats.isr_expands += 1
            log.info("%s: broker %d caught up, ISR expanded to %s", self.name, replica, self.isr)
            self.notify()
            if self.adding_replicas or self.removing_replicas:
                from .reassignment import progress

                progress(self.cluster, self)  # the new replicas may all be in sync now: the switch
                if replica not in self.replicas or self.leader < 0:
                    return
        self.advance_high_watermark()

    def lagging_followers(self) -> list[int]:
        """ISR followers that do not have everything the leader has."""
        leader_leo = self.leader_log.log_end_offset
        return [r for r in self.isr if r != self.leader and self.states[r].leo < leader_leo]

    def shrink_isr(self, replica: int) -> None:
        """Drop a follower from the ISR (never the last member) and advance the high watermark."""
        if replica not in self.isr or len(self.isr) == 1:
            return
        self.isr = [r for r in self.isr if r != replica]
        self._save_state()
        if self.leader >= 0:
            self.cluster.brokers[self.leader].stats.isr_shrinks += 1
            self.advance_high_watermark()
        self.notify()

    def _save_state(self) -> None:
        """Leader, epoch and ISR are cluster metadata: the store keeps them (with --data-dir)."""
        self.topic.cluster.store.save_metadata(self.topic.cluster)

    def restore_replica_states(self, now_ms: int) -> None:
        """Replica states for a partition recovered from disk (a restart of the whole cluster).

        Every replica kept its log; the leader counts what each in-sync
        follower has as replicated, so the high watermark comes back where the
        logs agree. Followers reconcile their logs with the leader's epochs
        again before fetching (synced_epoch -1), as after any restart.
        """
        for r in self.replicas:
            in_sync = r in self.isr
            self.states[r] = ReplicaState(
                synced_epoch=self.leader_epoch if r == self.leader else -1,
                leo=self.logs[r].log_end_offset if in_sync else -1,
                caught_up_ms=now_ms if in_sync else 0,
            )

    def become_leader(self, leader: int, isr: list[int], now_ms: int) -> None:
        """A new leader (or none: -1) and ISR, in a new leader epoch.

        The new leader starts from the high watermark it knew as a follower
        and records the epoch's start in its log, as Kafka does; it knows
        nothing of its followers until they fetch.
        """
        self.leader = leader
        self.leader_epoch += 1
        self.isr = list(isr)
        self._save_state()
        if leader >= 0:
            leader_log = self.logs[leader]
            leader_log.start_epoch(self.leader_epoch)
            self.states[leader].synced_epoch = self.leader_epoch
            self.high_watermark = min(self.states[leader].hw, leader_log.log_end_offset)
            for r, st in self.states.items():
                if r != leader:
                    st.leo = -1
                    st.caught_up_ms = now_ms if r in self.isr else 0
                    st.last_fetch_leader_leo = -1
            self.advance_high_watermark()
        self.notify()


async def await_commits(
    appends: Sequence[tuple[Partition, int, int]], broker_id: int, deadline: float
) -> list[ErrorCode]:
    """Wait until each acks=all append (partition, end offset, leader epoch of the append) made on
    `broker_id` is committed or fails (`Partition.commit_status`), on one event that the partitions'
    high watermark and leadership changes set, as Kafka's DelayedProduce; each append's final code
    (REQUEST_TIMED_OUT for those still waiting at `deadline`, in trio time)."""
    results: list[ErrorCode | None] = [None] * len(appends)
    waiting = list(range(len(appends)))
    while True:
        still = []
        for i in waiting:
            partition, end_offset, leader_epoch = appends[i]
            status = partition.commit_status(end_offset, broker_id, leader_epoch)
            if status is None:
                still.append(i)
            else:
                results[i] = status
        waiting = still
        if not waiting:
            break
        if trio.current_time() >= deadline:
            for i in waiting:
                results[i] = ErrorCode.REQUEST_TIMED_OUT
            break
        event = trio.Event()
        partitions = [appends[i][0] for i in waiting]
        for partition in partitions:
            partition.add_waiter(event)
        try:
            with trio.move_on_at(deadline):
                await event.wait()
        finally:
            for partition in partitions:
                partition.remove_waiter(event)
    return [r if r is not None else ErrorCode.REQUEST_TIMED_OUT for r in results]
