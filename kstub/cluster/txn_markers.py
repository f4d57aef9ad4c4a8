"""Writing transaction markers: what Kafka's WriteTxnMarkers does on a partition's leader.

The transaction coordinator ends a transaction by writing a COMMIT or ABORT
marker (a control batch, protocol/records/control.py) to every partition the
transaction wrote to. `write_marker` appends one on the partition's current
leader, after Kafka's checks of it (an older producer epoch is
INVALID_PRODUCER_EPOCH, an older coordinator epoch TRANSACTION_COORDINATOR_FENCED),
and waits until it is replicated as a produce with acks=all is (the ISR must
hold min.insync.replicas; the wait ends with the high watermark past the
marker, a leadership change, or request.timeout.ms). The followers copy the
marker like any batch; every replica's log updates its transaction state from
it (kstub/cluster/producers.py), so the last stable offset and the aborted
transactions index are the same on whichever replica leads next.
"""

from __future__ import annotations

import logging

import trio

from kstub.protocol import ErrorCode
from kstub.protocol.records import ProducedBatch
from kstub.protocol.records.control import Marker, control_batch

from .model import ClusterError, ClusterState
from .partition import await_commits

log = logging.getLogger("kstub.transactions")

#: how long a marker waits to be replicated: Kafka's WriteTxnMarkers appends with request.timeout.ms
MARKER_TIMEOUT_MS = 30_000


def marker_batch(marker: Marker, timestamp_ms: int) -> ProducedBatch:
    """The control batch of `marker`, as the log appends it."""
    data = control_batch(
        marker.producer_id,
        marker.producer_epoch,
        commit=marker.commit,
        coordinator_epoch=marker.coordinator_epoch,
        timestamp_ms=timestamp_ms,
    )
    return ProducedBatch(
        data=bytearray(data),
        magic=2,
        offset_count=1,
        first_timestamp=timestamp_ms,
        max_timestamp=timestamp_ms,
        producer_id=marker.producer_id,
        producer_epoch=marker.producer_epoch,
        base_sequence=-1,
        is_transactional=True,
    )


async def write_marker(state: ClusterState, topic: str, partition: int, marker: Marker) -> int:
    """Append `marker` on the partition's current leader, replicated as a produce with acks=all is; its offset.

    Raises ClusterError with Kafka's code (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS,
    UNKNOWN_TOPIC_OR_PARTITION, INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND, REQUEST_TIMED_OUT, KAFKA_STORAGE_ERROR).
    """
    p = state.partition(topic, partition)
    if p is None or p.deleted:
        raise ClusterError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")
    leader = p.leader
    if leader < 0 or not state.brokers[leader].running:
        raise ClusterError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"{p.name} has no running leader")
    if len(p.isr) < p.min_insync_replicas():
        raise ClusterError(
            ErrorCode.NOT_ENOUGH_REPLICAS,
            f"The size of the current ISR {p.isr} is insufficient to satisfy the "
            f"min.isr requirement of {p.config('min.insync.replicas')} for partition {p.name}",
        )
    now = state.now_ms()
    try:
        result = p.append_marker(marker_batch(marker, now), marker, now)
    except OSError as exc:
        raise ClusterError(ErrorCode.KAFKA_STORAGE_ERROR, f"cannot write the log of {p.name}: {exc}") from exc
    if result.error:
        raise ClusterError(result.error, f"marker {marker} refused by {p.name}")
    leader_epoch = p.leader_epoch
    try:
        await state.store.after_produce([p], -1)  # flush.messages, kstub.fsync.on.ack
    except OSError as exc:
        raise ClusterError(ErrorCode.KAFKA_STORAGE_ERROR, f"cannot sync the log of {p.name}: {exc}") from exc
    deadline = trio.current_time() + MARKER_TIMEOUT_MS / 1000
    (status,) = await await_commits([(p, result.end_offset, leader_epoch)], leader, deadline)
    if status != ErrorCode.NONE:
        raise ClusterError(status, f"marker at {p.name}@{result.base_offset} not replicated: {status.name}")
    log.debug("%s: %s marker of producer %d at %d", p.name, "COMMIT" if marker.commit else "ABORT",
              marker.producer_id, result.base_offset)  # fmt: skip
    return result.base_offset
