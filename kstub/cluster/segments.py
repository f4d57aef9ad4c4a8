"""What a log is made of: chunks (a record batch, or a legacy message set) in segments, and where
segments keep their bytes (`LogStorage`: memory by default; kstub/cluster/spill.py and
kstub/cluster/log_files.py keep them elsewhere).

A segment keeps per batch only numbers in memory (offsets, timestamps, epochs, sizes) in compact
arrays; the bytes are its storage's business.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from kstub.protocol.records import RecordBatch

INT32_MAX = 2**31 - 1


@dataclass(slots=True)
class Chunk:
    base_offset: int
    last_offset: int
    max_timestamp: int
    leader_epoch: int
    data: bytes | bytearray | memoryview

    @property
    def size(self) -> int:
        return len(self.data)


class Segment:
    """The batches of one segment: per-batch numbers here, the bytes in a subclass.

    `rolling_timestamp` is the max timestamp of the segment's first batch
    (Kafka's rollingBasedTimestamp); `max_timestamp` the largest of any batch
    (-1 if no batch carries one); `last_modified_ms` the time of the last append.
    """

    def __init__(self, base_offset: int, created_ms: int) -> None:
        self.base_offset = base_offset
        self.bases = array("q")
        self.lasts = array("q")
        self.max_ts = array("q")
        self.epochs = array("l")
        self.size = 0
        self.max_timestamp = -1
        self.rolling_timestamp = -1
        self.created_ms = created_ms
        self.last_modified_ms = created_ms

    def __len__(self) -> int:
        return len(self.bases)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base={self.base_offset}, batches={len(self)}, size={self.size})"

    @property
    def end_offset(self) -> int:
        """The offset after this segment's last batch (its base offset if empty)."""
        return self.lasts[-1] + 1 if self.lasts else self.base_offset

    def largest_timestamp(self) -> int:
        """Kafka's LogSegment.largestTimestamp: the max record timestamp, or the last modification time."""
        return self.max_timestamp if self.max_timestamp >= 0 else self.last_modified_ms

    def index_of(self, offset: int) -> int:
        """Index of the batch holding `offset` (the next one if it fell in a gap; len(self) if past the end)."""
        i = bisect.bisect_right(self.bases, offset) - 1
        if i < 0:
            return 0
        if self.lasts[i] < offset:
            return i + 1
        return i

    def note(self, base: int, last: int, max_ts: int, epoch: int, size: int, now_ms: int) -> None:
        """Record one appended batch's numbers."""
        self.bases.append(base)
        self.lasts.append(last)
        self.max_ts.append(max_ts)
        self.epochs.append(epoch)
        self.size += size
        if max_ts > self.max_timestamp:
            self.max_timestamp = max_ts
        if len(self.bases) == 1:
            self.rolling_timestamp = max_ts
        self.last_modified_ms = now_ms

    def forget_from(self, i: int) -> None:
        """Drop the numbers of batches i.. (the subclass drops their bytes)."""
        for arr in (self.bases, self.lasts, self.max_ts, self.epochs):
            del arr[i:]
        self.max_timestamp = max(self.max_ts, default=-1)
        if not self.bases:
            self.rolling_timestamp = -1

    # --- storage (subclasses) ----------------------------------------------------

    def append(self, chunk: Chunk, now_ms: int) -> None:
        raise NotImplementedError

    def batch_size(self, i: int) -> int:
        raise NotImplementedError

    def chunks(self, i: int, j: int) -> list[Chunk]:
        """Batches i..j-1 as chunks."""
        raise NotImplementedError

    def truncate(self, i: int) -> None:
        """Remove batches i.. ."""
        raise NotImplementedError

    def seal(self) -> None:
        """The segment is no longer active (a newer one was rolled)."""

    def delete(self) -> None:
        """The segment leaves the log (retention, truncation)."""

    def close(self) -> None:
        """Release resources (the server stops)."""

    def sync_fd(self) -> int | None:
        """A new file descriptor to fsync this segment's data with (closed by the caller), or None."""
        return None

    def header(self, i: int) -> RecordBatch | None:
        """The v2 batch header of batch i (None for a legacy entry)."""
        return batch_header(self.chunks(i, i + 1)[0].data)


def owned(data: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
    """`data` as a segment keeps it: a read-only view (of a file read, of a fetch buffer) is copied, to
    hold only its own bytes; a writable one is a produced batch's view of its own request frame
    (protocol/connection.py), kept as it is: the frame is the batch's one copy."""
    if type(data) is memoryview and data.readonly:
        return bytes(data)
    return data


def batch_header(data: bytes | bytearray | memoryview) -> RecordBatch | None:
    """The v2 batch header at the start of `data` (None for a legacy entry)."""
    if len(data) < RecordBatch.HEADER_SIZE or data[16] != 2:
        return None
    return RecordBatch(data)


class MemorySegment(Segment):
    def __init__(self, base_offset: int, created_ms: int) -> None:
        super().__init__(base_offset, created_ms)
        self._data: list[bytes | bytearray | memoryview] = []

    def append(self, chunk: Chunk, now_ms: int) -> None:
        data = owned(chunk.data)
        self._data.append(data)
        self.note(chunk.base_offset, chunk.last_offset, chunk.max_timestamp, chunk.leader_epoch, len(data), now_ms)

    def batch_size(self, i: int) -> int:
        return len(self._data[i])

    def chunks(self, i: int, j: int) -> list[Chunk]:
        b, la, ts, ep, data = self.bases, self.lasts, self.max_ts, self.epochs, self._data
        return [Chunk(b[k], la[k], ts[k], ep[k], data[k]) for k in range(i, j)]

    def truncate(self, i: int) -> None:
        self.size -= sum(len(d) for d in self._data[i:])
        del self._data[i:]
        self.forget_from(i)

    def delete(self) -> None:
        self._data.clear()


class LogStorage:
    """Where a log keeps its segments and its checkpoints. This one: memory, nothing persisted."""

    #: whether segments survive the process (recovery points and fsyncs matter)
    persistent = False

    def new_segment(self, base_offset: int, now_ms: int) -> Segment:
        return MemorySegment(base_offset, now_ms)

    def new_cleaned_segment(self, base_offset: int, created_ms: int) -> Segment:
        """A segment the cleaner writes before it replaces others (`swap_segments`)."""
        return self.new_segment(base_offset, created_ms)

    def swap_segments(self, cleaned: Segment, old: list[Segment]) -> None:
        """`cleaned` replaces `old` (which go): the files' business on disk."""
        cleaned.seal()
        for seg in old:
            seg.delete()

    def save_epochs(self, epochs: list[tuple[int, int]]) -> None:
        """The leader epoch cache changed (Kafka's leader-epoch-checkpoint)."""

    def save_log_start(self, offset: int) -> None:
        """The log start offset moved (Kafka's log-start-offset-checkpoint)."""

    def sync_dir_fd(self) -> int | None:
        """A file descriptor of the log's directory to fsync after new segments, or None."""
        return None

    def close(self) -> None:
        """The server stops."""

    def delete(self) -> None:
        """The log is deleted (its topic was)."""


class LogState:
    """What a `Log` keeps, declared for the parts of it in other modules (log_removal.py, log_durability.py)."""

    _segments: list[Segment]
    _seg_bases: list[int]
    _clock: Callable[[], int]
    storage: LogStorage
    log_start_offset: int
    log_end_offset: int
    recovery_point: int
    _dirty_dir: bool
