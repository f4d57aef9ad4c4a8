"""Legacy message sets (magic 0 and 1): entries, wrappers and their inner messages."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import NamedTuple

from .compression import _CHUNK, LEGACY_INNER_MAX_BYTES, MAX_RECORD_BYTES, _inflate
from .layout import (
    _COMPRESSION_MASK,
    _I8,
    _I32,
    _I64,
    _LEGACY_HEAD,
    _LEGACY_KEY_V0,
    _LEGACY_KEY_V1,
    _LEGACY_TIMESTAMP,
    _MAGIC_OFFSET,
    _MIN_ENTRY_SIZE,
    _NO_TIMESTAMP,
    _TIMESTAMP_TYPE_BIT,
    _U32,
    LOG_OVERHEAD,
    Buffer,
    _corrupt,
    _invalid,
)

# --- entries and legacy messages ---------------------------------------------------------


def _as_view(data: Buffer | None) -> memoryview:
    mv = memoryview(data if data is not None else b"")
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


def _scan_entries(mv: memoryview) -> tuple[list[tuple[int, int, int]], int]:
    """(position, total size, magic) of each complete entry, and where the complete entries end.

    Kafka's ByteBufferLogInputStream.nextBatch: fewer than 12 bytes left, or
    an entry longer than what is left, ends the walk silently (a trailing
    partial entry is not an error: Kafka trims it); a declared size below 14,
    or a magic outside 0..2, is CORRUPT_MESSAGE.
    """
    entries = []
    end = 0
    for pos, total in _walk(mv, "record size {size} is less than the minimum record overhead ({minimum})"):
        magic = _I8.unpack_from(mv, pos + _MAGIC_OFFSET)[0]
        if not 0 <= magic <= 2:
            raise _corrupt(f"invalid magic found in record: {magic}")
        entries.append((pos, total, magic))
        end = pos + total
    return entries, end


def _walk(buf: Buffer, too_small: str) -> Iterator[tuple[int, int]]:
    """(position, total size) of each complete size-prefixed entry in `buf` (offset int64, size int32, ...).

    The walk ends silently at fewer than 12 bytes left or at an entry longer
    than what is left; a declared size below the minimum is CORRUPT_MESSAGE,
    said with `too_small` (formatted with ``size`` and ``minimum``).
    """
    pos = 0
    end = len(buf)
    while end - pos >= LOG_OVERHEAD:
        (size,) = _I32.unpack_from(buf, pos + 8)
        if size < _MIN_ENTRY_SIZE:
            raise _corrupt(too_small.format(size=size, minimum=_MIN_ENTRY_SIZE))
        total = size + LOG_OVERHEAD
        if end - pos < total:
            return
        yield pos, total
        pos += total


class _Msg(NamedTuple):
    """One legacy message, located in some buffer."""

    pos: int
    total: int
    offset: int
    crc: int
    magic: int
    attributes: int
    timestamp: int  # -1 for magic 0
    key_pos: int  # -1 if null
    key_len: int
    value_pos: int  # -1 if null
    value_len: int
    value_len_pos: int  # where the value's int32 length sits


def _parse_legacy(buf: Buffer, pos: int, total: int) -> _Msg:
    """Locate the fields of the legacy message at `pos`; CORRUPT_MESSAGE if they overrun it."""
    end = pos + total
    offset, _size, crc, magic, attrs = _LEGACY_HEAD.unpack_from(buf, pos)
    if magic == 0:
        kpos, timestamp = pos + _LEGACY_KEY_V0, _NO_TIMESTAMP
    else:
        kpos = pos + _LEGACY_KEY_V1
        if kpos + 8 > end:
            raise _corrupt(f"magic 1 message of {total - LOG_OVERHEAD} bytes is below the 22-byte minimum")
        (timestamp,) = _I64.unpack_from(buf, pos + _LEGACY_TIMESTAMP)
    if kpos + 4 > end:
        raise _corrupt("message ends inside its key length")
    (klen,) = _I32.unpack_from(buf, kpos)
    p = kpos + 4
    key_pos = -1
    if klen >= 0:
        key_pos = p
        p += klen
    elif klen != -1:
        raise _corrupt(f"invalid key length {klen}")
    if p + 4 > end:
        raise _corrupt("message ends inside its key or value length")
    value_len_pos = p
    (vlen,) = _I32.unpack_from(buf, p)
    p += 4
    value_pos = -1
    if vlen >= 0:
        value_pos = p
        p += vlen
    elif vlen != -1:
        raise _corrupt(f"invalid value length {vlen}")
    if p > end:
        raise _corrupt("message value overruns the message")
    return _Msg(pos, total, offset, crc, magic, attrs, timestamp, key_pos, klen, value_pos, vlen, value_len_pos)


def _legacy_crc(buf: Buffer, pos: int, total: int) -> int:
    """CRC-32 (zlib) of a legacy message: magic..end."""
    with memoryview(buf) as mv:
        return zlib.crc32(mv[pos + _MAGIC_OFFSET : pos + total])


def _set_legacy_timestamp(buf: bytearray, pos: int, total: int, ts_ms: int, log_append_time: bool) -> None:
    """Set a magic-1 message's timestamp and timestamp-type bit, and its CRC-32. Kafka's setTimestampAndUpdateCrc."""
    attrs = buf[pos + 17]
    attrs = attrs | _TIMESTAMP_TYPE_BIT if log_append_time else attrs & ~_TIMESTAMP_TYPE_BIT
    buf[pos + 17] = attrs
    _I64.pack_into(buf, pos + _LEGACY_TIMESTAMP, ts_ms)
    _U32.pack_into(buf, pos + 12, _legacy_crc(buf, pos, total))


def _legacy_key_value(buf: Buffer, m: _Msg) -> tuple[bytes | None, bytes | None]:
    key = bytes(buf[m.key_pos : m.key_pos + m.key_len]) if m.key_pos >= 0 else None
    value = bytes(buf[m.value_pos : m.value_pos + m.value_len]) if m.value_pos >= 0 else None
    return key, value


class _Inner(NamedTuple):
    """The decompressed inner message set of a legacy wrapper, and what was learnt walking it.

    Only the bytes and a summary are kept (no per-message objects): a set of millions of tiny
    messages costs its bytes, nothing more. `_inner_messages` walks it again when needed.
    """

    blob: bytes | bytearray  # decompressed bytes (never modified)
    end: int  # where the complete inner messages end in `blob`
    count: int
    first_offset: int
    last_offset: int
    sequential: bool  # inner offsets are 0, 1, ..., count - 1
    first_timestamp: int  # of the first inner message (-1 for magic 0)
    max_timestamp: int  # largest inner timestamp (-1 for magic 0)


def _inner_messages(blob: Buffer, end: int) -> Iterator[_Msg]:
    """The complete inner messages of a decompressed set already checked by `_legacy_inner`."""
    for pos, total in _walk(memoryview(blob)[:end], "inner record size {size} is less than the minimum ({minimum})"):
        yield _parse_legacy(blob, pos, total)


def _legacy_inner(buf: Buffer, wrapper: _Msg, *, check: bool, max_record_bytes: int = MAX_RECORD_BYTES) -> _Inner:
    """Decompress and walk a legacy wrapper's inner set, with Kafka's checks (AbstractLegacyRecordBatch
    DeepRecordsIterator and LogValidator.validateRecord):

    * zstd in a legacy wrapper, or a null wrapper value -> INVALID_RECORD
    * inner size below 14 -> CORRUPT_MESSAGE; a trailing partial inner message is dropped silently
    * inner size above `max_record_bytes` (max.decompressed.message.bytes) -> INVALID_RECORD
    * inner magic differing from the wrapper's -> INVALID_RECORD
    * inner message compressed -> INVALID_RECORD
    * inner CRC-32 mismatch -> CORRUPT_MESSAGE (only with `check`)
    * no inner message -> INVALID_RECORD
    * magic 1 wrapper offset neither 0 nor >= the last inner offset -> INVALID_RECORD (only with `check`)

    and kstub's own: an inner set inflating past `LEGACY_INNER_MAX_BYTES` -> INVALID_RECORD. The set
    is inflated a chunk at a time and each inner message checked as soon as it is complete, so
    garbage is refused after its first bytes, not after inflating all of it.
    """
    codec = wrapper.attributes & _COMPRESSION_MASK
    if codec == 4:
        raise _invalid(f"zstd compression in a magic {wrapper.magic} message set")
    if wrapper.value_pos < 0:
        raise _invalid(f"compressed message set with a null value (magic {wrapper.magic})")
    read = _inflate(codec, buf[wrapper.value_pos : wrapper.value_pos + wrapper.value_len])
    limit = min(LEGACY_INNER_MAX_BYTES, max_record_bytes)
    blob = bytearray()
    pos = 0  # start of the next inner message to check
    count = 0
    first_offset = last_offset = -1
    sequential = True
    first_ts = max_ts = _NO_TIMESTAMP
    ended = False
    while not ended:
        chunk = read(_CHUNK)
        if chunk:
            blob += chunk
            if len(blob) > LEGACY_INNER_MAX_BYTES:
                raise _invalid(
                    f"compressed message set inflates past {LEGACY_INNER_MAX_BYTES} bytes, the most kstub holds"
                )
        else:
            ended = True
        while len(blob) - pos >= LOG_OVERHEAD:
            (size,) = _I32.unpack_from(blob, pos + 8)
            if size < _MIN_ENTRY_SIZE:
                raise _corrupt(f"inner record size {size} is less than the minimum record overhead")
            if size > limit:
                raise _invalid(f"Invalid record size: {size} exceeds the configured maximum record size of {limit}.")
            total = size + LOG_OVERHEAD
            if len(blob) - pos < total:
                break
            m = _parse_legacy(blob, pos, total)
            if m.magic != wrapper.magic:
                raise _invalid(f"compressed message magic {m.magic} does not match wrapper magic {wrapper.magic}")
            if m.attributes & _COMPRESSION_MASK:
                raise _invalid("inner messages must not be compressed")
            if check and _legacy_crc(blob, pos, total) != m.crc:
                raise _corrupt(f"inner message CRC-32 mismatch at inner offset {m.offset}")
            if count == 0:
                first_offset, first_ts = m.offset, m.timestamp
            if m.offset != count:
                sequential = False
            max_ts = max(max_ts, m.timestamp)
            last_offset = m.offset
            count += 1
            pos += total
    if not count:
        raise _invalid("compressed message set with no inner messages")
    if check and wrapper.magic == 1 and wrapper.offset != 0 and wrapper.offset < last_offset:
        raise _invalid(f"wrapper offset {wrapper.offset} is less than the last inner offset {last_offset} and not zero")
    if wrapper.magic == 0:
        first_ts = max_ts = _NO_TIMESTAMP
    elif wrapper.attributes & _TIMESTAMP_TYPE_BIT:  # LogAppendTime: the wrapper's timestamp is every message's
        first_ts = max_ts = wrapper.timestamp
    return _Inner(blob, pos, count, first_offset, last_offset, sequential, first_ts, max_ts)


def _legacy_timestamp(wrapper: _Msg, m: _Msg) -> int:
    """An inner message's timestamp as a reader sees it (a LogAppendTime wrapper gives its own to all)."""
    if wrapper.magic == 0:
        return _NO_TIMESTAMP
    if wrapper.attributes & _TIMESTAMP_TYPE_BIT:
        return wrapper.timestamp
    return m.timestamp
