"""Where a cluster keeps its state: memory (`StateStore`), or a data directory (`DiskStore`).

The cluster model calls its store at a few points: a new replica log
(`new_log`), a metadata change (`save_metadata`: topics, configs,
assignments, leader epochs, dynamic broker configs), a deleted topic,
producer ids handed out, and committed group offsets (`save_offsets` /
`load_offsets`: the persistence hook for the group coordinator).
`StateStore` keeps nothing beyond the process (the fast test fixture);
`DiskStore` (``kstub serve --data-dir DIR``) writes it all under DIR, and
`recover` brings it back on the next start.

Layout of DIR (Kafka's names where Kafka has them)::

    .lock                                  held while a server uses DIR
    meta/cluster.json                      topics, configs, assignments, leader epochs, dynamic configs
    meta/producer-ids.json                 producer ids handed out, and their epochs
    meta/group-offsets.log                 committed group offsets, one JSON line per commit
    broker-<id>/<topic>-<partition>/       one replica's log
        00000000000000000000.log           a segment: the batches, byte for byte as stored
        00000000000000000000.index         per batch: offset - segment base (int32), file position (int32)
        00000000000000000000.timeindex     per batch: max timestamp (int64), offset - segment base (int32)
        00000000000000001234.snapshot      producer state (idempotence) as of offset 1234
        leader-epoch-checkpoint            Kafka's text format: 0, count, "epoch start-offset" lines
        log-start-offset                   the log start offset (moved by retention, DeleteRecords)
        partition.metadata                 the topic id, to tell a re-created topic from a stale folder

Kafka's offset index is sparse; ours has one entry per batch (the segment
keeps the same numbers in memory anyway), and the time index one entry per
batch with that batch's max timestamp. Index entries are buffered and
written in blocks: after a crash the index may be behind its log, and
recovery indexes the rest.

Durability follows Kafka's flush settings: by default data is left to the OS
page cache (it survives the process being killed, not the machine losing
power); ``flush.messages`` fsyncs a log after that many messages,
``flush.ms`` when the flush scheduler (``log.flush.scheduler.interval.ms``)
finds a log that long unflushed; ``kstub.fsync.on.ack=true`` (or ``kstub serve
--fsync``) fsyncs a partition's new data before a produce is acknowledged.
Metadata files are always written atomically (temporary file, fsync, rename).

Recovery (`recover`): every segment's index is checked (well-formed, inside
its file, last entry matching the batch header it points to) and rebuilt
from the log when it is not; batches past the last indexed one, and every
batch of a log's last segment, are read and CRC-checked; a torn or corrupt
batch is cut off (with a log line) and any later segment of that log is
dropped. Producer state comes from the newest snapshot plus the batches
after it.

Reads: a fetch reads the byte range of the batches it returns with one
``pread`` per segment, on the Trio thread. Those reads are bounded by the
fetch's max bytes and nearly always served from the page cache (the data was
just written); a worker thread per fetch would cost more than the read and
would have to guard against segments deleted while it runs. fsync, which can
take long, runs in a worker thread (`Log.sync`).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import struct
import uuid
from array import array
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from kstub.protocol.records import BatchError, RecordBatch, iter_stored, verify_stored

from .log import Chunk, Log, LogStorage, Segment
from .spill import MemoryBudget, SpillingLogStorage

if TYPE_CHECKING:
    from .model import Cluster, Partition, Topic

log = logging.getLogger("kstub.storage")

#: (topic, partition) -> (offset, leader epoch, metadata)
GroupOffsets = dict[tuple[str, int], tuple[int, int, str | None]]

LONG_MAX = 2**63 - 1


def replica_config(topic: Topic, broker_id: int) -> Callable[[str], str]:
    """The settings of `topic` as the broker holding a replica sees them."""

    def config(name: str) -> str:
        return topic.config(name, broker_id)

    return config


class StateStore:
    """In memory: logs keep their bytes in memory and nothing outlives the process.

    Memory is bounded by ``kstub.memory.budget.bytes`` (read when the first
    log is made): beyond it the oldest batches spill to a temporary directory
    (kstub/cluster/spill.py), removed when the store closes. One budget for
    every replica of every broker of the cluster.
    """

    data_dir: Path | None = None
    fsync_on_ack = False
    memory: MemoryBudget | None = None

    def memory_budget(self, cluster: Cluster) -> MemoryBudget:
        """The store's memory budget (made on first use from the cluster's settings)."""
        if self.memory is None:
            spill_dir = cluster.config["kstub.memory.spill.dir"] or None
            self.memory = MemoryBudget(int(cluster.config["kstub.memory.budget.bytes"]), spill_dir)
        return self.memory

    def new_log(self, cluster: Cluster, partition: Partition, broker_id: int) -> Log:
        """A new, empty log for `broker_id`'s replica of `partition`."""
        name = f"{partition.topic.name}-{partition.index}-broker-{broker_id}"
        storage = SpillingLogStorage(self.memory_budget(cluster), name)
        return Log(config=replica_config(partition.topic, broker_id), clock=cluster.now_ms, storage=storage)

    def broker_dir(self, broker_id: int) -> Path | None:
        """The folder holding `broker_id`'s logs (None in memory)."""
        return None

    def recover(self, cluster: Cluster) -> None:
        """Bring back what a previous run left (called once the brokers are registered)."""

    def save_metadata(self, cluster: Cluster) -> None:
        """Topics, their configs, assignments and leader epochs, or dynamic broker configs changed."""

    def save_producer_ids(self, cluster: Cluster) -> None:
        """InitProducerId handed out an id or bumped an epoch."""

    def delete_topic(self, cluster: Cluster, topic: Topic) -> None:
        """`topic` was deleted (and is no longer in `cluster.topics`): drop its logs."""
        self.save_metadata(cluster)
        for partition in topic.partitions:
            for lg in partition.logs.values():
                lg.delete()

    async def after_produce(self, partitions: list[Partition], acks: int) -> None:
        """Flush what the durability settings ask for after a produce request appended to `partitions`."""

    async def background(self, cluster: Cluster) -> None:
        """Periodic work (the flush scheduler); returns at once if there is none."""

    def save_offsets(self, group: str, offsets: Mapping[tuple[str, int], tuple[int, int, str | None] | None]) -> None:
        """Committed offsets of `group`; a value of None deletes that partition's offset."""

    def delete_group(self, group: str) -> None:
        """Forget every committed offset of `group`."""

    def load_offsets(self) -> dict[str, GroupOffsets]:
        """Every group's committed offsets, as saved."""
        return {}

    async def sync_offsets(self) -> None:
        """Make saved offsets durable (with fsync.on.ack: call before answering OffsetCommit)."""

    def close(self, cluster: Cluster) -> None:
        """The server stops: spilled files and their directory go."""
        if self.memory is not None:
            self.memory.close()


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

    def __init__(self, directory: Path, base_offset: int, created_ms: int, *, create: bool = True) -> None:
        super().__init__(base_offset, created_ms)
        self.directory = directory
        name = _segment_name(base_offset)
        self.path = directory / f"{name}.log"
        self.index_path = directory / f"{name}.index"
        self.time_path = directory / f"{name}.timeindex"
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT | os.O_TRUNC if create else 0)
        self.fd = os.open(self.path, flags, 0o644)
        self.positions = array("q")
        self._index_buf = bytearray()
        self._time_buf = bytearray()
        self._indexed = 0  # entries already written to the index files
        if create:
            for p in (self.index_path, self.time_path):
                p.write_bytes(b"")

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


