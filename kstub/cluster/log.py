"""A replica's log: record batches kept as the bytes producers sent.

The log is a FIFO of *chunks*: a v2 record batch, or a legacy (magic 0/1)
message set from one produce request. Each chunk covers a contiguous range of
offsets. Appending patches the base offset (and leader epoch) in place and
keeps the bytes; reading returns the stored chunks as they are, starting with
the one that holds the requested offset, as Kafka does. Nothing here decodes
individual records, except the timestamp lookup inside one chunk.

Data leaves the log only by moving the log start offset (retention,
DeleteRecords) or by truncation on a follower, never because it was read.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from kstub.protocol.records import ProducedBatch, first_record_at


@dataclass(slots=True)
class Chunk:
    base_offset: int
    last_offset: int
    max_timestamp: int
    leader_epoch: int
    data: bytes | bytearray

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
        self.epochs: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return len(self._chunks)

    def append(self, batch: ProducedBatch, leader_epoch: int) -> int:
        """Assign offsets to `batch`, store its bytes, return its first offset."""
        base = self.log_end_offset
        batch.assign_offsets(base, leader_epoch)
        last = base + batch.offset_count - 1
        self._store(Chunk(base, last, batch.max_timestamp, leader_epoch, batch.data))
        return base

    def append_chunk(self, chunk: Chunk) -> None:
        """Append an already-numbered chunk (a follower copying its leader)."""
        if chunk.base_offset != self.log_end_offset:
            raise ValueError(f"chunk at {chunk.base_offset}, log ends at {self.log_end_offset}")
        self._store(chunk)

    def _store(self, chunk: Chunk) -> None:
        if not self.epochs or self.epochs[-1][0] < chunk.leader_epoch:
            self.epochs.append((chunk.leader_epoch, chunk.base_offset))
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

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """Kafka's OffsetForLeaderEpoch: (largest epoch <= `epoch`, its end offset).

        The end offset is the start offset of the first later epoch, or the
        log end offset if `epoch` is the latest. (-1, -1) if the log has no
        epoch that old.
        """
        found = -1
        for i, (e, _) in enumerate(self.epochs):
            if e > epoch:
                if found < 0:
                    return -1, -1
                return found, self.epochs[i][1]
            found = e
        if found < 0:
            return -1, -1
        return found, self.log_end_offset

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
        """Drop everything at or above `offset` (a follower removing divergent data)."""
        i = self._index_of(offset)
        for chunk in self._chunks[i:]:
            self.size_bytes -= chunk.size
        del self._chunks[i:]
        del self._bases[i:]
        self.log_end_offset = max(self.log_start_offset, self._chunks[-1].last_offset + 1 if self._chunks else offset)
        self.epochs = [(e, s) for e, s in self.epochs if s < self.log_end_offset]

    def chunks_from(self, offset: int) -> list[Chunk]:
        return self._chunks[self._index_of(offset) :]
