"""One replica's log in files: segments (`FileSegment`), their indexes, and recovery after a crash.

See kstub/cluster/storage.py for the layout of a data directory and the durability rules; this
module holds a single log's part of it (``broker-<id>/<topic>-<partition>/``) and
`recover_log`, which checks and rebuilds it on start.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import struct
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kstub.protocol.records import BatchError, RecordBatch, iter_stored, verify_stored

from .log import Log
from .segments import Chunk, LogStorage, Segment

if TYPE_CHECKING:
    pass

log = logging.getLogger("kstub.storage")

LONG_MAX = 2**63 - 1

#: the log cleaner's files (kstub/cluster/cleaner.py): being written, complete and replacing others
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
REPLACES_SUFFIX = ".replaces"


# --- files -------------------------------------------------------------------------------------

_INDEX = struct.Struct(">ii")  # relative offset, position
_TIMEINDEX = struct.Struct(">qi")  # max timestamp, relative offset
_ENTRY_HEAD = struct.Struct(">qib")  # offset, size, ... (magic read separately at 16)
INDEX_FLUSH_BYTES = 64 * 1024


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Replace `path` with `data`: a temporary file, fsynced, renamed over it (and the folder fsynced)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if fsync:
        _fsync_dir(path.parent)


def _segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}"


class FileSegment(Segment):
    """A segment whose bytes are in ``<base>.log``; positions and numbers in memory, indexes on disk."""

    def __init__(
        self, directory: Path, base_offset: int, created_ms: int, *, create: bool = True, suffix: str = ""
    ) -> None:
        super().__init__(base_offset, created_ms)
        self.directory = directory
        self._set_paths(suffix)
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT | os.O_TRUNC if create else 0)
        self.fd = os.open(self.path, flags, 0o644)
        self.positions = array("q")
        self._index_buf = bytearray()
        self._time_buf = bytearray()
        self._indexed = 0  # entries already written to the index files
        if create:
            for p in (self.index_path, self.time_path):
                p.write_bytes(b"")

    def _set_paths(self, suffix: str) -> None:
        """The file names: ``<base>.log`` etc., with `suffix` (``.cleaned``, ``.swap``) while the cleaner writes it."""
        name = _segment_name(self.base_offset)
        self.path = self.directory / f"{name}.log{suffix}"
        self.index_path = self.directory / f"{name}.index{suffix}"
        self.time_path = self.directory / f"{name}.timeindex{suffix}"

    def rename(self, suffix: str) -> None:
        """Give the segment's files the names with `suffix` (the cleaner's swap)."""
        old = (self.path, self.index_path, self.time_path)
        self._set_paths(suffix)
        for src, dst in zip(old, (self.path, self.index_path, self.time_path), strict=True):
            os.replace(src, dst)

    def append(self, chunk: Chunk, now_ms: int) -> None:
        try:
            _write_all(self.fd, chunk.data)
        except OSError:
            os.ftruncate(self.fd, self.size)  # never leave a partial batch behind
            raise
        position = self.size
        self.positions.append(position)
        rel = chunk.base_offset - self.base_offset
        self._index_buf += _INDEX.pack(rel, position)
        self._time_buf += _TIMEINDEX.pack(chunk.max_timestamp, rel)
        self.note(chunk.base_offset, chunk.last_offset, chunk.max_timestamp, chunk.leader_epoch, chunk.size, now_ms)
        if len(self._index_buf) >= INDEX_FLUSH_BYTES:
            self.flush_index()

    def flush_index(self) -> None:
        if self._index_buf:
            with open(self.index_path, "ab") as f:
                f.write(self._index_buf)
            with open(self.time_path, "ab") as f:
                f.write(self._time_buf)
            self._indexed += len(self._index_buf) // _INDEX.size
            self._index_buf.clear()
            self._time_buf.clear()

    def batch_size(self, i: int) -> int:
        end = self.positions[i + 1] if i + 1 < len(self.positions) else self.size
        return end - self.positions[i]

    def read_range(self, start: int, end: int) -> bytes:
        data = os.pread(self.fd, end - start, start)
        if len(data) != end - start:
            raise OSError(errno.EIO, f"{self.path}: short read at {start} ({len(data)} of {end - start} bytes)")
        return data

    def chunks(self, i: int, j: int) -> list[Chunk]:
        if i >= j:
            return []
        pos = self.positions
        start = pos[i]
        end = pos[j] if j < len(pos) else self.size
        view = memoryview(self.read_range(start, end))
        b, la, ts, ep = self.bases, self.lasts, self.max_ts, self.epochs
        out = []
        for k in range(i, j):
            lo = pos[k] - start
            hi = (pos[k + 1] if k + 1 < len(pos) else self.size) - start
            out.append(Chunk(b[k], la[k], ts[k], ep[k], view[lo:hi]))
        return out

    def header(self, i: int) -> RecordBatch | None:
        """The v2 batch header of batch i (None for a legacy entry)."""
        data = self.read_range(self.positions[i], self.positions[i] + min(RecordBatch.HEADER_SIZE, self.batch_size(i)))
        if len(data) < RecordBatch.HEADER_SIZE or data[16] != 2:
            return None
        return RecordBatch(data)

    def truncate(self, i: int) -> None:
        if i >= len(self.positions):
            return
        cut = self.positions[i]
        self.flush_index()
        os.ftruncate(self.fd, cut)
        keep = min(i, self._indexed)
        for p, size in ((self.index_path, _INDEX.size), (self.time_path, _TIMEINDEX.size)):
            with open(p, "r+b") as f:
                f.truncate(keep * size)
        self._indexed = keep
        self.size = cut
        del self.positions[i:]
        self.forget_from(i)

    def seal(self) -> None:
        self.flush_index()

    def close(self) -> None:
        if self.fd >= 0:
            self.flush_index()
            os.close(self.fd)
            self.fd = -1

    def delete(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self._index_buf.clear()
        self._time_buf.clear()
        for p in (self.path, self.index_path, self.time_path):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def sync_fd(self) -> int | None:
        return os.dup(self.fd) if self.fd >= 0 else None


class DiskLogStorage(LogStorage):
    """One replica log's folder."""

    persistent = True

    def __init__(self, directory: Path, *, fsync_checkpoints: bool) -> None:
        self.directory = directory
        self.fsync_checkpoints = fsync_checkpoints

    def new_segment(self, base_offset: int, now_ms: int) -> Segment:
        return FileSegment(self.directory, base_offset, now_ms)

    def new_cleaned_segment(self, base_offset: int, created_ms: int) -> Segment:
        return FileSegment(self.directory, base_offset, created_ms, suffix=CLEANED_SUFFIX)

    def swap_segments(self, cleaned: Segment, old: list[Segment]) -> None:
        """Kafka's replaceSegments: ``.cleaned`` → ``.swap`` (+ the list of what it replaces), old ones go, final name.

        A crash anywhere in between is completed or undone by `recover_log`:
        ``.cleaned`` files are deleted, a ``.swap`` file replaces the segments
        its ``.replaces`` file lists.
        """
        assert isinstance(cleaned, FileSegment)
        cleaned.seal()
        os.fsync(cleaned.fd)
        replaces = self.directory / f"{_segment_name(cleaned.base_offset)}{REPLACES_SUFFIX}"
        write_atomically(replaces, "".join(f"{s.base_offset}\n" for s in old).encode(), fsync=True)
        cleaned.rename(SWAP_SUFFIX)
        _fsync_dir(self.directory)
        for seg in old:
            seg.delete()
        cleaned.rename("")
        _fsync_dir(self.directory)
        replaces.unlink(missing_ok=True)

    def save_epochs(self, epochs: list[tuple[int, int]]) -> None:
        text = "0\n" + f"{len(epochs)}\n" + "".join(f"{e} {s}\n" for e, s in epochs)
        write_atomically(self.directory / "leader-epoch-checkpoint", text.encode(), fsync=self.fsync_checkpoints)

    def save_log_start(self, offset: int) -> None:
        write_atomically(self.directory / "log-start-offset", f"{offset}\n".encode(), fsync=self.fsync_checkpoints)

    def sync_dir_fd(self) -> int | None:
        return os.open(self.directory, os.O_RDONLY)

    def delete(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


# --- recovery of one log --------------------------------------------------------------------


def _read_epochs(path: Path) -> list[tuple[int, int]] | None:
    """Kafka's leader-epoch-checkpoint; None if missing or malformed."""
    try:
        lines = path.read_text().split("\n")
        if lines[0].strip() != "0":
            return None
        count = int(lines[1])
        epochs = [tuple(int(x) for x in line.split()) for line in lines[2 : 2 + count]]
        if len(epochs) != count or any(len(e) != 2 for e in epochs):
            return None
        return [(e[0], e[1]) for e in epochs]
    except (OSError, ValueError, IndexError):
        return None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _epoch_lookup(epochs: list[tuple[int, int]]) -> Callable[[int], int]:
    def lookup(offset: int) -> int:
        found = -1
        for e, s in epochs:
            if s > offset:
                break
            found = e
        return found

    return lookup


def _load_index(seg: FileSegment, file_size: int) -> list[tuple[int, int, int]]:
    """The trustworthy prefix of a segment's index files: (relative offset, position, max timestamp) each."""
    try:
        raw_index = seg.index_path.read_bytes()
        raw_time = seg.time_path.read_bytes()
    except OSError:
        return []
    n = min(len(raw_index) // _INDEX.size, len(raw_time) // _TIMEINDEX.size)
    entries: list[tuple[int, int, int]] = []
    last_rel = last_pos = -1
    for i in range(n):
        rel, pos = _INDEX.unpack_from(raw_index, i * _INDEX.size)
        ts, trel = _TIMEINDEX.unpack_from(raw_time, i * _TIMEINDEX.size)
        if trel != rel or rel <= last_rel or pos <= last_pos or pos >= file_size or (i == 0 and pos != 0):
            break
        entries.append((rel, pos, ts))
        last_rel, last_pos = rel, pos
    return entries


class _Torn(Exception):
    pass


def _read_entry(seg: FileSegment, pos: int, file_size: int, *, verify: bool) -> tuple[bytes, int]:
    """The stored entry at `pos`, checked; raises _Torn if it is partial or corrupt."""
    if file_size - pos < 17:
        raise _Torn(f"{file_size - pos} trailing bytes, less than an entry header")
    head = os.pread(seg.fd, 17, pos)
    _, size, _ = _ENTRY_HEAD.unpack_from(head, 0)
    if size < 14:
        raise _Torn(f"entry size {size} at position {pos}")
    total = size + 12
    if pos + total > file_size:
        raise _Torn(f"partial entry at position {pos}: {total} bytes declared, {file_size - pos} present")
    data = os.pread(seg.fd, total, pos)
    if verify:
        try:
            verify_stored(data)
        except BatchError as exc:
            raise _Torn(f"corrupt entry at position {pos}: {exc}") from None
    return data, total


def _last_offset_at(seg: FileSegment, pos: int, fallback: int) -> int:
    """The last offset of the v2 batch at `pos` (from its header), else `fallback`."""
    head = os.pread(seg.fd, RecordBatch.HEADER_SIZE, pos)
    if len(head) < RecordBatch.HEADER_SIZE or head[16] != 2:
        return fallback
    (base,) = struct.unpack_from(">q", head, 0)
    (delta,) = struct.unpack_from(">i", head, 23)
    return base + delta


def _recover_segment(
    seg: FileSegment, epoch_of: Callable[[int], int], *, check_all: bool, name: str, gaps: bool = False
) -> tuple[bool, list[tuple[int, int]]]:
    """Load a segment's batches (index first, then the log past it); cut a torn tail.

    Returns (whether the segment was cut short, epochs seen in the batches read).
    """
    st = os.fstat(seg.fd)
    file_size = st.st_size
    seg.created_ms = seg.last_modified_ms = int(st.st_mtime * 1000)
    entries = [] if check_all else _load_index(seg, file_size)
    trusted = len(entries)
    # The last indexed entry must match the batch header it points to, else the index is not trusted at all.
    if entries:
        rel, pos, _ = entries[-1]
        try:
            data, total = _read_entry(seg, pos, file_size, verify=False)
            first, _last, _ts = next(iter_stored(data))
            if first != seg.base_offset + rel:
                raise _Torn("index does not match the log")
        except (_Torn, BatchError, StopIteration):
            entries, trusted = [], 0
    seen_epochs: list[tuple[int, int]] = []
    for k, (rel, pos, ts) in enumerate(entries):
        base = seg.base_offset + rel
        if k + 1 < len(entries):
            last = seg.base_offset + entries[k + 1][0] - 1
            if gaps:  # a compacted log: batches need not be contiguous
                last = _last_offset_at(seg, pos, last)
            size = entries[k + 1][1] - pos
        else:
            data, size = _read_entry(seg, pos, file_size, verify=False)
            last = max(x[1] for x in iter_stored(data))
        seg.positions.append(pos)
        seg.note(base, last, ts, epoch_of(base), size, seg.last_modified_ms)
    pos = seg.size  # entries are contiguous from position 0
    cut = False
    while pos < file_size:
        try:
            data, total = _read_entry(seg, pos, file_size, verify=True)
            first, last, ts = next(iter_stored(data))
            if len(seg) and first < seg.end_offset:  # (gaps are a compaction's)
                raise _Torn(f"entry at position {pos} starts at offset {first}, before {seg.end_offset}")
        except (_Torn, BatchError) as exc:
            log.warning("%s: %s; truncating segment %s at %d", name, exc, seg.path.name, pos)
            os.ftruncate(seg.fd, pos)
            cut = True
            break
        epoch = RecordBatch(data).partition_leader_epoch if data[16] == 2 else epoch_of(first)
        if not seen_epochs or seen_epochs[-1][0] < epoch:
            seen_epochs.append((epoch, first))
        seg.positions.append(pos)
        seg.note(first, last, ts, epoch, total, seg.last_modified_ms)
        pos += total
    seg._indexed = trusted
    sizes = (_file_size(seg.index_path), _file_size(seg.time_path))
    if len(seg) != trusted or sizes != (len(seg) * _INDEX.size, len(seg) * _TIMEINDEX.size):
        _rewrite_index(seg)
    return cut, seen_epochs


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def _rewrite_index(seg: FileSegment) -> None:
    index = bytearray()
    times = bytearray()
    for i in range(len(seg)):
        rel = seg.bases[i] - seg.base_offset
        index += _INDEX.pack(rel, seg.positions[i])
        times += _TIMEINDEX.pack(seg.max_ts[i], rel)
    seg.index_path.write_bytes(index)
    seg.time_path.write_bytes(times)
    seg._indexed = len(seg)


def _finish_cleaning(directory: Path, name: str) -> None:
    """Undo or complete what a crash left of a cleaning (see `DiskLogStorage.swap_segments`)."""
    for p in directory.glob(f"*{CLEANED_SUFFIX}"):
        log.info("%s: deleting %s, left by an interrupted cleaning", name, p.name)
        p.unlink(missing_ok=True)
    for swap in sorted(directory.glob(f"*.log{SWAP_SUFFIX}")):
        stem = swap.name.split(".")[0]
        replaces = directory / f"{stem}{REPLACES_SUFFIX}"
        try:
            old = [int(line) for line in replaces.read_text().split()]
        except (OSError, ValueError):
            old = None
        suffixes = (".log", ".index", ".timeindex")
        if old is None:
            log.warning("%s: %s without a list of what it replaces; deleting it", name, swap.name)
            for suffix in suffixes:
                (directory / f"{stem}{suffix}{SWAP_SUFFIX}").unlink(missing_ok=True)
            continue
        log.info("%s: completing the swap of cleaned segment %s", name, stem)
        for base in old:
            for suffix in suffixes:
                (directory / f"{_segment_name(base)}{suffix}").unlink(missing_ok=True)
        for suffix in suffixes:
            src = directory / f"{stem}{suffix}{SWAP_SUFFIX}"
            if src.exists():
                os.replace(src, directory / f"{stem}{suffix}")
        _fsync_dir(directory)
        replaces.unlink(missing_ok=True)
    for stray in directory.glob(f"*{REPLACES_SUFFIX}"):
        stray.unlink(missing_ok=True)


def recover_log(
    directory: Path, *, config: Callable[[str], str], clock: Callable[[], int], fsync_checkpoints: bool, name: str
) -> Log:
    """Open a replica log from its folder, repairing what a crash left (see the module docstring)."""
    storage = DiskLogStorage(directory, fsync_checkpoints=fsync_checkpoints)
    _finish_cleaning(directory, name)
    gaps = "compact" in config("cleanup.policy")
    bases = sorted(int(p.stem) for p in directory.glob("*.log") if p.stem.isdigit())
    checkpoint = _read_epochs(directory / "leader-epoch-checkpoint")
    epochs = list(checkpoint or [])
    epoch_of = _epoch_lookup(epochs)
    segments: list[Segment] = []
    rebuilt_epochs = checkpoint is None
    for i, base in enumerate(bases):
        seg = FileSegment(directory, base, clock(), create=False)
        is_last = i == len(bases) - 1
        cut, seen = _recover_segment(seg, epoch_of, check_all=is_last or rebuilt_epochs, name=name, gaps=gaps)
        for epoch, start in seen:
            if not epochs or epochs[-1][0] < epoch:
                epochs.append((epoch, start))
        segments.append(seg)
        if cut and not is_last:
            for later in bases[i + 1 :]:
                log.warning("%s: dropping segment %s after a torn one", name, _segment_name(later))
                for suffix in (".log", ".index", ".timeindex"):
                    (directory / f"{_segment_name(later)}{suffix}").unlink(missing_ok=True)
            break
    start = _read_int(directory / "log-start-offset")
    first_base = segments[0].base_offset if segments else (start or 0)
    log_start = max(start or 0, first_base)
    if not segments:
        segments = [storage.new_segment(log_start, clock())]
    end = segments[-1].end_offset if len(segments[-1]) else segments[-1].base_offset
    epochs = [(e, s) for e, s in epochs if s < max(end, log_start)] if epochs else []
    lg = Log(log_start, config=config, clock=clock, storage=storage, segments=segments, epochs=epochs)
    if epochs != checkpoint:
        storage.save_epochs(lg.epochs)
    lg.last_flush_ms = clock()
    log.info(
        "%s: recovered %d segment(s), offsets %d..%d, %d bytes",
        name,
        len(segments),
        lg.log_start_offset,
        lg.log_end_offset,
        lg.size_bytes,
    )
    return lg
