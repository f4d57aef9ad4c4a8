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
`advance_start`) or by truncation on a follower, never because it was read.

Each replica's log also keeps what Kafka keeps beside it: the leader epoch
cache (`epoch_cache`, kstub/cluster/epochs.py: where each leader epoch began) and the idempotent producers'
state, rebuilt from the log's own batch headers, so that a replica that
becomes leader deduplicates exactly the batches it holds.
"""

from __future__ import annotations

import bisect
import logging
import os
import time
from collections.abc import Callable

import trio

from kstub.protocol.records import ProducedBatch, RecordBatch

from .config import TOPIC_CONFIGS
from .epochs import LeaderEpochCache
from .producers import PartitionProducers
from .segments import Chunk, LogStorage, Segment, batch_header

logger = logging.getLogger("kstub.log")

INT64_MAX = 2**63 - 1

INT32_MAX = 2**31 - 1


def _default_config(name: str) -> str:
    return TOPIC_CONFIGS[name].default_string or ""


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


def _fsync_all(fds: list[int]) -> None:
    """fsync then close each descriptor (runs in a worker thread)."""
    try:
        for fd in fds:
            os.fsync(fd)
    finally:
        for fd in fds:
            os.close(fd)


class Log:
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
        config: Callable[[str], str] | None = None,
        clock: Callable[[], int] | None = None,
        storage: LogStorage | None = None,
        segments: list[Segment] | None = None,
        epochs: list[tuple[int, int]] | None = None,
    ) -> None:
        self._config = config or _default_config
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
            self.producers.record(
                batch.producer_id, batch.producer_epoch, batch.base_sequence, batch.offset_count, base
            )
        return base

    def append_chunk(self, chunk: Chunk) -> None:
        """Append an already-numbered chunk (a follower copying its leader; after compaction, past a gap)."""
        if chunk.base_offset < self.log_end_offset:
            raise ValueError(f"chunk at {chunk.base_offset}, log ends at {self.log_end_offset}")
        now = self._clock()
        self._maybe_roll(chunk.size, chunk.max_timestamp, chunk.last_offset, now)
        self._store(chunk, now)
        self._record_producer(batch_header(chunk.data), chunk.base_offset)

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
        segment_bytes = int(self._config("segment.bytes"))
        segment_ms = int(self._config("segment.ms"))
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

    def max_record_bytes(self) -> int:
        return int(self._config("max.decompressed.message.bytes"))

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

    # --- removing data ----------------------------------------------------------------

    def advance_start(self, offset: int) -> None:
        """Move the log start offset forward (DeleteRecords, a follower following its leader).

        Segments wholly below the new start are deleted at once (Kafka's
        deleteLogStartOffsetBreachedSegments; never the active one). Past the
        log end, the log is emptied and restarts at `offset`.
        """
        if offset <= self.log_start_offset:
            return
        self.log_start_offset = offset
        if offset > self.log_end_offset:
            now = self._clock()
            for seg in self._segments:
                seg.delete()
            self._segments = [self.storage.new_segment(offset, now)]
            self._seg_bases = [offset]
            self.log_end_offset = offset
            self.recovery_point = max(self.recovery_point, offset) if self.is_persistent else offset
            self._dirty_dir = True
        else:
            drop = 0
            while drop < len(self._segments) - 1 and self._segments[drop + 1].base_offset <= offset:
                drop += 1
            self._drop_oldest(drop)
        self.epoch_cache.truncate_from_start(offset)
        self.storage.save_log_start(offset)

    def _drop_oldest(self, count: int) -> None:
        for seg in self._segments[:count]:
            seg.delete()
        del self._segments[:count]
        del self._seg_bases[:count]

    def delete_oldest_segments(self, count: int, reason: str) -> int:
        """Delete the `count` oldest segments (retention), rolling first if that is all of them.

        Kafka never deletes the active segment: when every segment is to go,
        it rolls a new empty one first. The log start offset moves to the
        first remaining segment's base offset. Returns the number deleted.
        """
        if count <= 0:
            return 0
        if count >= len(self._segments):
            count = len(self._segments)
            self.roll()
        doomed = self._segments[:count]
        self._drop_oldest(count)
        logger.info(
            "deleting %d segment(s) with base offsets %s: %s",
            len(doomed),
            [s.base_offset for s in doomed],
            reason,
        )
        new_start = self._segments[0].base_offset
        if new_start > self.log_start_offset:
            self.log_start_offset = new_start
            self.epoch_cache.truncate_from_start(new_start)
            self.storage.save_log_start(new_start)
        return len(doomed)

    def truncate_to(self, offset: int) -> None:
        """Drop everything at or above `offset` (a follower removing divergent data).

        Whole batches go: the log ends at the first batch boundary at or below
        `offset`. The epoch cache and the producer state forget what went. As
        in Kafka, epochs starting at or after `offset` leave the cache even if
        no data does (a former leader's epoch in which it wrote nothing).
        """
        if offset >= self.log_end_offset:
            self.epoch_cache.truncate_from_end(offset)
            return
        si = self.segment_index(offset)
        for seg in self._segments[si + 1 :]:
            seg.delete()
        del self._segments[si + 1 :]
        del self._seg_bases[si + 1 :]
        seg = self._segments[si]
        seg.truncate(seg.index_of(offset))
        self.log_end_offset = max(self.log_start_offset, seg.end_offset)
        self.recovery_point = min(self.recovery_point, self.log_end_offset)
        self.epoch_cache.truncate_from_end(self.log_end_offset)
        self.storage.save_epochs(self.epochs)
        self._rebuild_producers()

    def truncate_fully(self, start_offset: int) -> None:
        """Drop everything and restart empty at `start_offset` (a follower behind its leader's log start)."""
        for seg in self._segments:
            seg.delete()
        self._segments = [self.storage.new_segment(start_offset, self._clock())]
        self._seg_bases = [start_offset]
        self.log_start_offset = self.log_end_offset = start_offset
        self.recovery_point = start_offset
        self._dirty_dir = True
        self.epoch_cache.clear()
        self.storage.save_log_start(start_offset)
        self.producers = PartitionProducers()

    # --- idempotent producers ----------------------------------------------------------

    def _record_producer(self, header: RecordBatch | None, base_offset: int) -> None:
        """Producer state from a stored batch's header (a follower's copy, a truncated log's rebuild)."""
        if header is not None and header.producer_id >= 0:
            self.producers.record(
                header.producer_id,
                header.producer_epoch,
                header.base_sequence,
                header.last_offset_delta + 1,
                base_offset,
            )

    def _rebuild_producers(self) -> None:
        """Producer state from the batch headers still in the log (Kafka reloads it after a truncation)."""
        self.producers = PartitionProducers()
        for seg in self._segments:
            for i in range(len(seg)):
                self._record_producer(seg.header(i), seg.bases[i])

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

    # --- durability -------------------------------------------------------------------

    async def sync(self) -> None:
        """fsync everything appended so far (no-op in memory).

        Concurrent callers share one fsync (group commit): a caller that
        finds one running waits for it and checks again. The fsync runs in a
        worker thread (there is no async fsync), on duplicated descriptors so
        that a segment deleted meanwhile cannot close them under it.
        """
        target = self.log_end_offset
        while self.recovery_point < target:
            if self._syncing is not None:
                await self._syncing.wait()
                continue
            event = self._syncing = trio.Event()
            try:
                end = self.log_end_offset
                fds: list[int] = []
                for seg in self._segments:
                    if seg.end_offset > self.recovery_point:
                        fd = seg.sync_fd()
                        if fd is not None:
                            fds.append(fd)
                if self._dirty_dir:
                    self._dirty_dir = False
                    dir_fd = self.storage.sync_dir_fd()
                    if dir_fd is not None:
                        fds.append(dir_fd)
                await trio.to_thread.run_sync(_fsync_all, fds)
                self.recovery_point = max(self.recovery_point, end)
                self.last_flush_ms = self._clock()
            finally:
                self._syncing = None
                event.set()

    @property
    def unflushed_messages(self) -> int:
        return self.log_end_offset - self.recovery_point

    def close(self) -> None:
        for seg in self._segments:
            seg.close()
        self.storage.close()

    def delete(self) -> None:
        """Delete the whole log (its topic was deleted)."""
        for seg in self._segments:
            seg.delete()
        self.storage.delete()
