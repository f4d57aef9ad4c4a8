"""Log compaction: the log cleaner, by Kafka's rules (its LogCleaner, LogCleanerManager and Cleaner).

A log whose ``cleanup.policy`` includes ``compact`` keeps, in its closed
segments, only the latest record of each key. One cleaning of one log:

1. **What to clean.** The *first dirty offset* is where the previous cleaning
   ended (kept per log; the log start offset at first, or when it is no longer
   inside the log). The *first uncleanable offset* is the smallest of the last
   stable offset (the high watermark without open transactions), the active
   segment's base offset (the active segment is never cleaned) and, with
   ``min.compaction.lag.ms``, the base of the first dirty segment holding a
   record younger than that lag; it is then moved down to the base offset of
   the segment it falls in, so cleaning stops at a segment boundary.
2. **Whether to clean.** The dirty ratio is the size of the segments from the
   first dirty offset to the first uncleanable one over the size of the whole
   cleanable log; the log is cleaned when it passes ``min.cleanable.dirty.ratio``,
   or when some dirty segment's first batch is older than
   ``max.compaction.lag.ms`` (and there is something to clean).
3. **The offset map**: the last offset of each key in the dirty range (records
   of aborted transactions and control records aside).
4. **Rewrite.** Every segment below the first uncleanable offset (the clean
   part too) is filtered, in groups of consecutive segments whose sizes add up
   to at most ``segment.bytes``; each group becomes one new segment with the
   group's first base offset, which replaces the group (`Log.replace_segments`).
   A record stays if its offset is past the map's end, or it is the latest of
   its key and either has a value or is a tombstone still within its delete
   horizon. Records without a key go. A batch whose records all stay is kept
   as its bytes; otherwise it is rebuilt with the records that stay, with the
   same base offset, last offset, producer fields, leader epoch and codec (so
   offsets are preserved and gaps appear between batches; consumers skip
   them). A batch with tombstones (or a marker of a transaction with nothing
   left) gets, the first time it is cleaned, its *delete horizon*: now +
   ``delete.retention.ms``, written in its base timestamp with attribute bit
   0x40, as Kafka does since KIP-534; after that time a cleaning removes the
   tombstones (and such a marker). Magic 0/1 message sets have no horizon:
   their tombstones stay while their segment was modified within
   ``delete.retention.ms`` of the last clean segment, and what stays of them
   is rebuilt as a magic 2 batch (Kafka does the same).
5. **Batches with no record left** go, except the last batch of each producer
   (kept empty, so that the producer state can be rebuilt from the log) and
   the batch that ends right at the first uncleanable offset.
6. **Transactions**, as the batch attributes show them: data batches of an
   aborted transaction go whole; a COMMIT marker goes (after its horizon) when
   no batch of its transaction is left, an ABORT marker when no data of its
   transaction was left by the previous cleanings.

**Replicas.** Kafka cleans each replica on its own. kstub cleans all the
replicas of a partition in the same pass, at the same time, up to the same
offset (bounded by every in-sync replica's first uncleanable offset): the
decision is taken on the leader's log. Replicas whose segments start at the
same offsets (the usual case: rolling is by size and by record timestamps)
come out byte-identical; the others keep the same records.

**Files.** With ``--data-dir`` the new segment is written as
``<base>.log.cleaned`` (and its indexes), renamed ``<base>.log.swap`` once
complete and fsynced, with a ``<base>.replaces`` list of the segments it
replaces; then those are deleted and the swap file takes its final name.
Recovery deletes ``.cleaned`` files and completes a swap (kstub/cluster/log_files.py).
The first dirty offset is kept in ``cleaner-offset-checkpoint`` in the log's folder.

**When.** `LogCleaner.run` (a task on the cluster's nursery) cleans when
woken: by a segment roll on a compacted partition, a high watermark moving
past a closed segment, a topic config change, or the time when
``max.compaction.lag.ms`` or ``min.compaction.lag.ms`` next makes a segment
cleanable; it never polls. Each pass cleans the eligible logs one after the
other; the decoding and filtering of each read window (1 MiB) runs in a worker
thread, so the server's other tasks keep running. `LogCleaner.clean_now`
(the control plane's ``clean_logs``) runs one pass at once.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import struct
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from kstub.protocol.records import Record, RecordBatch, iter_records
from kstub.protocol.records.compression import _CHUNK, _inflate, compress
from kstub.protocol.records.control import ABORT, COMMIT

from .log import Log
from .segments import Chunk, Segment

if TYPE_CHECKING:
    from .model import ClusterState, Partition

log = logging.getLogger("kstub.cleaner")

LONG_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1

#: Kafka's log.cleaner.dedupe.buffer.size (128 MiB) at 24 bytes an entry and a 0.9 load factor
MAX_MAP_ENTRIES = int(128 * 1024 * 1024 / 24 * 0.9)

_TIMESTAMP_TYPE_BIT = 0x08
_TRANSACTIONAL_BIT = 0x10
_CONTROL_BIT = 0x20
_DELETE_HORIZON_BIT = 0x40
_HEADER = struct.Struct(">qiibIhiqqqhii")  # base offset .. records count
_CRC_AT = 17
_ATTRIBUTES_AT = 21
CHECKPOINT_FILE = "cleaner-offset-checkpoint"


def is_compacted(config: Callable[[str], str]) -> bool:
    return "compact" in [p.strip() for p in config("cleanup.policy").split(",")]


# --- encoding a rebuilt batch ---------------------------------------------------------------


def _varint(value: int) -> bytes:
    v = (value << 1) ^ (value >> 63)
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _field(data: bytes | None) -> bytes:
    return _varint(-1) if data is None else _varint(len(data)) + data


def _encode_record(record: Record, base_offset: int, base_timestamp: int) -> bytes:
    ts = record.timestamp if record.timestamp >= 0 else base_timestamp
    body = bytearray(b"\x00")
    body += _varint(ts - base_timestamp)
    body += _varint(record.offset - base_offset)
    body += _field(record.key)
    body += _field(record.value)
    body += _varint(len(record.headers))
    for hkey, hvalue in record.headers:
        body += _field(hkey.encode("utf-8"))
        body += _field(hvalue)
    return _varint(len(body)) + bytes(body)


def build_batch(
    records: list[Record],
    *,
    base_offset: int,
    last_offset: int,
    leader_epoch: int,
    codec: int,
    log_append_time: int | None,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    transactional: bool,
    control: bool,
    delete_horizon: int | None,
) -> tuple[bytes, int]:
    """A magic 2 batch of `records` (Kafka's MemoryRecordsBuilder as the cleaner uses it), and its max timestamp.

    The base timestamp is the delete horizon when there is one, else the first
    record's; under LogAppendTime the max timestamp is the append time.
    """
    from crc32c import crc32c

    stamps = [r.timestamp for r in records]
    base_ts = delete_horizon if delete_horizon is not None else (stamps[0] if records else -1)
    max_ts = log_append_time if log_append_time is not None else max(stamps, default=-1)
    payload = b"".join(_encode_record(r, base_offset, base_ts) for r in records)
    if codec and records:
        payload = compress(codec, payload)
    attributes = (codec if records else 0) & 0x07
    if log_append_time is not None:
        attributes |= _TIMESTAMP_TYPE_BIT
    if transactional:
        attributes |= _TRANSACTIONAL_BIT
    if control:
        attributes |= _CONTROL_BIT
    if delete_horizon is not None:
        attributes |= _DELETE_HORIZON_BIT
    size = _HEADER.size + len(payload)
    header = bytearray(
        _HEADER.pack(
            base_offset,
            size - 12,
            leader_epoch,
            2,
            0,
            attributes,
            last_offset - base_offset,
            base_ts,
            max_ts,
            producer_id,
            producer_epoch,
            base_sequence,
            len(records),
        )
    )
    data = header + payload
    struct.pack_into(">I", data, _CRC_AT, crc32c(bytes(data[_ATTRIBUTES_AT:])))
    return bytes(data), max_ts


# --- decoding records --------------------------------------------------------------------------

#: a compressed batch inflating past this is walked as a stream instead (kstub.protocol.records)
INFLATE_LIMIT = 64 * 1024 * 1024


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _svarint(data: bytes, pos: int) -> tuple[int, int]:
    v, pos = _uvarint(data, pos)
    return (v >> 1) ^ -(v & 1), pos


def _body(batch: RecordBatch, data: bytes) -> bytes | None:
    """The records' bytes of a v2 batch, decompressed; None if they inflate past INFLATE_LIMIT."""
    body = data[RecordBatch.HEADER_SIZE : batch.size]
    if not batch.compression:
        return body
    read = _inflate(batch.compression, body)
    parts: list[bytes] = []
    total = 0
    while True:
        piece = read(_CHUNK)
        if not piece:
            return b"".join(parts)
        total += len(piece)
        if total > INFLATE_LIMIT:
            return None
        parts.append(piece)


def decode_records(batch: RecordBatch, data: bytes) -> list[Record]:
    """The records of a stored v2 batch (`data`: its bytes), decoded in one go.

    Stored batches passed the produce path's checks; should one not parse here,
    the careful streaming decoder (`RecordBatch.records`) decodes it or raises.
    """
    body = _body(batch, data)
    if body is None:
        return list(batch.records())
    base_offset = batch.base_offset
    base_ts = batch.base_timestamp
    lat = batch.max_timestamp if batch.timestamp_type else None
    out: list[Record] = []
    sv = _svarint
    try:
        pos = 0
        for _ in range(batch.records_count):
            # one-byte varints (the usual case) inline: zigzag n is (b >> 1) ^ -(b & 1)
            b = body[pos]
            length, pos = ((b >> 1) ^ -(b & 1), pos + 1) if b < 0x80 else sv(body, pos)
            end = pos + length
            pos += 1  # attributes
            b = body[pos]
            ts_delta, pos = ((b >> 1) ^ -(b & 1), pos + 1) if b < 0x80 else sv(body, pos)
            b = body[pos]
            offset_delta, pos = ((b >> 1) ^ -(b & 1), pos + 1) if b < 0x80 else sv(body, pos)
            b = body[pos]
            n, pos = ((b >> 1) ^ -(b & 1), pos + 1) if b < 0x80 else sv(body, pos)
            if n >= 0:
                key: bytes | None = body[pos : pos + n]
                pos += n
            else:
                key = None
            b = body[pos]
            n, pos = ((b >> 1) ^ -(b & 1), pos + 1) if b < 0x80 else sv(body, pos)
            if n >= 0:
                value: bytes | None = body[pos : pos + n]
                pos += n
            else:
                value = None
            b = body[pos]
            count, pos = ((b >> 1) ^ -(b & 1), pos + 1) if b < 0x80 else sv(body, pos)
            headers: list[tuple[str, bytes | None]] = []
            for _ in range(count):
                n, pos = sv(body, pos)
                hkey = body[pos : pos + n].decode("utf-8")
                pos += n
                n, pos = sv(body, pos)
                headers.append((hkey, body[pos : pos + n] if n >= 0 else None))
                pos += max(n, 0)
            if pos != end or end > len(body):
                raise ValueError("record size mismatch")
            out.append(
                Record(base_offset + offset_delta, lat if lat is not None else base_ts + ts_delta, key, value, headers)
            )
        if pos != len(body):
            raise ValueError("bytes after the records")
    except (IndexError, ValueError):
        return list(batch.records())
    return out


def delete_horizon_of(batch: RecordBatch) -> int | None:
    """A v2 batch's delete horizon (KIP-534), or None."""
    return batch.base_timestamp if batch.attributes & _DELETE_HORIZON_BIT else None


# --- the offset map ---------------------------------------------------------------------------


def _map_key(key: bytes) -> bytes:
    return key if len(key) <= 16 else hashlib.md5(key).digest()


class OffsetMap:
    """The last offset of each key in the dirty part (Kafka's SkimpyOffsetMap, without its fixed size)."""

    def __init__(self, max_entries: int = MAX_MAP_ENTRIES) -> None:
        self.max_entries = max_entries
        self.offsets: dict[bytes, int] = {}
        self.latest_offset = -1

    def __len__(self) -> int:
        return len(self.offsets)

    def put(self, key: bytes, offset: int) -> None:
        self.offsets[_map_key(key)] = offset

    def get(self, key: bytes) -> int:
        return self.offsets.get(_map_key(key), -1)


# --- transactions, as the batches show them --------------------------------------------------


def _control_type(chunk: Chunk) -> int | None:
    """ABORT or COMMIT for a marker batch; None for another control record."""
    batch = RecordBatch(bytes(chunk.data))
    for record in batch.records():
        if record.key is None or len(record.key) < 4:
            return None
        kind = struct.unpack_from(">h", record.key, 2)[0]
        return kind if kind in (ABORT, COMMIT) else None
    return None


@dataclass
class _AbortedTxn:
    producer_id: int
    first_offset: int


@dataclass
class LogTxnState:
    """What one scan of a log's batch headers says about producers and transactions."""

    #: aborted transactions (producer, first offset), by first offset (Kafka's transaction index)
    aborted: list[_AbortedTxn] = field(default_factory=list)
    #: per producer: the last offset of its last data batch, or (if it wrote none) -1 and its last marker's epoch
    last_data: dict[int, int] = field(default_factory=dict)
    last_marker_epoch: dict[int, int] = field(default_factory=dict)


class Work:
    """A window's worth of the cleaner's CPU work (decoding, filtering), handed to whoever drives the cleaning.

    The cleaning steps (`clean_log`) yield one per read window; the driver calls `run`, inline
    (`clean_once`) or in a worker thread (the cleaner task: the server's other tasks keep running), and
    the step goes on with `result` (which re-raises what the work raised). The work touches only the
    cleaner's own state and batches already read.
    """

    __slots__ = ("error", "fn", "value")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.value: Any = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.value = self.fn()
        except Exception as exc:
            self.error = exc

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


#: how many bytes of batches the cleaner reads from a segment at once
READ_WINDOW_BYTES = 1024 * 1024


def iter_windows(seg: Segment) -> Iterator[list[Chunk]]:
    """The batches of a segment, a window of at most READ_WINDOW_BYTES at a time (a bigger batch alone).

    The cleaner lets other tasks run between windows.
    """
    n = len(seg)
    i = 0
    while i < n:
        j = i + 1
        size = seg.batch_size(i)
        while j < n and size + seg.batch_size(j) <= READ_WINDOW_BYTES:
            size += seg.batch_size(j)
            j += 1
        yield seg.chunks(i, j)
        i = j


def scan_transactions(lg: Log, upto: int, state: LogTxnState) -> Iterator[Work]:
    """Walk the batches of `lg` below `upto` into `state`: aborted transactions, each producer's last batch."""
    open_txns: dict[int, int] = {}

    def scan(window: list[Chunk]) -> None:
        for chunk in window:
            if chunk.base_offset >= upto:
                return
            header = _v2_header(chunk)
            if header is None or header.producer_id < 0:
                continue
            pid = header.producer_id
            if header.is_control:
                kind = _control_type(chunk)
                first = open_txns.pop(pid, None)
                if kind == ABORT and first is not None:
                    state.aborted.append(_AbortedTxn(pid, first))
                state.last_marker_epoch[pid] = header.producer_epoch
            else:
                if header.is_transactional and pid not in open_txns:
                    open_txns[pid] = chunk.base_offset
                state.last_data[pid] = chunk.last_offset

    for seg in lg.segments:
        if seg.base_offset >= upto:
            break
        for window in iter_windows(seg):
            work = Work(functools.partial(scan, window))
            yield work
            work.result()
    state.aborted.sort(key=lambda t: t.first_offset)


class _TxnTracker:
    """Kafka's CleanedTransactionMetadata: whether a batch is of an aborted transaction, whether a marker may go."""

    def __init__(self, aborted: list[_AbortedTxn]) -> None:
        self._pending = list(aborted)
        self._next = 0
        self._ongoing_aborted: dict[int, bool] = {}  # producer → data of the aborted txn seen in this cleaning
        self._ongoing_committed: set[int] = set()

    def _consume_up_to(self, offset: int) -> None:
        while self._next < len(self._pending) and self._pending[self._next].first_offset <= offset:
            txn = self._pending[self._next]
            self._next += 1
            self._ongoing_aborted.setdefault(txn.producer_id, False)

    def on_control(self, header: RecordBatch, kind: int | None) -> bool:
        """Whether the marker may be discarded."""
        self._consume_up_to(header.last_offset)
        pid = header.producer_id
        if kind == ABORT:
            seen = self._ongoing_aborted.pop(pid, None)
            return not seen
        if kind == COMMIT:
            if pid in self._ongoing_committed:
                self._ongoing_committed.discard(pid)
                return False
            return True
        return False

    def on_data(self, header: RecordBatch) -> bool:
        """Whether the data batch belongs to an aborted transaction."""
        self._consume_up_to(header.last_offset)
        if not header.is_transactional:
            return False
        pid = header.producer_id
        if pid in self._ongoing_aborted:
            self._ongoing_aborted[pid] = True
            return True
        self._ongoing_committed.add(pid)
        return False


# --- deciding what to clean ---------------------------------------------------------------------


@dataclass
class LogToClean:
    first_dirty: int
    first_uncleanable: int
    clean_bytes: int
    cleanable_bytes: int
    need_now: bool

    @property
    def ratio(self) -> float:
        total = self.clean_bytes + self.cleanable_bytes
        return self.cleanable_bytes / total if total else 0.0


def _segment_base_at(lg: Log, offset: int) -> int:
    """The base offset of the segment holding `offset` (rounded down to a segment boundary)."""
    segments = lg.segments
    return segments[lg.segment_index(offset)].base_offset if segments else offset


def cleanable(lg: Log, config: Callable[[str], str], checkpoint: int | None, stable: int, now_ms: int) -> LogToClean:
    """Kafka's cleanableOffsets + calculateCleanableBytes + maxCompactionDelay for one log."""
    first_dirty = checkpoint if checkpoint is not None else lg.log_start_offset
    if first_dirty < lg.log_start_offset or first_dirty > lg.log_end_offset:
        first_dirty = lg.log_start_offset
    segments = lg.segments
    active = segments[-1]
    bounds = [stable, active.base_offset]
    min_lag = max(int(config("min.compaction.lag.ms")), 0)
    dirty_closed = [s for s in segments[:-1] if s.end_offset > first_dirty or s.base_offset >= first_dirty]
    if min_lag > 0:
        for seg in dirty_closed:
            if seg.largest_timestamp() > now_ms - min_lag:
                bounds.append(seg.base_offset)
                break
    uncleanable = max(first_dirty, min(bounds))
    uncleanable = _segment_base_at(lg, uncleanable)
    clean_bytes = sum(s.size for s in segments if s.base_offset < first_dirty and s is not active)
    lo = min(first_dirty, uncleanable)
    cleanable_bytes = sum(
        s.size for s in segments[:-1] if s.base_offset < uncleanable and (s.end_offset > lo or s.base_offset >= lo)
    )
    max_lag = max(int(config("max.compaction.lag.ms")), 0)
    firsts = [int(s.max_ts[0]) for s in dirty_closed if len(s) and s.max_ts[0] > 0]
    earliest = min(firsts, default=LONG_MAX)
    need_now = earliest < now_ms - max_lag
    return LogToClean(first_dirty, uncleanable, clean_bytes, cleanable_bytes, need_now)


def should_clean(ltc: LogToClean, config: Callable[[str], str]) -> bool:
    if ltc.clean_bytes + ltc.cleanable_bytes == 0:
        return False
    return (ltc.need_now and ltc.cleanable_bytes > 0) or ltc.ratio > float(config("min.cleanable.dirty.ratio"))


def next_deadline(lg: Log, config: Callable[[str], str], first_dirty: int, now_ms: int) -> int | None:
    """When a lag rule could next make this log cleanable (wall-clock ms), if ever."""
    segments = lg.segments[:-1]
    dirty = [s for s in segments if s.end_offset > first_dirty]
    times: list[int] = []
    max_lag = max(int(config("max.compaction.lag.ms")), 0)
    if max_lag < LONG_MAX // 2:
        firsts = [int(s.max_ts[0]) for s in dirty if len(s) and s.max_ts[0] > 0]
        if firsts:
            times.append(min(firsts) + max_lag + 1)
    min_lag = max(int(config("min.compaction.lag.ms")), 0)
    if min_lag > 0:
        for seg in dirty:
            if seg.largest_timestamp() > now_ms - min_lag:
                times.append(seg.largest_timestamp() + min_lag + 1)
                break
    future = [t for t in times if t > now_ms]
    return min(future) if future else None


# --- cleaning one log -------------------------------------------------------------------------


@dataclass
class CleaningResult:
    first_dirty: int
    end_offset: int
    bytes_before: int = 0
    bytes_after: int = 0
    records_read: int = 0
    records_kept: int = 0
    aborted: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "first_dirty_offset": self.first_dirty,
            "end_offset": self.end_offset,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "records_read": self.records_read,
            "records_kept": self.records_kept,
            "aborted": self.aborted,
        }


