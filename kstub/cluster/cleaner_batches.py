"""The batches as the log cleaner reads and writes them (kstub/cluster/cleaner.py has the whole story).

Reading: a segment's batches a window at a time (`iter_windows`), each window's CPU work
wrapped in a `Work` for the driver to run; the records of a stored v2 batch decoded in one
go (`decode_records`); its header, delete horizon and transaction marker type.
Writing: a magic 2 batch rebuilt from the records that stay (`build_batch`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

from kstub.protocol.records import Record, RecordBatch
from kstub.protocol.records.compression import _CHUNK, _inflate, compress
from kstub.protocol.records.control import ABORT, COMMIT

from .segments import Chunk, Segment

_TIMESTAMP_TYPE_BIT = 0x08
_TRANSACTIONAL_BIT = 0x10
_CONTROL_BIT = 0x20
_DELETE_HORIZON_BIT = 0x40
_HEADER = struct.Struct(">qiibIhiqqqhii")  # base offset .. records count
CRC_AT = 17
ATTRIBUTES_AT = 21
#: a legacy entry's attributes byte: offset(8) size(4) crc(4) magic(1)
LEGACY_ATTRIBUTES_AT = 17


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
    log_append_time: int | None = None,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
    control: bool = False,
    delete_horizon: int | None = None,
) -> tuple[bytes, int]:
    """A magic 2 batch of `records` (Kafka's MemoryRecordsBuilder as the cleaner uses it), and its max timestamp.

    The defaults make a plain batch: CreateTime, no producer, not transactional, no delete horizon.

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
    struct.pack_into(">I", data, CRC_AT, crc32c(bytes(data[ATTRIBUTES_AT:])))
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


def v2_header(chunk: Chunk) -> RecordBatch | None:
    data = chunk.data
    if len(data) < RecordBatch.HEADER_SIZE or data[16] != 2:
        return None
    return RecordBatch(bytes(data[: RecordBatch.HEADER_SIZE]) if len(data) > RecordBatch.HEADER_SIZE else data)


def control_type(chunk: Chunk) -> int | None:
    """ABORT or COMMIT for a marker batch; None for another control record."""
    batch = RecordBatch(bytes(chunk.data))
    for record in batch.records():
        if record.key is None or len(record.key) < 4:
            return None
        kind = struct.unpack_from(">h", record.key, 2)[0]
        return kind if kind in (ABORT, COMMIT) else None
    return None


# --- reading a segment, a window at a time ---------------------------------------------------


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
