"""A replica's log: record batches kept as the bytes producers sent.

The log is a FIFO of *chunks*: a v2 record batch, or a legacy (magic 0/1)
message set from one produce request. Each chunk covers a contiguous range of
offsets. Appending patches the base offset (and leader epoch) in place and
keeps the bytes; reading returns the stored chunks as they are, starting with
the one that holds the requested offset, as Kafka does. Nothing here decodes
individual records, except the timestamp lookup inside one chunk.

Data leaves the log only by moving the log start offset (retention,
DeleteRecords) or by truncation on a follower, never because it was read.

Each replica's log also keeps what Kafka keeps beside it: the leader epoch
cache (`epochs`: where each leader epoch began) and the idempotent producers'
state, rebuilt from the log's own batches, so that a replica that becomes
leader deduplicates exactly the batches it holds.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from kstub.protocol.records import ProducedBatch, first_record_at

from .producers import PartitionProducers


@dataclass(slots=True)
class Chunk:
    base_offset: int
    last_offset: int
    max_timestamp: int
    leader_epoch: int
    data: bytes | bytearray
    # the idempotent producer that wrote it (-1: none), to rebuild producer state
    producer_id: int = -1
    producer_epoch: int = -1
    base_sequence: int = -1

    @property
    def size(self) -> int:
        return len(self.data)


class Log:
    def __init__(self, start_offset: int = 0) -> None:
        self._chunks: list[Chunk] = []
        self._bases: list[int] = []  # base offset of each chunk, for bisect
        self.log_start_offset = start_offset
        self.log_end_offset = start_offset
        self.size_bytes = 0
        #: (epoch, start offset) for each leader epoch that wrote to this log
        #: (or led it: a new leader records its epoch at once, as Kafka does)
        self.epochs: list[tuple[int, int]] = []
        self.producers = PartitionProducers()

    def __len__(self) -> int:
        return len(self._chunks)

    def append(self, batch: ProducedBatch, leader_epoch: int) -> int:
        """Assign offsets to `batch`, store its bytes, return its first offset."""
        base = self.log_end_offset
        batch.assign_offsets(base, leader_epoch)
        last = base + batch.offset_count - 1
        chunk = Chunk(base, last, batch.max_timestamp, leader_epoch, batch.data)
        if batch.producer_id >= 0:
            chunk.producer_id, chunk.producer_epoch = batch.producer_id, batch.producer_epoch
            chunk.base_sequence = batch.base_sequence
        self._store(chunk)
        return base

    def append_chunk(self, chunk: Chunk) -> None:
        """Append an already-numbered chunk (a follower copying its leader)."""
        if chunk.base_offset != self.log_end_offset:
            raise ValueError(f"chunk at {chunk.base_offset}, log ends at {self.log_end_offset}")
        self._store(chunk)

    def _store(self, chunk: Chunk) -> None:
        if not self.epochs or self.epochs[-1][0] != chunk.leader_epoch:
            self._assign_epoch(chunk.leader_epoch, chunk.base_offset)
        if chunk.producer_id >= 0:
            self._record_producer(chunk)
        self._chunks.append(chunk)
        self._bases.append(chunk.base_offset)
        self.log_end_offset = chunk.last_offset + 1
        self.size_bytes += chunk.size

    def _index_of(self, offset: int) -> int:
        """Index of the chunk holding `offset` (the next one if it fell in a gap)."""
        i = bisect.bisect_right(self._bases, offset) - 1
        if i < 0:
            return 0
        if self._chunks[i].last_offset < offset:
            return i + 1
        return i

    def read(self, offset: int, max_bytes: int, upper: int, *, min_one: bool = True) -> list[Chunk]:
        """Whole chunks from the one holding `offset`, below `upper` (the high watermark).

        At most `max_bytes`, except that with `min_one` the first chunk is
        returned even if it alone is larger (Kafka's "at least one batch").
        """
        result: list[Chunk] = []
        total = 0
        for chunk in self._chunks[self._index_of(offset) :]:
            if chunk.base_offset >= upper or chunk.last_offset >= upper:
                break
            if total + chunk.size > max_bytes and not (min_one and not result):
                break
            result.append(chunk)
            total += chunk.size
        return result

    def find_timestamp(self, timestamp: int, upper: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record below `upper` whose timestamp is >= `timestamp`."""
        for chunk in self._chunks[self._index_of(self.log_start_offset) :]:
            if chunk.base_offset >= upper:
                break
            if chunk.max_timestamp >= timestamp:
                record = first_record_at(chunk.data, timestamp)
                if record is not None and self.log_start_offset <= record.offset < upper:
                    return record.offset, record.timestamp
        return None

    def max_timestamp_offset(self, upper: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with the largest timestamp below `upper`."""
        best: Chunk | None = None
        for chunk in self._chunks[self._index_of(self.log_start_offset) :]:
            if chunk.last_offset >= upper:
                break
            if best is None or chunk.max_timestamp > best.max_timestamp:
                best = chunk
        if best is None:
            return None
        record = first_record_at(best.data, best.max_timestamp)
        return (best.last_offset, best.max_timestamp) if record is None else (record.offset, record.timestamp)

    def epoch_at(self, offset: int) -> int:
        """The leader epoch that wrote `offset` (-1 if unknown)."""
        epoch = -1
        for e, start in self.epochs:
            if start > offset:
                break
            epoch = e
        return epoch

    @property
    def latest_epoch(self) -> int:
        return self.epochs[-1][0] if self.epochs else -1

    def start_epoch(self, epoch: int) -> None:
        """Record that leader epoch `epoch` starts at the log end (this replica became leader)."""
        if epoch != self.latest_epoch:
            self._assign_epoch(epoch, self.log_end_offset)

    def _assign_epoch(self, epoch: int, start: int) -> None:
        """Kafka's LeaderEpochFileCache.assign: later or overlapping entries give way to the new one."""
        while self.epochs and (self.epochs[-1][0] >= epoch or self.epochs[-1][1] >= start):
            self.epochs.pop()
        self.epochs.append((epoch, start))

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """Kafka's OffsetForLeaderEpoch (LeaderEpochFileCache.endOffsetFor).

        (largest epoch <= `epoch`, the start offset of the first later epoch),
        or the log end offset if `epoch` is the latest. An epoch older than
        any known answers (`epoch`, start of the first known epoch); one newer
        than any known, or -1, answers (-1, -1).
        """
        if epoch < 0 or not self.epochs:
            return -1, -1
        if self.epochs[-1][0] == epoch:
            return epoch, self.log_end_offset
        i = bisect.bisect_right(self.epochs, (epoch, float("inf")))
        if i == len(self.epochs):
            return -1, -1
        higher_start = self.epochs[i][1]
        if i == 0:
            return epoch, higher_start
        return self.epochs[i - 1][0], higher_start

    def advance_start(self, offset: int) -> None:
        """Move the log start offset forward, dropping chunks wholly below it."""
        if offset <= self.log_start_offset:
            return
        self.log_start_offset = offset
        drop = 0
        while drop < len(self._chunks) and self._chunks[drop].last_offset < offset:
            self.size_bytes -= self._chunks[drop].size
            drop += 1
        del self._chunks[:drop]
        del self._bases[:drop]
        if offset > self.log_end_offset:
            self.log_end_offset = offset

    def truncate_to(self, offset: int) -> None:
        """Drop everything at or above `offset` (a follower removing divergent data).

        Whole chunks go: the log ends at the first chunk boundary at or below
        `offset`. The epoch cache and the producer state forget what went. As
        in Kafka, epochs starting at or after `offset` leave the cache even if
        no data does (a former leader's epoch in which it wrote nothing).
        """
        if offset >= self.log_end_offset:
            self.epochs = [(e, s) for e, s in self.epochs if s < offset]
            return
        i = self._index_of(offset)
        for chunk in self._chunks[i:]:
            self.size_bytes -= chunk.size
        del self._chunks[i:]
        del self._bases[i:]
        self.log_end_offset = max(self.log_start_offset, self._chunks[-1].last_offset + 1 if self._chunks else 0)
        self.epochs = [(e, s) for e, s in self.epochs if s < self.log_end_offset]
        self._rebuild_producers()

    def truncate_fully(self, start_offset: int) -> None:
        """Drop everything and restart empty at `start_offset` (a follower behind its leader's log start)."""
        self._chunks.clear()
        self._bases.clear()
        self.size_bytes = 0
        self.log_start_offset = self.log_end_offset = start_offset
        self.epochs.clear()
        self.producers = PartitionProducers()

    def _record_producer(self, chunk: Chunk) -> None:
        self.producers.record(
            chunk.producer_id,
            chunk.producer_epoch,
            chunk.base_sequence,
            chunk.last_offset - chunk.base_offset + 1,
            chunk.base_offset,
        )

    def _rebuild_producers(self) -> None:
        """Producer state from the batches still in the log (Kafka reloads it after a truncation)."""
        self.producers = PartitionProducers()
        for chunk in self._chunks:
            if chunk.producer_id >= 0:
                self._record_producer(chunk)

    def chunks_from(self, offset: int) -> list[Chunk]:
        return self._chunks[self._index_of(offset) :]