def build_offset_map(lg: Log, start: int, end: int, txns: LogTxnState, offset_map: OffsetMap) -> Iterator[Work]:
    """Fill `offset_map` from the dirty batches in [start, end)."""
    tracker = _TxnTracker(txns.aborted)

    def index(window: list[Chunk]) -> bool:
        """Map the window's keys; False once the map is full."""
        for chunk in window:
            if chunk.base_offset >= end:
                return True
            header = _v2_header(chunk)
            if header is not None and header.is_control:
                tracker.on_control(header, _control_type(chunk))
                continue
            if header is not None and tracker.on_data(header):
                continue
            if chunk.last_offset < start:
                continue
            data = bytes(chunk.data)
            records = decode_records(header, data) if header is not None else list(iter_records(data))
            if len(offset_map) + len(records) > offset_map.max_entries:
                return False  # full: the cleaning ends where the map does
            for record in records:
                if record.key is not None and record.offset >= start:
                    offset_map.put(record.key, record.offset)
            offset_map.latest_offset = max(offset_map.latest_offset, chunk.last_offset)
        return True

    for seg in lg.segments:
        if seg.base_offset >= end:
            break
        if seg.end_offset <= start and len(seg):
            continue
        for window in iter_windows(seg):
            work = Work(functools.partial(index, window))
            yield work
            if not work.result():
                return
        offset_map.latest_offset = max(offset_map.latest_offset, min(end, _next_base(lg, seg)) - 1)


