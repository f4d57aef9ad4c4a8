"""Reading stored data back: walking entries, verifying them, decoding records, timestamp lookups."""

from __future__ import annotations

from collections.abc import Iterator

from .batch import Record, RecordBatch, RecordInfo
from .compression import MAX_RECORD_BYTES
from .layout import _COMPRESSION_MASK, _NO_TIMESTAMP, _U32, Buffer, _corrupt
from .legacy import (
    _as_view,
    _inner_messages,
    _legacy_crc,
    _legacy_inner,
    _legacy_key_value,
    _legacy_timestamp,
    _parse_legacy,
    _scan_entries,
)

# --- stored data -------------------------------------------------------------------


def iter_stored(data: Buffer) -> Iterator[tuple[int, int, int]]:
    """(first_offset, last_offset, max_timestamp) of each stored batch or legacy entry, to index a log.

    v2 reads the header only. A legacy compressed wrapper is decompressed to
    find its first offset (magic 1: wrapper offset minus the inner offset span;
    magic 0: the first inner offset); its max_timestamp is the wrapper's
    timestamp. Magic 0 entries report -1. A trailing partial entry is
    ignored; garbage raises BatchError(CORRUPT_MESSAGE).
    """
    mv = _as_view(data)
    entries, _ = _scan_entries(mv)
    for pos, total, magic in entries:
        if magic == 2:
            b = RecordBatch(mv, pos)
            base = b.base_offset
            yield base, base + b.last_offset_delta, b.max_timestamp
            continue
        m = _parse_legacy(mv, pos, total)
        if not m.attributes & _COMPRESSION_MASK:
            yield m.offset, m.offset, m.timestamp
            continue
        inner = _legacy_inner(mv, m, check=False)
        if magic == 0:
            yield inner.first_offset, m.offset, _NO_TIMESTAMP
        else:
            yield m.offset - (inner.last_offset - inner.first_offset), m.offset, m.timestamp


def verify_stored(data: Buffer) -> None:
    """Check every complete entry of stored data: v2 batch CRC-32C and framing, legacy message CRC-32.

    For a broker re-reading its own segment files after a crash (Kafka's
    LogSegment.recover calls ensureValid on each batch). Raises
    BatchError(CORRUPT_MESSAGE) on the first bad entry; a trailing partial
    entry is not checked (the caller compares sizes).
    """
    mv = _as_view(data)
    entries, _ = _scan_entries(mv)
    for pos, total, magic in entries:
        check_entry(mv, pos, total, magic)
        if magic != 2:
            _parse_legacy(mv, pos, total)


def check_entry(mv: memoryview, pos: int, total: int, magic: int) -> None:
    """Check one entry's checksum and framing: a v2 batch's size and CRC-32C, a legacy message's CRC-32."""
    if magic == 2:
        if total < RecordBatch.HEADER_SIZE:
            raise _corrupt(f"batch size {total} is below the {RecordBatch.HEADER_SIZE}-byte minimum")
        RecordBatch(mv, pos).validate()
    else:
        (stored,) = _U32.unpack_from(mv, pos + 12)
        if _legacy_crc(mv, pos, total) != stored:
            raise _corrupt(f"message CRC-32 mismatch (stored {stored:#010x})")


def _legacy_records(
    mv: memoryview, pos: int, total: int, *, max_record_bytes: int = MAX_RECORD_BYTES, decode: bool = True
) -> Iterator[Record]:
    m = _parse_legacy(mv, pos, total)
    if not m.attributes & _COMPRESSION_MASK:
        key, value = _legacy_key_value(mv, m)
        yield Record(m.offset, m.timestamp, key, value, [])
        return
    inner = _legacy_inner(mv, m, check=False, max_record_bytes=max_record_bytes)
    # Magic 1 inner offsets are relative to the wrapper's (the last one's); Kafka's deep iterator reads a
    # wrapper offset of 0 (unassigned produce data) as base 0.
    base = 0 if m.magic == 0 or m.offset == 0 else m.offset - inner.last_offset
    for im in _inner_messages(inner.blob, inner.end):
        key, value = _legacy_key_value(inner.blob, im) if decode else (None, None)
        yield Record(base + im.offset, _legacy_timestamp(m, im), key, value, [])


def iter_records(data: Buffer) -> Iterator[Record]:
    """Every record of stored (or produced) data: v2 batches and legacy entries, decompressed. Not for hot paths."""
    mv = _as_view(data)
    entries, _ = _scan_entries(mv)
    for pos, total, magic in entries:
        if magic == 2:
            yield from RecordBatch(mv, pos).records()
        else:
            yield from _legacy_records(mv, pos, total)


def first_record_at(
    data: Buffer, ts_ms: int, *, max_record_bytes: int = MAX_RECORD_BYTES, min_offset: int = -1
) -> RecordInfo | None:
    """Offset and timestamp of the first record in `data` whose timestamp is >= `ts_ms`, or None.

    Records below `min_offset` (the log start, which DeleteRecords may move into a
    batch) are passed over, as Kafka's lookup starts from the log start offset.

    Kafka's LogSegment.findOffsetByTimestamp: v2 batches whose maxTimestamp is
    below `ts_ms` are skipped without decoding; others are walked (decompressed
    a chunk at a time if needed, keys and values skipped) record by record, up to
    the first match. Legacy entries are always decoded; magic 0 messages have no
    timestamp (-1) and never match a non-negative `ts_ms`. A record above
    `max_record_bytes` (max.decompressed.message.bytes) is INVALID_RECORD.
    """
    mv = _as_view(data)
    entries, _ = _scan_entries(mv)
    for pos, total, magic in entries:
        if magic == 2:
            b = RecordBatch(mv, pos)
            if b.max_timestamp < ts_ms:
                continue
            for info in b.record_infos(max_record_bytes):
                if info.timestamp >= ts_ms and info.offset >= min_offset:
                    return info
        else:
            for r in _legacy_records(mv, pos, total, max_record_bytes=max_record_bytes, decode=False):
                if r.timestamp >= ts_ms and r.offset >= min_offset:
                    return RecordInfo(r.offset, r.timestamp, True)
    return None


def offset_for_timestamp(data: Buffer, ts_ms: int) -> int | None:
    """The offset of the first record in `data` whose timestamp is >= `ts_ms`, or None."""
    record = first_record_at(data, ts_ms)
    return None if record is None else record.offset
