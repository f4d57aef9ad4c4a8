"""One cleaning of one log: the offset map of its dirty part, then its segments rewritten group by group.

`clean_log` is a generator of `Work` (one per read window) and, last, the `CleaningResult`;
`clean_once` runs it inline, the cleaner task (kstub/cluster/cleaner.py) in a worker thread.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kstub.protocol.records import Record, RecordBatch, iter_records

from .cleaner_batches import (
    ATTRIBUTES_AT,
    CRC_AT,
    LEGACY_ATTRIBUTES_AT,
    Work,
    build_batch,
    control_type,
    decode_records,
    delete_horizon_of,
    iter_windows,
    v2_header,
)
from .cleaner_plan import cleanable, should_clean
from .cleaner_transactions import LogTxnState, TxnTracker, scan_transactions
from .log import Log
from .segments import Chunk, Segment

log = logging.getLogger("kstub.cleaner")

INT32_MAX = 2**31 - 1

#: Kafka's log.cleaner.dedupe.buffer.size (128 MiB) at 24 bytes an entry and a 0.9 load factor
MAX_MAP_ENTRIES = int(128 * 1024 * 1024 / 24 * 0.9)


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
    tracker = TxnTracker(txns.aborted)

    def index(window: list[Chunk]) -> bool:
        """Map the window's keys; False once the map is full."""
        for chunk in window:
            if chunk.base_offset >= end:
                return True
            header = v2_header(chunk)
            if header is not None and header.is_control:
                tracker.on_control(header, control_type(chunk))
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
    txn: TxnTracker
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
    header = v2_header(chunk)
    if header is None:
        return _filter_legacy(ctx, chunk, retain_legacy_deletes)
    data = bytes(chunk.data)
    batch = RecordBatch(data)
    is_control = batch.is_control
    if is_control:
        discard = ctx.txn.on_control(batch, control_type(chunk))
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
            codec=batch.compression,
            log_append_time=batch.max_timestamp if batch.timestamp_type else None,
            delete_horizon=new_horizon,
            **_same_header(batch, pid, is_control),
        )
        return Chunk(chunk.base_offset, chunk.last_offset, max_ts, chunk.leader_epoch, data)
    if retention == "retain_empty":
        header = _same_header(batch, pid, is_control)
        data, _ = build_batch([], codec=0, log_append_time=None, delete_horizon=None, **header)
        # Kafka's empty header: no base timestamp, the batch's max timestamp, its timestamp type
        head = bytearray(data)
        struct.pack_into(">qq", head, 27, -1, batch.max_timestamp)
        if batch.timestamp_type:
            struct.pack_into(">h", head, ATTRIBUTES_AT, struct.unpack_from(">h", head, ATTRIBUTES_AT)[0] | 0x08)
        from crc32c import crc32c

        struct.pack_into(">I", head, CRC_AT, crc32c(bytes(head[ATTRIBUTES_AT:])))
        return Chunk(chunk.base_offset, chunk.last_offset, batch.max_timestamp, chunk.leader_epoch, bytes(head))
    return None


def _same_header(batch: RecordBatch, pid: int, is_control: bool) -> dict[str, Any]:
    """What a rewritten batch keeps of the original's header: its offsets, leader epoch and producer."""
    return {
        "base_offset": batch.base_offset,
        "last_offset": batch.last_offset,
        "leader_epoch": batch.partition_leader_epoch,
        "producer_id": pid,
        "producer_epoch": batch.producer_epoch,
        "base_sequence": batch.base_sequence,
        "transactional": batch.is_transactional,
        "control": is_control,
    }


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
        TxnTracker(txns.aborted),
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