def _next_base(lg: Log, seg: Segment) -> int:
    segments = lg.segments
    i = segments.index(seg)
    return segments[i + 1].base_offset if i + 1 < len(segments) else lg.log_end_offset


def _v2_header(chunk: Chunk) -> RecordBatch | None:
    data = chunk.data
    if len(data) < RecordBatch.HEADER_SIZE or data[16] != 2:
        return None
    return RecordBatch(bytes(data[: RecordBatch.HEADER_SIZE]) if len(data) > RecordBatch.HEADER_SIZE else data)


def group_by_size(segments: list[Segment], max_size: int, uncleanable: int) -> list[list[Segment]]:
    """Kafka's groupSegmentsBySize: consecutive segments that fit together in one segment."""
    groups: list[list[Segment]] = []
    i = 0
    while i < len(segments):
        group = [segments[i]]
        size = segments[i].size
        i += 1
        while i < len(segments) and size + segments[i].size <= max_size:
            last = segments[i + 1].base_offset - 1 if i + 1 < len(segments) else uncleanable - 1
            if segments[i].size and last - group[-1].base_offset > INT32_MAX:
                break
            group.append(segments[i])
            size += segments[i].size
            i += 1
        groups.append(group)
    return groups


@dataclass
class _Context:
    offset_map: OffsetMap
    now_ms: int
    delete_retention_ms: int
    txn: _TxnTracker
    last_data: dict[int, int]
    last_marker_epoch: dict[int, int]
    upper_bound: int
    result: CleaningResult


