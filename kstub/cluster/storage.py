"""Where a cluster keeps its state: memory (`StateStore`, here), or a data directory (`DiskStore`,
kstub/cluster/disk_store.py, with one replica's log files in kstub/cluster/log_files.py).

The cluster model calls its store at a few points: a new replica log
(`new_log`), a metadata change (`save_metadata`: topics, configs,
assignments, leader epochs, dynamic broker configs), a deleted topic,
producer ids handed out, and committed group offsets (`save_offsets` /
`load_offsets`: the persistence hook for the group coordinator).
`StateStore` keeps nothing beyond the process (the fast test fixture);
`DiskStore` (``kstub serve --data-dir DIR``) writes it all under DIR, and
`recover` brings it back on the next start.

Layout of DIR (Kafka's names where Kafka has them)::

    .lock                                  held while a server uses DIR
    meta/cluster.json                      topics, configs, assignments, leader epochs, dynamic configs
    meta/producer-ids.json                 producer ids handed out, and their epochs
    meta/group-offsets.log                 committed group offsets, one JSON line per commit
    meta/transactions.json                 the transactional ids' states (transaction coordinator)
    broker-<id>/<topic>-<partition>/       one replica's log
        00000000000000000000.log           a segment: the batches, byte for byte as stored
        00000000000000000000.index         per batch: offset - segment base (int32), file position (int32)
        00000000000000000000.timeindex     per batch: max timestamp (int64), offset - segment base (int32)
        00000000000000001234.snapshot      producer state (idempotence) as of offset 1234
        leader-epoch-checkpoint            Kafka's text format: 0, count, "epoch start-offset" lines
        log-start-offset                   the log start offset (moved by retention, DeleteRecords)
        partition.metadata                 the topic id, to tell a re-created topic from a stale folder

Kafka's offset index is sparse; ours has one entry per batch (the segment
keeps the same numbers in memory anyway), and the time index one entry per
batch with that batch's max timestamp. Index entries are buffered and
written in blocks: after a crash the index may be behind its log, and
recovery indexes the rest.

Durability follows Kafka's flush settings: by default data is left to the OS
page cache (it survives the process being killed, not the machine losing
power); ``flush.messages`` fsyncs a log after that many messages,
``flush.ms`` when the flush scheduler (``log.flush.scheduler.interval.ms``)
finds a log that long unflushed; ``kstub.fsync.on.ack=true`` (or ``kstub serve
--fsync``) fsyncs a partition's new data before a produce is acknowledged.
Metadata files are always written atomically (temporary file, fsync, rename).

Recovery (`recover`): every segment's index is checked (well-formed, inside
its file, last entry matching the batch header it points to) and rebuilt
from the log when it is not; batches past the last indexed one, and every
batch of a log's last segment, are read and CRC-checked; a torn or corrupt
batch is cut off (with a log line) and any later segment of that log is
dropped. Producer state comes from the newest snapshot plus the batches
after it.

Reads: a fetch reads the byte range of the batches it returns with one
``pread`` per segment, on the Trio thread. Those reads are bounded by the
fetch's max bytes and nearly always served from the page cache (the data was
just written); a worker thread per fetch would cost more than the read and
would have to guard against segments deleted while it runs. fsync, which can
take long, runs in a worker thread (`Log.sync`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .config import TopicSettings
from .log import Log
from .spill import MemoryBudget, SpillingLogStorage

if TYPE_CHECKING:
    from .model import ClusterState, Partition, Topic

log = logging.getLogger("kstub.storage")

#: (topic, partition) -> (offset, leader epoch, metadata)
GroupOffsets = dict[tuple[str, int], tuple[int, int, str | None]]

LONG_MAX = 2**63 - 1


def replica_config(topic: Topic, broker_id: int) -> TopicSettings:
    """The settings of `topic` as the broker holding a replica sees them."""
    return topic.settings(broker_id)


class StateStore:
    """In memory: logs keep their bytes in memory and nothing outlives the process.

    Memory is bounded by ``kstub.memory.budget.bytes`` (read when the first
    log is made): beyond it the oldest batches spill to a temporary directory
    (kstub/cluster/spill.py), removed when the store closes. One budget for
    every replica of every broker of the cluster.
    """

    data_dir: Path | None = None
    fsync_on_ack = False
    memory: MemoryBudget | None = None

    def memory_budget(self, cluster: ClusterState) -> MemoryBudget:
        """The store's memory budget (made on first use from the cluster's settings)."""
        if self.memory is None:
            spill_dir = cluster.config["kstub.memory.spill.dir"] or None
            self.memory = MemoryBudget(cluster.config["kstub.memory.budget.bytes"], spill_dir)
        return self.memory

    def new_log(self, cluster: ClusterState, partition: Partition, broker_id: int) -> Log:
        """A new, empty log for `broker_id`'s replica of `partition`."""
        name = f"{partition.topic.name}-{partition.index}-broker-{broker_id}"
        storage = SpillingLogStorage(self.memory_budget(cluster), name, group=partition)
        return Log(config=replica_config(partition.topic, broker_id), clock=cluster.now_ms, storage=storage)

    def broker_dir(self, broker_id: int) -> Path | None:
        """The folder holding `broker_id`'s logs (None in memory)."""
        return None

    def recover(self, cluster: ClusterState) -> None:
        """Bring back what a previous run left (called once the brokers are registered)."""

    def save_metadata(self, cluster: ClusterState) -> None:
        """Topics, their configs, assignments and leader epochs, or dynamic broker configs changed."""

    def save_producer_ids(self, cluster: ClusterState) -> None:
        """InitProducerId handed out an id or bumped an epoch."""

    def delete_topic(self, cluster: ClusterState, topic: Topic) -> None:
        """`topic` was deleted (and is no longer in `cluster.topics`): drop its logs."""
        self.save_metadata(cluster)
        for partition in topic.partitions:
            for lg in partition.logs.values():
                lg.delete()

    async def after_produce(self, partitions: list[Partition], acks: int) -> None:
        """Flush what the durability settings ask for after a produce request appended to `partitions`."""

    async def background(self, cluster: ClusterState) -> None:
        """Periodic work (the flush scheduler); returns at once if there is none."""

    def save_offsets(self, group: str, offsets: Mapping[tuple[str, int], tuple[int, int, str | None] | None]) -> None:
        """Committed offsets of `group`; a value of None deletes that partition's offset."""

    def delete_group(self, group: str) -> None:
        """Forget every committed offset of `group`."""

    def load_offsets(self) -> dict[str, GroupOffsets]:
        """Every group's committed offsets, as saved."""
        return {}

    async def sync_offsets(self) -> None:
        """Make saved offsets durable (with fsync.on.ack: call before answering OffsetCommit)."""

    #: whether the store keeps consumer groups (KIP-848) across restarts (a data directory does)
    keeps_consumer_groups = False

    def save_consumer_groups(self, groups: list[dict]) -> None:
        """Every consumer group's state (kstub/cluster/consumer_group/persist.py), replacing what was saved."""

    def load_consumer_groups(self) -> list[dict]:
        """The consumer groups, as saved."""
        return []

    def save_transactions(self, transactions: list[dict]) -> None:
        """Every transactional id's state (kstub/cluster/transactions), replacing what was saved."""

    def load_transactions(self) -> list[dict]:
        """The transactional ids' states, as saved."""
        return []

    def close(self, cluster: ClusterState) -> None:
        """The server stops: spilled files and their directory go."""
        if self.memory is not None:
            self.memory.close()
