"""The in-memory store's memory budget: the oldest resident batches spill to temporary files.

Without ``--data-dir`` a log keeps the batches it is sent in memory, as the
bytes the producer sent. A `MemoryBudget` (one per cluster, so one per
``kstub serve`` process, shared by every replica of every broker it runs)
counts those bytes; when they pass ``kstub.memory.budget.bytes`` the oldest
resident data is written to files in a temporary directory until the count
is back under seven eighths of the budget. A spilled batch is then read back
from its file on fetch: one ``pread`` of the byte range of the whole batches
returned, which are sent as they are (no re-encoding), usually from the page
cache.

Spilling goes by age of data, not by segment state: the segments whose
oldest resident byte is oldest go first, so closed segments leave memory
before active ones, and the tail of an active segment (what tailing
consumers read) is the last to go. A segment that spilled keeps a file
prefix and a memory tail: later appends go to memory again until the next
spill. Per batch, a segment keeps only numbers in memory (offsets,
timestamps, epochs, file positions).

Spilled data leaves the page cache too: after each spill the kernel is
advised that the file's cached pages are not needed (``POSIX_FADV_DONTNEED``:
clean pages go at once, the ones just written once written back, by the
segment's next spill at the latest). Otherwise every spilled byte stays in
the page cache, dirty until written back: memory that grows with the data
after all (and, in a container, counted against its memory limit), and on
this project's 2-core VMs, writing to ever new page cache pages held a
3-broker RF 3 produce of 1 KiB records to 45k msgs/s, against 240k-360k with
the advice (docs/benchmarks.md). A read of spilled data then comes from the
disk through the page cache, which the kernel may drop again as it likes.

Files are named after the log and the segment's base offset, opened for each
read or spill (no descriptor is held between them), removed when their
segment leaves the log (retention, DeleteRecords, truncation) and with the
whole directory when the store closes (a directory left by a killed
process is removed by the next one that spills to the same place: a live
process holds an flock on its directory). A failed spill (disk full) keeps the
data in memory, logs a warning, and is retried only after another eighth of
the budget has been appended.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import logging
import os
import re
import shutil
import tempfile
from array import array
from pathlib import Path

from kstub.protocol.records import RecordBatch

from .segments import Chunk, LogStorage, Segment

log = logging.getLogger("kstub.spill")

#: the default budget: 128 MiB of batches in memory per process
DEFAULT_BUDGET_BYTES = 128 * 1024 * 1024
SPILL_PREFIX = "kstub-spill-"
LOCK_NAME = ".lock"
_IOV_MAX = 512


class MemoryBudget:
    """How many bytes of batches may stay in memory, and the spill directory for the rest.

    `limit` < 0: no budget (everything stays in memory); 0: every batch
    spills as soon as it is appended. `directory` is where the temporary
    directory is made (the system's temporary directory if None).
    """

    def __init__(self, limit: int = DEFAULT_BUDGET_BYTES, directory: str | os.PathLike[str] | None = None) -> None:
        self.limit = limit
        self.low = limit - limit // 8
        self.parent = directory
        #: bytes of batches held in memory, and spilled to files
        self.resident = 0
        self.spilled = 0
        self.spills = 0
        self._order: dict[SpillingSegment, None] = {}  # segments with resident bytes, oldest data first
        self._dir: Path | None = None
        self._ids = itertools.count()
        self._retry_at = -1
        self._lock_fd: int | None = None

    @property
    def directory(self) -> Path | None:
        """The temporary directory (None until something spilled)."""
        return self._dir

    def file_for(self, name: str, base_offset: int) -> Path:
        if self._dir is None:
            self._dir = self._make_dir()
            log.info("memory budget of %d bytes reached: spilling old batches to %s", self.limit, self._dir)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        return self._dir / f"{safe}-{base_offset:020d}-{next(self._ids)}.log"

    def _make_dir(self) -> Path:
        """A new spill directory, locked while this process lives; stale ones of dead processes are removed."""
        parent = Path(self.parent) if self.parent is not None else Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_spill_dirs(parent)
        directory = Path(tempfile.mkdtemp(prefix=SPILL_PREFIX, dir=parent))
        try:
            # locked before it gets its name, so that no other process ever sees it unlocked
            fd = os.open(directory / "lock.tmp", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.rename(directory / "lock.tmp", directory / LOCK_NAME)
            except OSError:
                os.close(fd)
                raise
        except OSError:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self._lock_fd = fd
        return directory

    def charge(self, seg: SpillingSegment, size: int) -> None:
        self.resident += size
        if seg not in self._order:
            self._order[seg] = None
        if 0 <= self.limit < self.resident and self.resident > self._retry_at:
            self.spill()

    def release(self, seg: SpillingSegment, size: int) -> None:
        self.resident -= size
        if not seg.resident_bytes:
            self._order.pop(seg, None)

    def spill(self) -> None:
        """Write the oldest resident data to files until under the low mark."""
        while self.resident > self.low and self._order:
            seg = next(iter(self._order))
            try:
                seg.spill(self.resident - self.low)
            except OSError as exc:
                self._retry_at = self.resident + max(self.limit // 8, 1)
                log.warning("cannot spill to %s (%s): %d bytes stay in memory for now", self._dir, exc, self.resident)
                return
        self._retry_at = -1

    def close(self) -> None:
        """Forget everything and remove the temporary directory (the server stops)."""
        for seg in list(self._order):
            seg.delete()
        self._order.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def remove_stale_spill_dirs(parent: Path) -> None:
    """Remove the spill directories in `parent` left by processes that are gone (killed: no clean stop).

    A live process holds an flock on its directory's lock file; one that can
    be locked belongs to nobody.
    """
    for directory in parent.glob(f"{SPILL_PREFIX}*"):
        try:
            fd = os.open(directory / LOCK_NAME, os.O_RDWR)
        except OSError:
            continue  # not ours, or still being made
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # its process is alive
        try:
            log.info("removing %s, left by a kstub process that was killed", directory)
            shutil.rmtree(directory, ignore_errors=True)
        finally:
            os.close(fd)


class SpillingSegment(Segment):
    """A segment whose first `spilled_count` batches are in a file, the rest in memory."""

    def __init__(self, budget: MemoryBudget, name: str, base_offset: int, created_ms: int) -> None:
        super().__init__(base_offset, created_ms)
        self.budget = budget
        self.name = name
        self.path: Path | None = None
        self.positions = array("q")  # file position of each spilled batch
        self.file_size = 0
        self._data: list[bytes | bytearray] = []  # batches spilled_count..
        self.resident_bytes = 0

    @property
    def spilled_count(self) -> int:
        return len(self.positions)

    # --- memory ------------------------------------------------------------------

    def append(self, chunk: Chunk, now_ms: int) -> None:
        data = chunk.data if not isinstance(chunk.data, memoryview) else bytes(chunk.data)
        self._data.append(data)
        self.resident_bytes += len(data)
        self.note(chunk.base_offset, chunk.last_offset, chunk.max_timestamp, chunk.leader_epoch, len(data), now_ms)
        self.budget.charge(self, len(data))

    def spill(self, need: int | None = None) -> None:
        """Move the oldest resident batches (at least `need` bytes, all if None) to this segment's file."""
        data = self._data
        m = len(data)
        if need is not None:
            m = total = 0
            while m < len(data) and total < need:
                total += len(data[m])
                m += 1
        if not m:
            self.budget.release(self, 0)
            return
        if self.path is None:
            self.path = self.budget.file_for(self.name, self.base_offset)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            start = self.file_size
            try:
                for k in range(0, m, _IOV_MAX):
                    _writev_all(fd, data[k : min(k + _IOV_MAX, m)])
            except OSError:
                os.ftruncate(fd, start)  # no partial spill: the data stays in memory
                raise
            _drop_cached_pages(fd)
        finally:
            os.close(fd)
        pos = start
        for d in data[:m]:
            self.positions.append(pos)
            pos += len(d)
        size = pos - start
        self.file_size = pos
        del data[:m]
        self.resident_bytes -= size
        self.budget.spilled += size
        self.budget.spills += 1
        self.budget.release(self, size)

    # --- reading -----------------------------------------------------------------

    def batch_size(self, i: int) -> int:
        k = len(self.positions)
        if i >= k:
            return len(self._data[i - k])
        return (self.positions[i + 1] if i + 1 < k else self.file_size) - self.positions[i]

    def _read(self, start: int, end: int) -> bytes:
        assert self.path is not None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = os.pread(fd, end - start, start)
        finally:
            os.close(fd)
        if len(data) != end - start:
            raise OSError(errno.EIO, f"{self.path}: short read at {start} ({len(data)} of {end - start} bytes)")
        return data

    def chunks(self, i: int, j: int) -> list[Chunk]:
        b, la, ts, ep = self.bases, self.lasts, self.max_ts, self.epochs
        pos = self.positions
        k = len(pos)
        out: list[Chunk] = []
        if i < min(j, k):
            f = min(j, k)
            start = pos[i]
            end = pos[f] if f < k else self.file_size
            view = memoryview(self._read(start, end))
            for n in range(i, f):
                lo = pos[n] - start
                hi = (pos[n + 1] if n + 1 < k else self.file_size) - start
                out.append(Chunk(b[n], la[n], ts[n], ep[n], view[lo:hi]))
        data = self._data
        for n in range(max(i, k), j):
            out.append(Chunk(b[n], la[n], ts[n], ep[n], data[n - k]))
        return out

    def header(self, i: int) -> RecordBatch | None:
        k = len(self.positions)
        if i >= k:
            return super().header(i)
        size = min(RecordBatch.HEADER_SIZE, self.batch_size(i))
        data = self._read(self.positions[i], self.positions[i] + size)
        if len(data) < RecordBatch.HEADER_SIZE or data[16] != 2:
            return None
        return RecordBatch(data)

    # --- removing ----------------------------------------------------------------

    def truncate(self, i: int) -> None:
        k = len(self.positions)
        if i >= k:
            dropped = sum(len(d) for d in self._data[i - k :])
            del self._data[i - k :]
        else:
            dropped = self.resident_bytes
            self._data = []
            cut = self.positions[i]
            assert self.path is not None
            os.truncate(self.path, cut)
            self.budget.spilled -= self.file_size - cut
            self.file_size = cut
            del self.positions[i:]
        self.resident_bytes -= dropped
        self.size = self.file_size + self.resident_bytes
        self.forget_from(i)
        self.budget.release(self, dropped)

    def delete(self) -> None:
        dropped = self.resident_bytes
        self._data = []
        self.resident_bytes = 0
        self.budget.release(self, dropped)
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.budget.spilled -= self.file_size
            self.path = None
            self.file_size = 0

    def close(self) -> None:
        self.delete()


_FADVISE = getattr(os, "posix_fadvise", None)  # not on macOS


def _drop_cached_pages(fd: int) -> None:
    """Advise the kernel that a spill file's cached pages are not needed (see the module docstring)."""
    if _FADVISE is None:
        return
    try:
        _FADVISE(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError as exc:  # advice only: the spill itself succeeded
        log.debug("posix_fadvise on a spill file: %s", exc)


def _writev_all(fd: int, buffers: list[bytes | bytearray]) -> None:
    total = sum(len(b) for b in buffers)
    written = os.writev(fd, buffers)
    if written == total:
        return
    # a short write: finish the rest buffer by buffer
    for data in buffers:
        if written >= len(data):
            written -= len(data)
            continue
        view = memoryview(data)[written:]
        written = 0
        while view:
            n = os.write(fd, view)
            view = view[n:]


class SpillingLogStorage(LogStorage):
    """One replica log in the in-memory store: segments that spill under the store's budget."""

    def __init__(self, budget: MemoryBudget, name: str) -> None:
        self.budget = budget
        self.name = name

    def new_segment(self, base_offset: int, now_ms: int) -> Segment:
        return SpillingSegment(self.budget, self.name, base_offset, now_ms)
