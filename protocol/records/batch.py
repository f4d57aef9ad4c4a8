"""Records of a magic-2 batch, and `RecordBatch`: a view over one batch's bytes, patched in place."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from .compression import _CHUNK, MAX_RECORD_BYTES, _inflate
from .layout import (
    _ATTRIBUTES,
    _BASE_OFFSET,
    _BASE_SEQUENCE,
    _BASE_TIMESTAMP,
    _BATCH_LENGTH,
    _COMPRESSION_MASK,
    _CONTROL_BIT,
    _CRC,
    _I8,
    _I16,
    _I32,
    _I64,
    _LAST_OFFSET_DELTA,
    _LEADER_EPOCH,
    _MAGIC_OFFSET,
    _MAX_TIMESTAMP,
    _PRODUCER_EPOCH,
    _PRODUCER_ID,
    _RECORDS_COUNT,
    _TIMESTAMP_TYPE_BIT,
    _TRANSACTIONAL_BIT,
    _U32,
    LOG_OVERHEAD,
    Buffer,
    _corrupt,
    _invalid,
)
from .stream import _Stream

# --- records ---------------------------------------------------------------------


@dataclass
class Record:
    """One decoded record (v2) or message (v0/v1). Legacy messages have no headers; magic 0 has timestamp -1."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


class RecordInfo(NamedTuple):
    """What a walk over records that skips keys and values reports of each one."""

    offset: int
    timestamp: int
    has_key: bool


