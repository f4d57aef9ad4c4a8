"""Where a cluster keeps its state: memory (`StateStore`), or a data directory (`DiskStore`).

The cluster model calls its store at a few points: a new replica log
(`new_log`), a metadata change (`save_metadata`: topics, configs,
assignments, leader epochs), a deleted topic, producer ids handed out, and
committed group offsets (`save_offsets` / `load_offsets`, the persistence
hook for the group coordinator). `StateStore` keeps nothing beyond the
process (the fast test fixture); `DiskStore` (``kstub serve --data-dir DIR``)
writes it all under DIR and `recover` brings it back on start.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .log import Log

if TYPE_CHECKING:
    from .model import Cluster, Partition, Topic

#: (topic, partition) -> (offset, leader epoch, metadata)
GroupOffsets = dict[tuple[str, int], tuple[int, int, str | None]]


class StateStore:
    """In memory: logs keep their bytes in memory and nothing outlives the process."""

    data_dir = None
    fsync_on_ack = False

    def new_log(self, cluster: Cluster, partition: Partition, broker_id: int) -> Log:
        """A new, empty log for `broker_id`'s replica of `partition`."""
        return Log(config=partition.topic.config, clock=cluster.now_ms)

    def broker_dir(self, broker_id: int) -> Path | None:
        """The folder holding `broker_id`'s logs (None in memory)."""
        return None

    def recover(self, cluster: Cluster) -> None:
        """Bring back what a previous run left (called once the brokers are registered)."""

    def save_metadata(self, cluster: Cluster) -> None:
        """Topics, their configs, assignments and leader epochs, or dynamic broker configs changed."""

    def save_producer_ids(self, cluster: Cluster) -> None:
        """InitProducerId handed out an id or bumped an epoch."""

    def delete_topic(self, cluster: Cluster, topic: Topic) -> None:
        """`topic` was deleted: drop its logs."""
        for partition in topic.partitions:
            for lg in partition.logs.values():
                lg.delete()
        self.save_metadata(cluster)

    def save_offsets(self, group: str, offsets: Mapping[tuple[str, int], tuple[int, int, str | None] | None]) -> None:
        """Committed offsets of `group`; a value of None deletes that partition's offset."""

    def delete_group(self, group: str) -> None:
        """Forget every committed offset of `group`."""

    def load_offsets(self) -> dict[str, GroupOffsets]:
        """Every group's committed offsets, as saved."""
        return {}

    async def sync_offsets(self) -> None:
        """Make saved offsets durable (with fsync.on.ack: before answering OffsetCommit)."""

    def close(self, cluster: Cluster) -> None:
        """The server stops."""