def _keep_record(ctx: _Context, record: Record, horizon: int | None, legacy: bool, retain_legacy_deletes: bool) -> bool:
    if record.offset > ctx.offset_map.latest_offset:
        return True
    if record.key is None:
        return False
    if record.offset < ctx.offset_map.get(record.key):
        return False
    if record.value is not None:
        return True
    if legacy:
        return retain_legacy_deletes
    return horizon is None or ctx.now_ms < horizon


def filter_chunk(ctx: _Context, chunk: Chunk, retain_legacy_deletes: bool) -> Chunk | None:
    """One stored batch as the cleaner leaves it: itself, rebuilt with fewer records, empty, or gone (None)."""
    header = _v2_header(chunk)
    if header is None:
        return _filter_legacy(ctx, chunk, retain_legacy_deletes)
    data = bytes(chunk.data)
    batch = RecordBatch(data)
    is_control = batch.is_control
    if is_control:
        discard = ctx.txn.on_control(batch, _control_type(chunk))
        horizon = delete_horizon_of(batch)
        discard_records = discard and horizon is not None and horizon <= ctx.now_ms
    else:
        discard = ctx.txn.on_data(batch)
        discard_records = discard
    pid = batch.producer_id
    producer_last = False
    if pid >= 0:
        if pid in ctx.last_data:
            producer_last = batch.last_offset == ctx.last_data[pid]
        else:
            producer_last = is_control and ctx.last_marker_epoch.get(pid) == batch.producer_epoch
    if (pid >= 0 and producer_last) or batch.last_offset + 1 == ctx.upper_bound:
        retention = "retain_empty"
    elif discard_records:
        retention = "delete"
    else:
        retention = "delete_empty"
    marker_for_empty_txn = discard and is_control
    records = decode_records(batch, data)
    ctx.result.records_read += len(records)
    if retention == "delete":
        return None
    horizon = delete_horizon_of(batch)
    if discard_records:
        kept: list[Record] = []
    elif is_control:
        kept = records
    else:
        kept = [r for r in records if _keep_record(ctx, r, horizon, False, retain_legacy_deletes)]
    ctx.result.records_kept += len(kept)
    if kept:
        tombstones = any(r.value is None for r in kept)
        set_horizon = (tombstones or marker_for_empty_txn) and horizon is None
        if len(kept) == len(records) and not set_horizon:
            return chunk
        new_horizon = ctx.now_ms + ctx.delete_retention_ms if set_horizon else horizon
        data, max_ts = build_batch(
            kept,
            base_offset=batch.base_offset,
            last_offset=batch.last_offset,
            leader_epoch=batch.partition_leader_epoch,
            codec=batch.compression,
            log_append_time=batch.max_timestamp if batch.timestamp_type else None,
            producer_id=pid,
            producer_epoch=batch.producer_epoch,
            base_sequence=batch.base_sequence,
            transactional=batch.is_transactional,
            control=is_control,
            delete_horizon=new_horizon,
        )
        return Chunk(chunk.base_offset, chunk.last_offset, max_ts, chunk.leader_epoch, data)
    if retention == "retain_empty":
        data, _ = build_batch(
            [],
            base_offset=batch.base_offset,
            last_offset=batch.last_offset,
            leader_epoch=batch.partition_leader_epoch,
            codec=0,
            log_append_time=None,
            producer_id=pid,
            producer_epoch=batch.producer_epoch,
            base_sequence=batch.base_sequence,
            transactional=batch.is_transactional,
            control=is_control,
            delete_horizon=None,
        )
        # Kafka's empty header: no base timestamp, the batch's max timestamp, its timestamp type
        head = bytearray(data)
        struct.pack_into(">qq", head, 27, -1, batch.max_timestamp)
        if batch.timestamp_type:
            struct.pack_into(">h", head, _ATTRIBUTES_AT, struct.unpack_from(">h", head, _ATTRIBUTES_AT)[0] | 0x08)
        from crc32c import crc32c

        struct.pack_into(">I", head, _CRC_AT, crc32c(bytes(head[_ATTRIBUTES_AT:])))
        return Chunk(chunk.base_offset, chunk.last_offset, batch.max_timestamp, chunk.leader_epoch, bytes(head))
    return None


