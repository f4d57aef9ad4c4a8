"""Writing a transaction marker to a partition (a minimal stand-in; the log side's version replaces it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from kstub.protocol import ErrorCode
from kstub.protocol.records.control import Marker, control_batch
from kstub.protocol.records.produce import ProducedBatch

from .model import ClusterError

if TYPE_CHECKING:
    from .model import ClusterState


async def write_marker(state: ClusterState, topic: str, partition: int, marker: Marker) -> int:
    """Append `marker` on the partition's current leader, replicated as a produce with acks=all is; its offset.
    Raises ClusterError with Kafka's code."""
    p = state.partition(topic, partition)
    if p is None:
        raise ClusterError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"{topic}-{partition} does not exist")
    if p.leader < 0:
        raise ClusterError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"{topic}-{partition} has no leader")
    now = state.now_ms()
    data = control_batch(
        marker.producer_id,
        marker.producer_epoch,
        commit=marker.commit,
        coordinator_epoch=marker.coordinator_epoch,
        timestamp_ms=now,
    )
    # producer_id -1: the marker is not a data batch of the producer's sequence (the bytes carry the id)
    batch = ProducedBatch(bytearray(data), 2, 1, now, now)
    leader, epoch = p.leader, p.leader_epoch
    result = p.append([batch], now)
    if result.error:
        raise ClusterError(result.error, f"cannot write a marker to {topic}-{partition}")
    while True:
        status = p.commit_status(result.end_offset, leader, epoch)
        if status == ErrorCode.NONE:
            return result.base_offset
        if status is not None:
            raise ClusterError(status, f"marker on {topic}-{partition} not replicated")
        event = trio.Event()
        p.add_waiter(event)
        try:
            await event.wait()
        finally:
            p.remove_waiter(event)
