"""A replica's log: record batches kept as the bytes producers sent, in segments.

The log is a sequence of *segments*, each a run of *chunks*: a v2 record
batch, or a legacy (magic 0/1) message set from one produce request. Each
chunk covers a contiguous range of offsets. Appending patches the base offset
(and leader epoch) in place and keeps the bytes; reading returns the stored
chunks as they are, starting with the one that holds the requested offset, as
Kafka does. Nothing here decodes individual records, except the timestamp
lookup inside one chunk.

Segments are Kafka's: the last one is *active* and takes appends; a new one
is rolled when the active one would grow past ``segment.bytes``, or when the
new batch's timestamp is more than ``segment.ms`` after its first batch's.
Where a segment keeps its bytes is up to its `LogStorage`: in memory
(`MemorySegment`, the default), in memory under a budget beyond which old
batches spill to temporary files (kstub/cluster/spill.py, the server's store
without --data-dir) or in a file (kstub/cluster/log_files.py); kstub/cluster/segments.py
holds the segment types. Per
batch, a segment keeps only numbers in memory (offsets, timestamps, epochs,
file positions), in compact arrays; a file segment reads the bytes of a fetch
from its file.

Data leaves the log only by whole segments, when the log start offset moves
past them (retention, DeleteRecords: `delete_oldest_segments`,
`advance_start`) or by truncation on a follower, never because it was read
(kstub/cluster/log_removal.py). Syncing to disk is in kstub/cluster/log_durability.py.

Each replica's log also keeps what Kafka keeps beside it: the leader epoch
cache (`epoch_cache`, kstub/cluster/epochs.py: where each leader epoch began) and the producers'
state (kstub/cluster/producers.py: sequences and epochs, open transactions, the aborted
transactions index), updated by every append and rebuilt from the log's own batches (a
marker's control record read for its type), so that a replica that becomes leader
deduplicates exactly the batches it holds and answers read_committed reads the same.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable

import trio

from kstub.protocol.records import BatchError, ProducedBatch, RecordBatch
from kstub.protocol.records.control import read_marker

from .config import TopicSettings
from .epochs import LeaderEpochCache
from .log_durability import LogDurability
from .log_removal import LogRemoval
from .producers import PartitionProducers
from .segments import Chunk, LogStorage, Segment, batch_header

INT64_MAX = 2**63 - 1

INT32_MAX = 2**31 - 1


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


class Log(LogRemoval, LogDurability):
    """One replica's log.

    `config` looks up the topic's settings (``segment.bytes``, ``segment.ms``;
    Kafka's defaults without a topic), `clock` gives milliseconds for segment
    ages, `storage` makes segments and keeps checkpoints (memory by default).
    `on_roll`, if set, is called with the new active segment's base offset
    after each roll (the storage takes producer-state snapshots there).
    """

    def __init__(
        self,
        start_offset: int = 0,
        *,
        config: TopicSettings | Callable[[str], str] | None = None,
        clock: Callable[[], int] | None = None,
        storage: LogStorage | None = None,
        segments: list[Segment] | None = None,
        epochs: list[tuple[int, int]] | None = None,
    ) -> None:
        self._config = config if isinstance(config, TopicSettings) else TopicSettings(config)
        self._clock = clock or _wall_clock_ms
        self.storage = storage or LogStorage()
        self.on_roll: Callable[[int], None] | None = None
        self.log_start_offset = start_offset
        #: where each leader epoch that wrote to this log began
        self.epoch_cache = LeaderEpochCache(epochs or (), self.storage.save_epochs)
        self._segments: list[Segment] = segments or [self.storage.new_segment(start_offset, self._clock())]
        self._seg_bases: list[int] = [s.base_offset for s in self._segments]
        last = self._segments[-1]
        self.log_end_offset = max(start_offset, last.end_offset if len(last) else last.base_offset)
        #: offsets below this are on stable storage (fsynced); memory logs have nothing to sync
        self.recovery_point = self.log_end_offset
        #: when the log was last fsynced (Kafka's lastFlushTime, for flush.ms)
        self.last_flush_ms = self._clock()
        self._syncing: trio.Event | None = None
        self._dirty_dir = False
        #: the idempotent producers' state as this replica's batches have it
        self.producers = PartitionProducers()  # a recovered log's: see storage._recover_producers

    # --- shape --------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(len(s) for s in self._segments)

    @property
    def segments(self) -> list[Segment]:
        """The segments, oldest first; the last one is active."""
        return list(self._segments)

    @property
    def active_segment(self) -> Segment:
        return self._segments[-1]

    @property
    def size_bytes(self) -> int:
        """Bytes of all segments (Kafka's Log.size): what retention.bytes is compared with."""
        return sum(s.size for s in self._segments)

    @property
    def is_persistent(self) -> bool:
        return self.storage.persistent

    # --- appending ----------------------------------------------------------------

    def append(self, batch: ProducedBatch, leader_epoch: int) -> int:
        """Assign offsets to `batch`, store its bytes, return its first offset."""
        base = self.log_end_offset
        last = base + batch.offset_count - 1
        now = self._clock()
        self._maybe_roll(len(batch.data), batch.max_timestamp, last, now)
        batch.assign_offsets(base, leader_epoch)  # may replace batch.data (legacy magic 0 compressed)
        self._store(Chunk(base, last, batch.max_timestamp, leader_epoch, batch.data), now)
        if batch.producer_id >= 0:  # its producer fields were read when the batch was validated
            self.track_producer(RecordBatch(batch.data), base, batch.data)
        return base

    def append_chunk(self, chunk: Chunk) -> None:
        """Append an already-numbered chunk (a follower copying its leader; after compaction, past a gap)."""
        if chunk.base_offset < self.log_end_offset:
            raise ValueError(f"chunk at {chunk.base_offset}, log ends at {self.log_end_offset}")
        now = self._clock()
        self._maybe_roll(chunk.size, chunk.max_timestamp, chunk.last_offset, now)
        self._store(chunk, now)
        header = batch_header(chunk.data)
        if header is not None and header.producer_id >= 0:
            self.track_producer(header, chunk.base_offset, chunk.data)

    def _store(self, chunk: Chunk, now_ms: int) -> None:
        if not self.epochs or self.epochs[-1][0] != chunk.leader_epoch:
            self.epoch_cache.assign(chunk.leader_epoch, chunk.base_offset)
        self._segments[-1].append(chunk, now_ms)
        self.log_end_offset = chunk.last_offset + 1
        if not self.is_persistent:
            self.recovery_point = self.log_end_offset

    def _maybe_roll(self, size: int, max_timestamp: int, last_offset: int, now_ms: int) -> None:
        """Kafka's LogSegment.shouldRoll (segment.jitter.ms aside)."""
        active = self._segments[-1]
        if not len(active):
            return
        segment_bytes = self._config.get_int("segment.bytes")
        segment_ms = self._config.get_int("segment.ms")
        if active.rolling_timestamp >= 0:
            waited = max_timestamp - active.rolling_timestamp
        else:
            waited = now_ms - active.created_ms
        if active.size > segment_bytes - size or waited > segment_ms or last_offset - active.base_offset > INT32_MAX:
            self.roll(now_ms)

    def roll(self, now_ms: int | None = None) -> Segment:
        """Start a new active segment at the log end offset (no-op if the active one is empty)."""
        active = self._segments[-1]
        if not len(active) and active.base_offset == self.log_end_offset:
            return active
        now = self._clock() if now_ms is None else now_ms
        active.seal()
        segment = self.storage.new_segment(self.log_end_offset, now)
        if not len(active):
            # An empty active segment behind the log end (after truncation): replace it.
            self._segments.pop()
            self._seg_bases.pop()
            active.delete()
        self._segments.append(segment)
        self._seg_bases.append(segment.base_offset)
        self._dirty_dir = True
        if self.on_roll is not None:
            self.on_roll(segment.base_offset)
        return segment

    # --- reading ------------------------------------------------------------------

    def segment_index(self, offset: int) -> int:
        return max(0, bisect.bisect_right(self._seg_bases, offset) - 1)

    def read(
        self, offset: int, max_bytes: int = INT64_MAX, upper: int | None = None, *, min_one: bool = True
    ) -> list[Chunk]:
        """Whole chunks from the one holding `offset`, below `upper` (the high watermark; default: the log end).

        At most `max_bytes`, except that with `min_one` the first chunk is
        returned even if it alone is larger (Kafka's "at least one batch").
        File segments read the bytes of the chosen batches with one read each.
        """
        if upper is None:
            upper = self.log_end_offset
        result: list[Chunk] = []
        total = 0
        count = 0
        segments = self._segments
        for si in range(self.segment_index(offset), len(segments)):
            seg = segments[si]
            i = seg.index_of(offset) if not result else 0
            j = i
            n = len(seg)
            lasts = seg.lasts
            done = False
            while j < n:
                if lasts[j] >= upper:
                    done = True
                    break
                size = seg.batch_size(j)
                if total + size > max_bytes and not (min_one and count == 0):
                    done = True
                    break
                total += size
                count += 1
                j += 1
            if j > i:
                result.extend(seg.chunks(i, j))
            if done:
                break
        return result

    def batch_start(self, offset: int) -> int:
        """The first offset of the batch holding `offset` (of the next batch if none does; `offset` past the end)."""
        seg = self._segments[self.segment_index(offset)]
        i = seg.index_of(offset)
        return seg.bases[i] if i < len(seg) else offset

    def segment_end(self, offset: int) -> int:
        """Where the segment holding `offset` ends: the next segment's base offset, or the log end."""
        i = self.segment_index(offset) + 1
        return self._seg_bases[i] if i < len(self._seg_bases) else self.log_end_offset

    def max_record_bytes(self) -> int:
        return self._config.get_int("max.decompressed.message.bytes")

    # --- leader epochs ----------------------------------------------------------------

    @property
    def epochs(self) -> list[tuple[int, int]]:
        """(epoch, start offset) for each leader epoch that wrote to this log."""
        return self.epoch_cache.entries

    def epoch_at(self, offset: int) -> int:
        """The leader epoch that wrote `offset` (-1 if unknown)."""
        return self.epoch_cache.epoch_at(offset)

    @property
    def latest_epoch(self) -> int:
        return self.epoch_cache.latest

    def start_epoch(self, epoch: int) -> None:
        """Record that leader epoch `epoch` starts at the log end (this replica became leader)."""
        if epoch != self.latest_epoch:
            self.epoch_cache.assign(epoch, self.log_end_offset)

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch on this log (see `LeaderEpochCache.end_offset_for`)."""
        return self.epoch_cache.end_offset_for(epoch, self.log_end_offset)

    # --- idempotent and transactional producers ------------------------------------------

    def track_producer(
        self, header: RecordBatch, base_offset: int, data: bytes | bytearray | memoryview | None = None
    ) -> None:
        """Producer and transaction state from an appended batch of a producer (`data`: the whole batch,
        needed for a control batch, whose marker is in its record; read from the log if not given)."""
        if header.is_control:
            if data is None:
                data = self._batch_bytes(base_offset)
            try:
                marker = read_marker(RecordBatch(data)) if data is not None else None
            except BatchError:  # not a marker kstub can read: Kafka would not have appended it
                marker = None
            if marker is not None:
                self.producers.record_marker(
                    marker.producer_id,
                    marker.producer_epoch,
                    marker.commit,
                    marker.coordinator_epoch,
                    base_offset,
                    header.max_timestamp,
                )
            return
        self.producers.record(
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            header.last_offset_delta + 1,
            base_offset,
            timestamp=header.max_timestamp,
            transactional=header.is_transactional,
        )

    def _batch_bytes(self, offset: int) -> bytes | bytearray | memoryview | None:
        chunks = self.read(offset, 1, INT64_MAX)
        return chunks[0].data if chunks and chunks[0].base_offset == offset else None

    def replay_producers(self, start: int) -> int:
        """Bring the producer state up to date from the batches at or after `start` (recovery); the count."""
        replayed = 0
        for seg in self._segments:
            if seg.end_offset <= start:
                continue
            for i in range(seg.index_of(start), len(seg)):
                header = seg.header(i)
                if header is None or header.producer_id < 0:
                    continue
                data = seg.chunks(i, i + 1)[0].data if header.is_control else None
                self.track_producer(header, seg.bases[i], data)
                replayed += 1
        return replayed

    def _rebuild_producers(self) -> None:
        """Producer state from the batches still in the log (Kafka reloads it after a truncation)."""
        self.producers = PartitionProducers()
        self.replay_producers(self.log_start_offset)

    # --- compaction (kstub/cluster/cleaner.py) -----------------------------------------

    def replace_segments(self, old: list[Segment], cleaned: Segment) -> bool:
        """Put `cleaned` in place of the consecutive closed segments `old` (the cleaner's output).

        False (nothing changed) if `old` are no longer consecutive closed segments of this log.
        """
        try:
            start = next(i for i, s in enumerate(self._segments) if s is old[0])
        except StopIteration:
            return False
        stop = start + len(old)
        if stop >= len(self._segments) or any(a is not b for a, b in zip(self._segments[start:stop], old, strict=True)):
            return False
        self.storage.swap_segments(cleaned, old)
        self._segments[start:stop] = [cleaned]
        self._seg_bases[start:stop] = [cleaned.base_offset]
        self._dirty_dir = True
        return True