def _filter_legacy(ctx: _Context, chunk: Chunk, retain_deletes: bool) -> Chunk | None:
    records = list(iter_records(chunk.data))
    ctx.result.records_read += len(records)
    kept = [r for r in records if _keep_record(ctx, r, None, True, retain_deletes)]
    ctx.result.records_kept += len(kept)
    if not kept:
        return None
    codec = chunk.data[LEGACY_ATTRIBUTES_AT] & 0x07 if len(chunk.data) > LEGACY_ATTRIBUTES_AT else 0
    base = kept[0].offset
    last = max(r.offset for r in kept)
    stamped = [Record(r.offset, r.timestamp, r.key, r.value, r.headers) for r in kept]
    data, max_ts = build_batch(
        stamped,
        base_offset=base,
        last_offset=last,
        leader_epoch=chunk.leader_epoch,
        codec=codec,
        log_append_time=None,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        transactional=False,
        control=False,
        delete_horizon=None,
    )
    return Chunk(base, last, max_ts, chunk.leader_epoch, data)


#: a legacy entry's attributes byte: offset(8) size(4) crc(4) magic(1)
LEGACY_ATTRIBUTES_AT = 17


def clean_log(
    lg: Log, config: Callable[[str], str], first_dirty: int, uncleanable: int, now_ms: int
) -> Iterator[Work | CleaningResult]:
    """Clean `lg` from its start to `uncleanable` (a segment boundary).

    Yields a `Work` per read window (to be run before the next step), then the result. The segments
    are replaced group by group; a group changed meanwhile (retention, truncation) is left as it is
    and the cleaning stops there (`aborted`).
    """
    result = CleaningResult(first_dirty, uncleanable)
    txns = LogTxnState()
    yield from scan_transactions(lg, lg.log_end_offset, txns)
    offset_map = OffsetMap()
    yield from build_offset_map(lg, first_dirty, uncleanable, txns, offset_map)
    end = offset_map.latest_offset + 1
    result.end_offset = max(first_dirty, end)
    below = [s for s in lg.segments[:-1] if s.base_offset < first_dirty]
    delete_retention = int(config("delete.retention.ms"))
    legacy_horizon = below[-1].last_modified_ms - delete_retention if below else 0
    ctx = _Context(
        offset_map,
        now_ms,
        delete_retention,
        _TxnTracker(txns.aborted),
        txns.last_data,
        txns.last_marker_epoch,
        uncleanable,
        result,
    )
    targets = [s for s in lg.segments[:-1] if s.base_offset < end]
    for group in group_by_size(targets, int(config("segment.bytes")), uncleanable):
        shapes = [(len(s), s.size) for s in group]
        cleaned = lg.storage.new_cleaned_segment(group[0].base_offset, group[0].created_ms)
        swapping = False
        try:
            for seg in group:
                retain_legacy = seg.last_modified_ms > legacy_horizon
                result.bytes_before += seg.size
                for window in iter_windows(seg):
                    work = Work(functools.partial(_filter_window, ctx, window, retain_legacy))
                    yield work
                    for out in work.result():
                        cleaned.append(out, seg.last_modified_ms)
            if [(len(s), s.size) for s in group] != shapes:
                raise _Changed
            swapping = True  # from here on a failure leaves files that recovery completes (log_files.py)
            if not lg.replace_segments(group, cleaned):
                swapping = False
                raise _Changed
        except _Changed:
            cleaned.delete()
            result.aborted = True
            log.info("cleaning of a log stopped at offset %d: its segments changed meanwhile", group[0].base_offset)
            yield result
            return
        except BaseException:
            if not swapping:
                cleaned.delete()
            else:
                log.error("swapping in a cleaned segment at offset %d failed", group[0].base_offset)
            raise
        cleaned.created_ms = group[0].created_ms
        cleaned.last_modified_ms = group[-1].last_modified_ms
        result.bytes_after += cleaned.size
    yield result