def _recover_segment(
    seg: FileSegment, epoch_of: Callable[[int], int], *, check_all: bool, name: str
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
            if len(seg) and first != seg.end_offset:
                raise _Torn(f"entry at position {pos} starts at offset {first}, not {seg.end_offset}")
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


def recover_log(
    directory: Path, *, config: Callable[[str], str], clock: Callable[[], int], fsync_checkpoints: bool, name: str
) -> Log:
    """Open a replica log from its folder, repairing what a crash left (see the module docstring)."""
    storage = DiskLogStorage(directory, fsync_checkpoints=fsync_checkpoints)
    bases = sorted(int(p.stem) for p in directory.glob("*.log") if p.stem.isdigit())
    checkpoint = _read_epochs(directory / "leader-epoch-checkpoint")
    epochs = list(checkpoint or [])
    epoch_of = _epoch_lookup(epochs)
    segments: list[Segment] = []
    rebuilt_epochs = checkpoint is None
    for i, base in enumerate(bases):
        seg = FileSegment(directory, base, clock(), create=False)
        is_last = i == len(bases) - 1
        cut, seen = _recover_segment(seg, epoch_of, check_all=is_last or rebuilt_epochs, name=name)
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


# --- the whole store -----------------------------------------------------------------------


class RecoveryError(Exception):
    """The data directory cannot be used as it is (the message says why)."""


class DiskStore(StateStore):
    """Everything under one data directory (``kstub serve --data-dir DIR``)."""

    def __init__(self, data_dir: str | os.PathLike[str], *, fsync_on_ack: bool = False) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.fsync_on_ack = fsync_on_ack
        self.meta_dir = self.data_dir / "meta"
        self._lock_fd: int | None = None
        self._offsets_fd: int | None = None
        self._offsets_dirty = False

    # --- paths and files ------------------------------------------------------------------

    def broker_dir(self, broker_id: int) -> Path | None:
        return self.data_dir / f"broker-{broker_id}"

    def _log_dir(self, topic: Topic, partition: int, broker_id: int) -> Path:
        return self.data_dir / f"broker-{broker_id}" / f"{topic.name}-{partition}"

    def _open(self) -> None:
        if self._lock_fd is not None:
            return
        self.meta_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RecoveryError(f"{self.data_dir} is in use by another kstub process") from None
        self._lock_fd = fd

    # --- logs ---------------------------------------------------------------------------

    def new_log(self, cluster: Cluster, partition: Partition, broker_id: int) -> Log:
        self._open()
        topic = partition.topic
        directory = self._log_dir(topic, partition.index, broker_id)
        if directory.exists():
            shutil.rmtree(directory)  # a stale folder of a topic deleted before a crash
        directory.mkdir(parents=True)
        (directory / "partition.metadata").write_text(f"version: 0\ntopic_id: {topic.topic_id}\n")
        lg = Log(
            config=replica_config(topic, broker_id),
            clock=cluster.now_ms,
            storage=DiskLogStorage(directory, fsync_checkpoints=True),
        )
        self._watch_rolls(partition, lg, broker_id)
        return lg

    def _watch_rolls(self, partition: Partition, lg: Log, broker_id: int) -> None:
        """Take a producer-state snapshot when the leader's log rolls (as Kafka does)."""

        def rolled(base_offset: int) -> None:
            if partition.leader == broker_id and partition.logs.get(broker_id) is lg:
                self._save_producer_snapshot(partition, lg)

        lg.on_roll = rolled

    def _save_producer_snapshot(self, partition: Partition, lg: Log) -> None:
        storage = lg.storage
        if not isinstance(storage, DiskLogStorage):
            return
        offset = lg.log_end_offset
        data = json.dumps({"offset": offset, "producers": partition.producers.snapshot()}).encode()
        write_atomically(storage.directory / f"{_segment_name(offset)}.snapshot", data, fsync=False)
        snapshots = sorted(storage.directory.glob("*.snapshot"))
        for old in snapshots[:-2]:
            old.unlink(missing_ok=True)

    # --- metadata -----------------------------------------------------------------------

    def save_metadata(self, cluster: Cluster) -> None:
        self._open()
        config = cluster.config
        doc = {
            "version": 1,
            "cluster_id": cluster.cluster_id,
            "dynamic_default": config.dynamic_default,
            "dynamic_broker": {str(k): v for k, v in config.dynamic_broker.items()},
            "topics": [
                {
                    "name": t.name,
                    "id": str(t.topic_id),
                    "configs": t.configs,
                    "partitions": [
                        {"replicas": p.replicas, "leader": p.leader, "leader_epoch": p.leader_epoch, "isr": p.isr}
                        for p in t.partitions
                    ],
                }
                for t in cluster.topics.values()
            ],
        }
        write_atomically(self.meta_dir / "cluster.json", json.dumps(doc, indent=1).encode())

    def save_producer_ids(self, cluster: Cluster) -> None:
        self._open()
        data = json.dumps(cluster.producer_ids.snapshot()).encode()
        write_atomically(self.meta_dir / "producer-ids.json", data, fsync=self.fsync_on_ack)

    def delete_topic(self, cluster: Cluster, topic: Topic) -> None:
        self.save_metadata(cluster)
        for partition in topic.partitions:
            for lg in partition.logs.values():
                lg.delete()

    # --- durability ---------------------------------------------------------------------

    async def after_produce(self, partitions: list[Partition], acks: int) -> None:
        for p in partitions:
            lg = p.leader_log
            if (self.fsync_on_ack and acks != 0) or lg.unflushed_messages >= int(p.config("flush.messages")):
                await lg.sync()

    async def background(self, cluster: Cluster) -> None:
        """The flush scheduler: every log.flush.scheduler.interval.ms, fsync logs unflushed for flush.ms."""
        while True:
            interval = int(cluster.config["log.flush.scheduler.interval.ms"])
            if interval >= LONG_MAX:
                return  # Kafka's default: no scheduler, flush.ms is not checked
            await trio.sleep(max(interval, 1) / 1000)
            now = cluster.now_ms()
            for partition in list(cluster.iter_partitions()):
                flush_ms = int(partition.config("flush.ms"))
                for lg in list(partition.logs.values()):
                    if lg.unflushed_messages > 0 and now - lg.last_flush_ms >= flush_ms:
                        await lg.sync()

    # --- group offsets --------------------------------------------------------------------

    def _offsets_file(self) -> int:
        if self._offsets_fd is None:
            self._open()
            self._offsets_fd = os.open(
                self.meta_dir / "group-offsets.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
            )
        return self._offsets_fd

    def save_offsets(self, group: str, offsets: Mapping[tuple[str, int], tuple[int, int, str | None] | None]) -> None:
        entries = [
            [topic, partition, None, None, None] if value is None else [topic, partition, *value]
            for (topic, partition), value in offsets.items()
        ]
        line = json.dumps({"group": group, "offsets": entries}, separators=(",", ":")) + "\n"
        _write_all(self._offsets_file(), line.encode())
        self._offsets_dirty = True

    def delete_group(self, group: str) -> None:
        line = json.dumps({"group": group, "deleted": True}, separators=(",", ":")) + "\n"
        _write_all(self._offsets_file(), line.encode())
        self._offsets_dirty = True

    def load_offsets(self) -> dict[str, GroupOffsets]:
        self._open()
        path = self.meta_dir / "group-offsets.log"
        groups: dict[str, GroupOffsets] = {}
        lines = 0
        try:
            text = path.read_text()
        except FileNotFoundError:
            return groups
        for raw in text.split("\n"):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                log.warning("%s: skipping a torn line", path)
                continue
            lines += 1
            group = record["group"]
            if record.get("deleted"):
                groups.pop(group, None)
                continue
            offsets = groups.setdefault(group, {})
            for topic, partition, offset, epoch, metadata in record["offsets"]:
                if offset is None:
                    offsets.pop((topic, partition), None)
                else:
                    offsets[(topic, partition)] = (offset, epoch, metadata)
        live = sum(len(o) for o in groups.values())
        if lines > 2 * len(groups) + 100 and lines > 2 * live:
            self._compact_offsets(groups)
        return groups

    def _compact_offsets(self, groups: dict[str, GroupOffsets]) -> None:
        if self._offsets_fd is not None:
            os.close(self._offsets_fd)
            self._offsets_fd = None
        text = "".join(
            json.dumps({"group": g, "offsets": [[t, p, *v] for (t, p), v in offsets.items()]}, separators=(",", ":"))
            + "\n"
            for g, offsets in groups.items()
        )
        write_atomically(self.meta_dir / "group-offsets.log", text.encode())

    async def sync_offsets(self) -> None:
        if self.fsync_on_ack and self._offsets_dirty and self._offsets_fd is not None:
            self._offsets_dirty = False
            fd = os.dup(self._offsets_fd)
            await trio.to_thread.run_sync(_fsync_close, fd)

    # --- start and stop -------------------------------------------------------------------

    def recover(self, cluster: Cluster) -> None:
        from .model import Partition, Topic

        self._open()
        path = self.meta_dir / "cluster.json"
        doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"topics": []}
        if "cluster_id" in doc and doc["cluster_id"] != cluster.cluster_id:
            if "cluster.id" in cluster.config.explicit:
                raise RecoveryError(
                    f"{self.data_dir} belongs to cluster {doc['cluster_id']}, not {cluster.cluster_id} (-c cluster.id)"
                )
            cluster.cluster_id = doc["cluster_id"]
        cluster.config.dynamic_default = dict(doc.get("dynamic_default", {}))
        cluster.config.dynamic_broker = {int(k): dict(v) for k, v in doc.get("dynamic_broker", {}).items()}
        ids_path = self.meta_dir / "producer-ids.json"
        if ids_path.exists():
            cluster.producer_ids.restore(json.loads(ids_path.read_text()))
        needed = max((r for t in doc["topics"] for p in t["partitions"] for r in p["replicas"]), default=-1)
        missing = sorted(
            {r for t in doc["topics"] for p in t["partitions"] for r in p["replicas"]} - set(cluster.brokers)
        )
        if missing:
            raise RecoveryError(
                f"{self.data_dir} holds replicas on brokers {missing}, which this server does not run "
                f"(start it with --brokers {needed + 1})"
            )
        known: set[Path] = set()
        for t in doc["topics"]:
            topic = Topic(cluster, t["name"], uuid.UUID(t["id"]), dict(t["configs"]))
            for index, p in enumerate(t["partitions"]):
                partition = Partition(
                    topic, index, list(p["replicas"]), p["leader"], p["leader_epoch"], isr=list(p["isr"])
                )
                for broker_id in p["replicas"]:
                    directory = self._log_dir(topic, index, broker_id)
                    known.add(directory)
                    if self._usable_dir(directory, topic):
                        lg = recover_log(
                            directory,
                            config=replica_config(topic, broker_id),
                            clock=cluster.now_ms,
                            fsync_checkpoints=True,
                            name=f"{t['name']}-{index} (broker {broker_id})",
                        )
                        self._watch_rolls(partition, lg, broker_id)
                        partition.logs[broker_id] = lg
                for broker_id in p["replicas"]:
                    if broker_id not in partition.logs:
                        partition.logs[broker_id] = self.new_log(cluster, partition, broker_id)
                partition.restore_replica_states(cluster.now_ms())
                topic.partitions.append(partition)
                for broker_id, lg in partition.logs.items():
                    self._recover_producers(f"{t['name']}-{index} (broker {broker_id})", lg)
                if partition.leader >= 0:
                    partition.advance_high_watermark()
            cluster.topics[topic.name] = topic
        self._remove_stale(known)
        if doc["topics"]:
            log.info("recovered %d topic(s) from %s", len(doc["topics"]), self.data_dir)

    def _usable_dir(self, directory: Path, topic: Topic) -> bool:
        meta = directory / "partition.metadata"
        if not meta.exists():
            return False
        if f"topic_id: {topic.topic_id}" not in meta.read_text():
            log.warning("%s belongs to an older topic of that name; removing it", directory)
            shutil.rmtree(directory)
            return False
        return True

    def _remove_stale(self, known: set[Path]) -> None:
        for broker in self.data_dir.glob("broker-*"):
            for directory in broker.iterdir():
                if directory.is_dir() and directory not in known:
                    log.info("removing %s: no such partition in the metadata", directory)
                    shutil.rmtree(directory, ignore_errors=True)

    def _recover_producers(self, name: str, lg: Log) -> None:
        """A replica's producer state: its newest snapshot at or below the log end, then the batches after it.

        Snapshots are taken of the leader's log (when it rolls, and on close);
        a replica without one replays every batch header it holds.
        """
        storage = lg.storage
        if not isinstance(storage, DiskLogStorage):
            return
        start = lg.log_start_offset
        for snap in sorted(storage.directory.glob("*.snapshot"), reverse=True):
            try:
                offset = int(snap.stem)
                if offset > lg.log_end_offset:
                    snap.unlink()
                    continue
                lg.producers.restore(json.loads(snap.read_text())["producers"])
                start = offset
                break
            except (ValueError, KeyError, OSError):
                log.warning("%s: unreadable producer snapshot; ignoring it", snap)
        replayed = 0
        for seg in lg.segments:
            if not isinstance(seg, FileSegment) or seg.end_offset <= start:
                continue
            for i in range(seg.index_of(start), len(seg)):
                header = seg.header(i)
                if header is None or header.producer_id < 0:
                    continue
                lg.producers.record(
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence,
                    header.last_offset_delta + 1,
                    seg.bases[i],
                )
                replayed += 1
        if replayed:
            log.info("%s: producer state rebuilt from %d batch(es)", name, replayed)

    def close(self, cluster: Cluster) -> None:
        for partition in cluster.iter_partitions():
            if partition.leader >= 0 and partition.leader in partition.logs:
                try:
                    self._save_producer_snapshot(partition, partition.leader_log)
                except OSError as exc:
                    log.warning("cannot save producer state of %s-%d: %s", partition.topic.name, partition.index, exc)
            for lg in partition.logs.values():
                lg.close()
        if self._offsets_fd is not None:
            os.close(self._offsets_fd)
            self._offsets_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
