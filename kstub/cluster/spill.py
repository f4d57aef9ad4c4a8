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
consumers read) is the last to go. A segment that spilled keeps a spilled
prefix and a memory tail: later appends go to memory again until the next
spill. Per batch, a segment keeps only numbers in memory (offsets,
timestamps, epochs, file positions).

The replicas of a partition share bytes: a follower in this process appends
the object its leader stored. The budget counts each object once; when one
replica spills, the others spill the same batches too (only then is the
memory free), and a batch is written once: the replicas that spill it after
the first read it from the first one's file (`SpillFile`, counted
references).

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
read or spill (no descriptor is held between them), removed when no segment
reads from them any longer (retention, DeleteRecords, truncation) and with the
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

from .segments import Chunk, LogStorage, Segment, owned

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

    The replicas of a partition share their batches' bytes (a follower in
    this process appends the very object its leader stored), so the budget
    counts each object once, however many segments hold it, and a spilled
    object is written once: the replicas that spill it later point at the
    same place in the same file.
    """

    def __init__(self, limit: int = DEFAULT_BUDGET_BYTES, directory: str | os.PathLike[str] | None = None) -> None:
        self.limit = limit
        self.low = limit - limit // 8
        self.parent = directory
        #: bytes of batches held in memory (each object once), and in spill files
        self.resident = 0
        self.spilled = 0
        self.spills = 0
        self._order: dict[SpillingSegment, None] = {}  # segments with resident bytes, oldest data first
        self._groups: dict[object, dict[SpillingSegment, None]] = {}  # the same, by partition
        #: id of each object some segment holds in memory -> how many segments hold it (the holders keep
        #: it alive, so an id is not reused while it is here)
        self._holders: dict[int, int] = {}
        #: where an object that one holder spilled and others still hold lives
        self._located: dict[int, tuple[SpillFile, int]] = {}
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

    # --- holding -----------------------------------------------------------------

    def charge(self, seg: SpillingSegment, data: bytes | bytearray | memoryview) -> None:
        """`seg` holds `data` in memory now; spill if that passes the budget."""
        key = id(data)
        held = self._holders.get(key, 0)
        self._holders[key] = held + 1
        if not held:
            self.resident += len(data)
        if seg not in self._order:
            self._order[seg] = None
            self._groups.setdefault(seg.group, {})[seg] = None
        if 0 <= self.limit < self.resident and self.resident > self._retry_at:
            self.spill()

    def let_go(self, data: bytes | bytearray | memoryview) -> None:
        """A segment no longer holds `data` in memory (spilled or dropped)."""
        key = id(data)
        held = self._holders[key] - 1
        if held:
            self._holders[key] = held
            return
        del self._holders[key]
        self._located.pop(key, None)
        self.resident -= len(data)

    def shared(self, data: bytes | bytearray | memoryview) -> bool:
        return self._holders.get(id(data), 0) > 1

    def located(self, data: bytes | bytearray | memoryview) -> tuple[SpillFile, int] | None:
        return self._located.get(id(data))

    def locate(self, data: bytes | bytearray | memoryview, file: SpillFile, position: int) -> None:
        self._located[id(data)] = (file, position)

    def release(self, seg: SpillingSegment) -> None:
        """`seg` let go of some of its bytes: it leaves the spill order once it holds none."""
        if not seg.resident_bytes and self._order.pop(seg, 0) is None:
            group = self._groups[seg.group]
            del group[seg]
            if not group:
                del self._groups[seg.group]

    # --- spilling ----------------------------------------------------------------

    def spill(self) -> None:
        """Write the oldest resident data to files until under the low mark.

        Whatever the oldest segment spills, the other replicas of its
        partition spill too, up to the last of those objects they hold:
        memory held by several segments is freed only when all let go.
        """
        while self.resident > self.low and self._order:
            seg = next(iter(self._order))
            try:
                spilled = seg.spill(self.resident - self.low)
                if spilled and seg.group is not None:
                    # those still held elsewhere: every such object has a place (written shared, or reused)
                    keys = {id(d) for d in spilled if id(d) in self._located}
                    for other in list(self._groups.get(seg.group, ())):
                        if other is not seg and keys:
                            other.spill_through(keys)
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
        self._groups.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


class SpillFile:
    """One spill file: written by one segment, read by every segment whose spilled batches it holds.

    `refs` counts those batches (of all segments); the file is removed when it reaches 0.
    """

    __slots__ = ("budget", "path", "refs", "size")

    def __init__(self, budget: MemoryBudget, path: Path) -> None:
        self.budget = budget
        self.path = path
        self.size = 0
        self.refs = 0

    def __repr__(self) -> str:
        return f"SpillFile({self.path.name}, size={self.size}, refs={self.refs})"

    def read(self, start: int, end: int) -> bytes:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = os.pread(fd, end - start, start)
        finally:
            os.close(fd)
        if len(data) != end - start:
            raise OSError(errno.EIO, f"{self.path}: short read at {start} ({len(data)} of {end - start} bytes)")
        return data

    def unref(self, count: int = 1) -> None:
        self.refs -= count
        if self.refs <= 0:
            self.path.unlink(missing_ok=True)
            self.budget.spilled -= self.size
            self.size = 0


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
    """A segment whose first `spilled_count` batches are in files, the rest in memory.

    Its own file (`file`) holds the batches it wrote itself; a batch another
    replica of its partition spilled first is read from that replica's file.
    """

    def __init__(
        self, budget: MemoryBudget, name: str, base_offset: int, created_ms: int, group: object = None
    ) -> None:
        super().__init__(base_offset, created_ms)
        self.budget = budget
        self.name = name
        self.group = group
        self.file: SpillFile | None = None
        self.files: list[SpillFile] = []  # the file of each spilled batch
        self.positions = array("q")  # ... its position there
        self.lengths = array("q")  # ... and its size
        self._data: list[bytes | bytearray | memoryview] = []  # batches spilled_count..
        self.resident_bytes = 0

    @property
    def spilled_count(self) -> int:
        return len(self.positions)

    @property
    def path(self) -> Path | None:
        """This segment's own spill file (None if it wrote none)."""
        return self.file.path if self.file is not None else None

    @property
    def file_size(self) -> int:
        return self.file.size if self.file is not None else 0

    # --- memory ------------------------------------------------------------------

    def append(self, chunk: Chunk, now_ms: int) -> None:
        data = owned(chunk.data)
        self._data.append(data)
        self.resident_bytes += len(data)
        self.note(chunk.base_offset, chunk.last_offset, chunk.max_timestamp, chunk.leader_epoch, len(data), now_ms)
        self.budget.charge(self, data)

    def spill(self, need: int | None = None) -> list[bytes | bytearray | memoryview]:
        """Move the oldest resident batches (at least `need` bytes, all if None) out of memory; returns them."""
        data = self._data
        m = len(data)
        if need is not None:
            m = total = 0
            while m < len(data) and total < need:
                total += len(data[m])
                m += 1
        return self._spill(m)

    def spill_through(self, keys: set[int]) -> None:
        """Spill the resident batches up to the last one whose id is in `keys` (another replica spilled those)."""
        last = -1
        for n, d in enumerate(self._data):
            if id(d) in keys:
                last = n
        if last >= 0:
            self._spill(last + 1)

    def _spill(self, m: int) -> list[bytes | bytearray | memoryview]:
        """Spill the first `m` resident batches: those another replica already spilled are not written again."""
        if not m:
            self.budget.release(self)
            return []
        budget = self.budget
        moving = self._data[:m]
        places = [budget.located(d) for d in moving]
        to_write = [d for d, place in zip(moving, places, strict=True) if place is None]
        if to_write:
            if self.file is None:
                self.file = SpillFile(budget, budget.file_for(self.name, self.base_offset))
            own = self.file
            fd = os.open(own.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                start = own.size
                try:
                    for k in range(0, len(to_write), _IOV_MAX):
                        _writev_all(fd, to_write[k : k + _IOV_MAX])
                except OSError:
                    os.ftruncate(fd, start)  # no partial spill: the data stays in memory
                    raise
                _drop_cached_pages(fd)
            finally:
                os.close(fd)
            pos = start
        for d, place in zip(moving, places, strict=True):
            if place is None:
                place = (own, pos)
                pos += len(d)
                if budget.shared(d):  # the other holders spill it from here
                    budget.locate(d, own, place[1])
            file, at = place
            file.refs += 1
            self.files.append(file)
            self.positions.append(at)
            self.lengths.append(len(d))
        if to_write:
            budget.spilled += pos - own.size
            own.size = pos
            budget.spills += 1
        del self._data[:m]
        self.resident_bytes -= sum(len(d) for d in moving)
        for d in moving:
            budget.let_go(d)
        budget.release(self)
        return moving

    # --- reading -----------------------------------------------------------------

    def batch_size(self, i: int) -> int:
        k = len(self.positions)
        if i >= k:
            return len(self._data[i - k])
        return self.lengths[i]

    def chunks(self, i: int, j: int) -> list[Chunk]:
        b, la, ts, ep = self.bases, self.lasts, self.max_ts, self.epochs
        files, pos, lengths = self.files, self.positions, self.lengths
        k = len(pos)
        out: list[Chunk] = []
        n = i
        f = min(j, k)
        while n < f:
            # one read for each run of batches lying one after another in one file
            file, start = files[n], pos[n]
            end = start + lengths[n]
            r = n + 1
            while r < f and files[r] is file and pos[r] == end:
                end += lengths[r]
                r += 1
            view = memoryview(file.read(start, end))
            for q in range(n, r):
                lo = pos[q] - start
                out.append(Chunk(b[q], la[q], ts[q], ep[q], view[lo : lo + lengths[q]]))
            n = r
        data = self._data
        for n in range(max(i, k), j):
            out.append(Chunk(b[n], la[n], ts[n], ep[n], data[n - k]))
        return out

    def header(self, i: int) -> RecordBatch | None:
        k = len(self.positions)
        if i >= k:
            return super().header(i)
        size = min(RecordBatch.HEADER_SIZE, self.lengths[i])
        data = self.files[i].read(self.positions[i], self.positions[i] + size)
        if len(data) < RecordBatch.HEADER_SIZE or data[16] != 2:
            return None
        return RecordBatch(data)

    # --- removing ----------------------------------------------------------------

    def truncate(self, i: int) -> None:
        k = len(self.positions)
        if i >= k:
            dropped = self._data[i - k :]
            del self._data[i - k :]
        else:
            dropped = self._data
            self._data = []
            self._unref_spilled(i)
        self.resident_bytes -= sum(len(d) for d in dropped)
        for d in dropped:
            self.budget.let_go(d)
        self.size = sum(self.lengths) + self.resident_bytes
        self.forget_from(i)
        self.budget.release(self)

    def _unref_spilled(self, i: int) -> None:
        """Forget spilled batches i..; this segment's own file is cut back to what is still read from it."""
        own = self.file
        for file in self.files[i:]:
            if file is not own:
                file.unref()
        if own is not None:
            dropped = sum(1 for file in self.files[i:] if file is own)
            kept = [n for n in range(i) if self.files[n] is own]
            own.refs -= dropped
            if own.refs <= 0:
                own.unref(0)
                self.file = None
            elif own.refs == len(kept):  # nobody else reads it: the bytes past ours go
                cut = self.positions[kept[-1]] + self.lengths[kept[-1]]
                os.truncate(own.path, cut)
                self.budget.spilled -= own.size - cut
                own.size = cut
        del self.files[i:]
        del self.positions[i:]
        del self.lengths[i:]

    def delete(self) -> None:
        dropped = self._data
        self._data = []
        self.resident_bytes = 0
        for d in dropped:
            self.budget.let_go(d)
        self.budget.release(self)
        self._unref_spilled(0)

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


def _writev_all(fd: int, buffers: list[bytes | bytearray | memoryview]) -> None:
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

    def __init__(self, budget: MemoryBudget, name: str, group: object = None) -> None:
        self.budget = budget
        self.name = name
        self.group = group  # the partition: its replicas' logs share their bytes

    def new_segment(self, base_offset: int, now_ms: int) -> Segment:
        return SpillingSegment(self.budget, self.name, base_offset, now_ms, self.group)