class _Changed(Exception):
    pass


def _filter_window(ctx: _Context, window: list[Chunk], retain_legacy: bool) -> list[Chunk]:
    return [out for chunk in window if (out := filter_chunk(ctx, chunk, retain_legacy)) is not None]


def clean_once(
    lg: Log,
    config: Callable[[str], str],
    *,
    checkpoint: int | None,
    stable: int,
    now_ms: int,
    force: bool = False,
) -> CleaningResult | None:
    """Decide and clean one log at once, synchronously (tests, tools); None if it is not to be cleaned.

    The next cleaning's checkpoint is the result's `end_offset`.
    """
    plan = cleanable(lg, config, checkpoint, stable, now_ms)
    if not (should_clean(plan, config) or (force and plan.cleanable_bytes > 0)):
        return None
    result = None
    for step in clean_log(lg, config, plan.first_dirty, plan.first_uncleanable, now_ms):
        if isinstance(step, Work):
            step.run()
        else:
            result = step
    return result


# --- checkpoints ------------------------------------------------------------------------------


def _checkpoint_path(lg: Log) -> str | None:
    directory = getattr(lg.storage, "directory", None)
    return os.path.join(directory, CHECKPOINT_FILE) if directory is not None else None


# --- the cleaner --------------------------------------------------------------------------------