def _varint_at(buf: Buffer, pos: int, max_bytes: int) -> tuple[int, int]:
    """A zigzag varint at `pos` of `buf`: (value, next position). IndexError past the end."""
    b = buf[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    result = shift = 0
    for _ in range(max_bytes):
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
    raise _invalid(f"varint longer than {max_bytes} bytes")


def _skim_record(s: _Stream, length: int) -> tuple[int, int, bool]:
    """The fast path of `_v2_records` for a record of `length` bytes wholly buffered in `s`: the same checks,
    on the buffer directly. Returns (timestamp delta, offset delta, has a key) and moves past the record."""
    buf, pos = s._buf, s._pos
    end = pos + length
    try:
        pos += 1  # attributes: unused
        ts_delta, pos = _varint_at(buf, pos, 10)
        offset_delta, pos = _varint_at(buf, pos, 5)
        klen, pos = _varint_at(buf, pos, 5)
        if klen > 0:
            pos += klen
        vlen, pos = _varint_at(buf, pos, 5)
        if vlen > 0:
            pos += vlen
        nheaders, pos = _varint_at(buf, pos, 5)
        if nheaders < 0:
            raise _invalid(f"Found invalid number of record headers {nheaders}")
        for _ in range(nheaders):
            if pos >= end:
                raise _invalid(f"Found invalid number of record headers. {nheaders} is larger than the record")
            hklen, pos = _varint_at(buf, pos, 5)
            if hklen < 0:
                raise _invalid(f"Invalid negative header key size {hklen}")
            pos += hklen
            hvlen, pos = _varint_at(buf, pos, 5)
            if hvlen > 0:
                pos += hvlen
    except IndexError:
        pos = end + 1  # ran past the buffered bytes, so past the record
    if pos > end:
        raise _invalid("Invalid record size: a field runs past the end of its record")
    if pos < end:
        read = length - (end - pos)
        raise _invalid(
            f"Invalid record size: expected to read {length} bytes in record payload, but instead read {read}"
        )
    s._pos = end
    return ts_delta, offset_delta, klen >= 0


def _field(s: _Stream, n: int, end: int, decode: bool) -> bytes | None:
    """A key, value or header field of `n` bytes in a record ending at `end`: read, or skipped."""
    if n > end - s.taken:
        raise _invalid(f"Invalid record size: a field of {n} bytes runs past the end of its record")
    if decode:
        return s.take(n)
    s.skip(n)
    return None


def _v2_records(
    s: _Stream,
    count: int,
    base_offset: int,
    base_timestamp: int,
    log_append_time: int | None,
    max_record_bytes: int,
    decode: bool,
) -> Iterator[Record | RecordInfo]:
    """The records of a v2 batch body, with Kafka's checks (DefaultRecord.readFrom / readPartiallyFrom,
    DefaultRecordBatch.RecordIterator), all INVALID_RECORD as Kafka's InvalidRecordException:

    * a record size that is negative or above `max_record_bytes` (max.decompressed.message.bytes);
    * a field running past its record or past the data, a negative header count or header key size;
    * a record whose fields end before its declared size;
    * bytes left after the declared number of records.

    With `decode` False, keys, values and headers are skipped (never held) and `RecordInfo`s are
    yielded: memory stays bounded whatever the records' sizes.
    """
    if count < 0:
        raise _invalid(f"Found invalid record count {count} in magic v2 batch")
    for _ in range(count):
        length = s.varint(5)
        if length < 0:
            raise _invalid(f"Invalid record size: {length} is negative.")
        if length > max_record_bytes:
            raise _invalid(
                f"Invalid record size: {length} exceeds the configured maximum record size of {max_record_bytes}."
            )
        if not decode and length <= _CHUNK and s.buffer(length):
            ts_delta, offset_delta, has_key = _skim_record(s, length)
            timestamp = base_timestamp + ts_delta if log_append_time is None else log_append_time
            yield RecordInfo(base_offset + offset_delta, timestamp, has_key)
            continue
        end = s.taken + length
        s.byte()  # attributes: unused
        ts_delta = s.varint(10)
        offset_delta = s.varint(5)
        klen = s.varint(5)
        key = _field(s, klen, end, decode) if klen >= 0 else None
        vlen = s.varint(5)
        value = _field(s, vlen, end, decode) if vlen >= 0 else None
        nheaders = s.varint(5)
        if nheaders < 0:
            raise _invalid(f"Found invalid number of record headers {nheaders}")
        headers: list[tuple[str, bytes | None]] = []
        for _ in range(nheaders):
            if s.taken >= end:
                raise _invalid(f"Found invalid number of record headers. {nheaders} is larger than the record")
            hklen = s.varint(5)
            if hklen < 0:
                raise _invalid(f"Invalid negative header key size {hklen}")
            hkey = _field(s, hklen, end, decode)
            hvlen = s.varint(5)
            hvalue = _field(s, hvlen, end, decode) if hvlen >= 0 else None
            if decode:
                try:
                    headers.append((bytes(hkey or b"").decode("utf-8"), hvalue))
                except UnicodeDecodeError as exc:
                    raise _invalid(f"record header key is not UTF-8: {exc}") from exc
        if s.taken != end:
            raise _invalid(
                f"Invalid record size: expected to read {length} bytes in record payload, "
                f"but instead read {length - (end - s.taken)}"
            )
        timestamp = base_timestamp + ts_delta if log_append_time is None else log_append_time
        if decode:
            yield Record(base_offset + offset_delta, timestamp, key, value, headers)
        else:
            yield RecordInfo(base_offset + offset_delta, timestamp, klen >= 0)
    if not s.at_end():
        raise _invalid("Incorrect declared batch size, records still remaining in file")


class BatchHeader(NamedTuple):
    """A v2 batch's 61 header bytes, read in one unpack (`RecordBatch.header`): for paths that read most fields."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int


#: the v2 batch header, field by field as `BatchHeader` names them
_HEADER = struct.Struct(">qiibIhiqqqhii")
assert _HEADER.size == 61


class RecordBatch:
    """A view over one magic-2 record batch starting at `start` in `buf`. Decodes no record.

    Properties read the header on each access (nothing is cached, so a patch
    through another view is seen). The setters need a writable buffer
    (bytearray, or a memoryview of one). No memoryview export is held between
    calls, so the underlying bytearray may still be resized by its owner.
    """

    HEADER_SIZE = 61

    __slots__ = ("_buf", "_start")

    def __init__(self, buf: Buffer, start: int = 0) -> None:
        if isinstance(buf, memoryview) and (buf.format != "B" or buf.ndim != 1):
            buf = buf.cast("B")
        if start < 0 or len(buf) - start < self.HEADER_SIZE:
            raise _corrupt(f"record batch needs {self.HEADER_SIZE} header bytes, {max(len(buf) - start, 0)} given")
        self._buf = buf
        self._start = start

    def header(self) -> BatchHeader:
        """All header fields at once (cheaper than several properties)."""
        return BatchHeader._make(_HEADER.unpack_from(self._buf, self._start))

    def _i8(self, off: int) -> int:
        return _I8.unpack_from(self._buf, self._start + off)[0]

    def _i16(self, off: int) -> int:
        return _I16.unpack_from(self._buf, self._start + off)[0]

    def _i32(self, off: int) -> int:
        return _I32.unpack_from(self._buf, self._start + off)[0]

    def _i64(self, off: int) -> int:
        return _I64.unpack_from(self._buf, self._start + off)[0]

    @property
    def base_offset(self) -> int:
        return self._i64(_BASE_OFFSET)

    @property
    def batch_length(self) -> int:
        return self._i32(_BATCH_LENGTH)

    @property
    def partition_leader_epoch(self) -> int:
        return self._i32(_LEADER_EPOCH)

    @property
    def magic(self) -> int:
        return self._i8(_MAGIC_OFFSET)

    @property
    def crc(self) -> int:
        return _U32.unpack_from(self._buf, self._start + _CRC)[0]

    @property
    def attributes(self) -> int:
        return self._i16(_ATTRIBUTES)

    @property
    def compression(self) -> int:
        return self.attributes & _COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        return 1 if self.attributes & _TIMESTAMP_TYPE_BIT else 0

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL_BIT)

    @property
    def last_offset_delta(self) -> int:
        return self._i32(_LAST_OFFSET_DELTA)

    @property
    def base_timestamp(self) -> int:
        return self._i64(_BASE_TIMESTAMP)

    @property
    def max_timestamp(self) -> int:
        return self._i64(_MAX_TIMESTAMP)

    @property
    def producer_id(self) -> int:
        return self._i64(_PRODUCER_ID)

    @property
    def producer_epoch(self) -> int:
        return self._i16(_PRODUCER_EPOCH)

    @property
    def base_sequence(self) -> int:
        return self._i32(_BASE_SEQUENCE)

    @property
    def records_count(self) -> int:
        return self._i32(_RECORDS_COUNT)

    @property
    def size(self) -> int:
        """Bytes of the whole batch, header included."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    def compute_crc(self) -> int:
        """CRC-32C over attributes..end of batch (bytes 21..size), as Kafka computes it."""
        return self._crc(self.size)

    def _crc(self, size: int) -> int:
        # Imported at first use: the package pulls in importlib.metadata, ~10 ms of `kstub serve`'s start-up.
        from crc32c import crc32c

        with memoryview(self._buf) as mv:
            return crc32c(mv[self._start + _ATTRIBUTES : self._start + size])

    def validate(self) -> None:
        """Kafka's DefaultRecordBatch.ensureValid: size at least 61, magic 2, stored CRC = computed CRC.

        Also checks the buffer holds the whole batch. All failures are CORRUPT_MESSAGE.
        """
        h = self.header()
        size, magic, stored = h.batch_length + LOG_OVERHEAD, h.magic, h.crc
        if size < self.HEADER_SIZE:
            raise _corrupt(f"batch size {size} is below the {self.HEADER_SIZE}-byte minimum")
        available = len(self._buf) - self._start
        if size > available:
            raise _corrupt(f"batch is truncated: {size} bytes declared, {available} present")
        if magic != 2:
            raise _corrupt(f"magic {magic} is not 2")
        computed = self._crc(size)
        if stored != computed:
            raise _corrupt(f"batch CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}")

    def set_max_timestamp(self, ts_ms: int) -> None:
        """Set a CreateTime batch's maxTimestamp and recompute the CRC-32C (Kafka's setMaxTimestamp)."""
        if self.max_timestamp == ts_ms:
            return
        _I64.pack_into(self._buf, self._start + _MAX_TIMESTAMP, ts_ms)
        _U32.pack_into(self._buf, self._start + _CRC, self.compute_crc())

    def set_log_append_time(self, ts_ms: int) -> None:
        """Mark the batch LogAppendTime at `ts_ms`: attribute bit 3 and maxTimestamp, then recompute the CRC.

        Readers then give every record of the batch the timestamp `ts_ms`
        (baseTimestamp and the record deltas are left as sent, as Kafka does).
        """
        if self.attributes & _TIMESTAMP_TYPE_BIT and self.max_timestamp == ts_ms:
            return
        _I16.pack_into(self._buf, self._start + _ATTRIBUTES, self.attributes | _TIMESTAMP_TYPE_BIT)
        _I64.pack_into(self._buf, self._start + _MAX_TIMESTAMP, ts_ms)
        _U32.pack_into(self._buf, self._start + _CRC, self.compute_crc())

    def records(self) -> Iterator[Record]:
        """Decode the records (decompressing if needed). Not for the produce/fetch path.

        Under LogAppendTime every record's timestamp is the batch's
        maxTimestamp, as Kafka's DefaultRecordBatch reports it. Records that do
        not parse raise BatchError(INVALID_RECORD) (see `_v2_records`); data that
        does not decompress, CORRUPT_MESSAGE; a missing codec library,
        BatchError(UNSUPPORTED_COMPRESSION_TYPE). Holds every record: tests and
        tools only (the broker walks with `record_infos`).
        """
        return self._walk(True, MAX_RECORD_BYTES)  # type: ignore[return-value]

    def record_infos(self, max_record_bytes: int = MAX_RECORD_BYTES) -> Iterator[RecordInfo]:
        """Offset, timestamp and whether it has a key, of each record: keys, values and headers are skipped.

        Decompresses as it goes, a chunk at a time, so memory stays bounded whatever the
        batch inflates to. Records larger than `max_record_bytes` are INVALID_RECORD.
        """
        return self._walk(False, max_record_bytes)  # type: ignore[return-value]

    def _walk(self, decode: bool, max_record_bytes: int) -> Iterator[Record | RecordInfo]:
        size = self.size
        if size < self.HEADER_SIZE or self._start + size > len(self._buf):
            raise _corrupt("record batch length does not fit its buffer")
        with memoryview(self._buf) as mv:
            body = mv[self._start + self.HEADER_SIZE : self._start + size]
            stream = _Stream(b"", _inflate(self.compression, body)) if self.compression else _Stream(bytes(body))
        lat = self.max_timestamp if self.timestamp_type else None
        return _v2_records(
            stream, self.records_count, self.base_offset, self.base_timestamp, lat, max_record_bytes, decode
        )

    def __repr__(self) -> str:
        return (
            f"RecordBatch(base_offset={self.base_offset}, last_offset_delta={self.last_offset_delta}, "
            f"size={self.size}, compression={self.compression}, records_count={self.records_count})"
        )