class LogCleaner:
    """The cluster's log cleaner: first dirty offsets, wake-ups, and cleaning passes."""

    def __init__(self, cluster: ClusterState) -> None:
        self.cluster = cluster
        self._checkpoints: weakref.WeakKeyDictionary[Log, int] = weakref.WeakKeyDictionary()
        self._event = trio.Event()
        self._lock = trio.Lock()
        #: partitions whose cleaning failed (Kafka's uncleanable partitions), by topic id and index
        self._uncleanable: set[tuple[object, int]] = set()
        #: partitions whose high watermark wakes the cleaner (their waiter is `_event`)
        self._registered: list[Partition] = []
        #: cleanings done so far (a count, for status and tests)
        self.cleanings = 0

    # --- wake-ups ---

    def wake(self) -> None:
        """Something may have become cleanable (a roll, a config change, a high watermark)."""
        self._event.set()

    def rolled(self, partition: Partition) -> None:
        """A partition's leader rolled a segment: if compacted, its closed segments may be cleanable."""
        if is_compacted(partition.config):
            self._event.set()

    # --- checkpoints ---

    def checkpoint(self, lg: Log) -> int | None:
        if lg in self._checkpoints:
            return self._checkpoints[lg]
        path = _checkpoint_path(lg)
        if path is not None:
            try:
                with open(path) as f:
                    value = int(f.read().strip())
                self._checkpoints[lg] = value
                return value
            except (OSError, ValueError):
                return None
        return None

    def _save_checkpoint(self, lg: Log, offset: int) -> None:
        self._checkpoints[lg] = offset
        path = _checkpoint_path(lg)
        if path is not None:
            from pathlib import Path

            from .log_files import write_atomically

            try:
                write_atomically(Path(path), f"{offset}\n".encode(), fsync=False)
            except OSError as exc:
                log.warning("cannot save %s: %s", path, exc)

    # --- passes ---

    def _stable_offset(self, partition: Partition) -> int:
        return min(partition.high_watermark, partition.last_stable_offset)

    async def run(self) -> None:
        """Clean whenever woken or when a lag rule's time comes, until cancelled."""
        while True:
            for partition in self._registered:
                partition.remove_waiter(self._event)
            self._registered.clear()
            self._event = trio.Event()
            deadline = await self.clean_pass()
            wait_s = None if deadline is None else max(0.0, (deadline - self.cluster.now_ms()) / 1000)
            if self._event.is_set():
                continue
            if wait_s is None:
                await self._event.wait()
            else:
                with trio.move_on_after(wait_s):
                    await self._event.wait()

    async def clean_now(self, topic: str | None = None, *, force: bool = False) -> list[dict[str, Any]]:
        """One pass now: every eligible compacted log (of `topic`); `force` ignores min.cleanable.dirty.ratio."""
        results: list[dict[str, Any]] = []
        await self.clean_pass(topic=topic, force=force, results=results)
        return results

    async def clean_pass(
        self, *, topic: str | None = None, force: bool = False, results: list[dict[str, Any]] | None = None
    ) -> int | None:
        """Clean what is eligible; returns the next time (ms) a lag rule may make something eligible."""
        async with self._lock:
            now = self.cluster.now_ms()
            deadline: int | None = None
            for partition in list(self.cluster.iter_partitions()):
                if partition.deleted or (topic is not None and partition.topic.name != topic):
                    continue
                if not is_compacted(partition.config) or partition.leader < 0:
                    continue
                key = (partition.topic.topic_id, partition.index)
                if key in self._uncleanable:
                    continue
                before = _shapes(partition)
                try:
                    d = await self._clean_partition(partition, now, force, results)
                except Exception:
                    if _shapes(partition) != before:
                        # retention, truncation or a reassignment changed the logs under the cleaner (or the
                        # cleaner had swapped segments in): not the partition's fault; the next wake-up retries
                        log.info(
                            "%s: logs changed during cleaning; cleaning again later", partition.name, exc_info=True
                        )
                        continue
                    # Kafka marks such a partition uncleanable (until restart) and goes on with the others
                    log.exception("%s: cleaning failed; the partition is not cleaned again", partition.name)
                    self._uncleanable.add(key)
                    continue
                if d is not None and (deadline is None or d < deadline):
                    deadline = d
            return deadline

    async def _clean_partition(
        self, partition: Partition, now: int, force: bool, results: list[dict[str, Any]] | None
    ) -> int | None:
        leader_log = partition.leader_log
        config = partition.config
        stable = self._stable_offset(partition)
        plans: dict[int, LogToClean] = {}
        for broker_id, lg in partition.logs.items():
            plans[broker_id] = cleanable(lg, config, self.checkpoint(lg), min(stable, lg.log_end_offset), now)
        lead = plans[partition.leader]
        if not (should_clean(lead, config) or (force and lead.cleanable_bytes > 0)):
            if stable < leader_log.active_segment.base_offset:
                # closed segments held back by the high watermark: look again once it moves, if that would do
                unblocked = cleanable(leader_log, config, self.checkpoint(leader_log), leader_log.log_end_offset, now)
                if should_clean(unblocked, config):
                    partition.add_waiter(self._event)
                    self._registered.append(partition)
            return next_deadline(leader_log, config, lead.first_dirty, now)
        common = min((plans[r].first_uncleanable for r in partition.isr if r in plans), default=lead.first_uncleanable)
        for broker_id, lg in list(partition.logs.items()):
            if partition.deleted:
                break
            plan = plans[broker_id]
            upto = _segment_base_at(lg, min(common, plan.first_uncleanable))
            if upto <= plan.first_dirty:
                continue
            bconfig = _replica_config(partition, broker_id)
            result: CleaningResult | None = None
            for step in clean_log(lg, bconfig, plan.first_dirty, upto, now):
                if isinstance(step, Work):
                    await trio.to_thread.run_sync(step.run)  # CPU work off the server's Trio thread
                else:
                    result = step
            if result is None or partition.logs.get(broker_id) is not lg:
                continue
            if not result.aborted:
                self._save_checkpoint(lg, result.end_offset)
                self.cleanings += 1
            log.info(
                "%s-%d (broker %d): cleaned offsets %d..%d: %d of %d records kept, %d -> %d bytes",
                partition.topic.name,
                partition.index,
                broker_id,
                plan.first_dirty,
                result.end_offset,
                result.records_kept,
                result.records_read,
                result.bytes_before,
                result.bytes_after,
            )
            if results is not None:
                results.append(
                    {"topic": partition.topic.name, "partition": partition.index, "broker": broker_id}
                    | result.describe()
                )
        return next_deadline(leader_log, config, self.checkpoint(leader_log) or 0, self.cluster.now_ms())


def _shapes(partition: Partition) -> list[tuple[int, list[tuple[int, int, int]]]]:
    """What the cleaner reads of a partition's logs: each replica's closed segments (identity, batches, size)."""
    return [(id(lg), [(id(s), len(s), s.size) for s in lg.segments[:-1]]) for lg in partition.logs.values()]


def _replica_config(partition: Partition, broker_id: int) -> Callable[[str], str]:
    def config(name: str) -> str:
        return partition.topic.config(name, broker_id)

    return config
