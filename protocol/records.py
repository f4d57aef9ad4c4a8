"""Record batches (magic 2) and legacy message sets (magic 0/1), zero-copy.

The broker stores produced data as the exact bytes the client sent. This module
checks those bytes the way Kafka checks them on the produce path, and patches
in place only the fields Kafka itself rewrites on append:

* magic 2: ``baseOffset`` and ``partitionLeaderEpoch`` (outside the CRC), and
  under LogAppendTime the timestamp-type bit and ``maxTimestamp`` (inside the
  CRC-32C, which is then recomputed);
* magic 0/1 uncompressed: each entry's offset (outside the message CRC-32);
* magic 1 compressed: the wrapper's offset (the absolute offset of the last
  inner message, inner offsets being relative);
* magic 0 compressed: inner offsets are absolute, so the inner set is
  renumbered and recompressed and the wrapper rebuilt.

Individual v2 records are never decoded on produce or fetch: the only pass over
a v2 batch's bytes on produce is the CRC-32C, done by the ``crc32c`` C
extension. ``RecordBatch.records()``, `iter_records` and `offset_for_timestamp`
decode records, for features and tests.

Layouts (see CLIENTS.md 6.3-6.5 in the shared protocol notes): every entry,
batch or legacy message, starts with ``offset int64, size int32`` and carries
its magic at byte 16, which is how a reader tells the formats apart.

Compression codecs other than gzip are optional imports: ``cramjam`` or
``python-snappy`` for snappy, ``lz4`` (or ``cramjam``) for lz4, ``zstandard``
(or ``cramjam``) for zstd. A codec whose library is missing is reported as
``UNSUPPORTED_COMPRESSION_TYPE`` only when it must actually run.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from .errors import ErrorCode, ProtocolError

__all__ = [
    "BatchError",
    "ProducedBatch",
    "Record",
    "RecordBatch",
    "first_record_at",
    "iter_records",
    "iter_stored",
    "offset_for_timestamp",
    "read_produce_data",
    "verify_stored",
]

Buffer = bytes | bytearray | memoryview

# --- layout ----------------------------------------------------------------

LOG_OVERHEAD = 12  # offset int64 + size int32, in front of every entry
_MAGIC_OFFSET = 16
_MIN_ENTRY_SIZE = 14  # Kafka's LegacyRecord.RECORD_OVERHEAD_V0: smallest `size` any entry may declare

# magic 2 header offsets (from the start of the batch)
_BASE_OFFSET = 0
_BATCH_LENGTH = 8
_LEADER_EPOCH = 12
_CRC = 17
_ATTRIBUTES = 21
_LAST_OFFSET_DELTA = 23
_BASE_TIMESTAMP = 27
_MAX_TIMESTAMP = 35
_PRODUCER_ID = 43
_PRODUCER_EPOCH = 51
_BASE_SEQUENCE = 53
_RECORDS_COUNT = 57

_COMPRESSION_MASK = 0x07
_TIMESTAMP_TYPE_BIT = 0x08
_TRANSACTIONAL_BIT = 0x10
_CONTROL_BIT = 0x20

# legacy message: offset int64, size int32, crc uint32, magic int8, attributes int8, [timestamp int64 if magic 1]
_LEGACY_HEAD = struct.Struct(">qiIbb")
_LEGACY_TIMESTAMP = 18
_LEGACY_KEY_V0 = 18
_LEGACY_KEY_V1 = 26

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_SIZE_AND_MAGIC = struct.Struct(">i4xb")  # size int32 at 8, (epoch / crc), magic int8 at 16

_NO_TIMESTAMP = -1


class BatchError(ProtocolError):
    """A record batch or message set that Kafka would refuse, with the error code to answer it with.

    Produce answers it per partition (``code`` goes into the partition's
    ``error_code``); it does not mean the connection is broken, which is why
    this is a `ProtocolError` and not a `RemoteProtocolError`.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        self.code = code
        self.message = message
        #: found by Kafka's request-level checks (ProduceRequest.validateRecords), before any log is involved
        self.request_level = False
        super().__init__(f"{code.name}: {message}")


def _corrupt(message: str) -> BatchError:
    return BatchError(ErrorCode.CORRUPT_MESSAGE, message)


def _invalid(message: str) -> BatchError:
    return BatchError(ErrorCode.INVALID_RECORD, message)


# --- compression -------------------------------------------------------------

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024  # snappy-java's default block size, as Kafka's Java producer writes it
_LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"
_CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


class _Codec(NamedTuple):
    decompress: Callable[[bytes], bytes]
    compress: Callable[[bytes], bytes] | None  # None: we can read it but not write it


_codecs: dict[int, _Codec | None] = {}


def _gzip_decompress(data: bytes) -> bytes:
    out = []
    while data:
        d = zlib.decompressobj(47)  # 32 + 15: gzip or zlib header, detected
        out.append(d.decompress(data))
        if not d.eof:
            raise ValueError("gzip stream ends early")
        data = d.unused_data
    return b"".join(out)


def _gzip_compress(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)  # 16 + 15: gzip wrapper, as java.util.zip.GZIPOutputStream
    return c.compress(data) + c.flush()


def _load_snappy() -> _Codec | None:
    raw_d: Callable[[bytes], bytes]
    raw_c: Callable[[bytes], bytes]
    try:
        import cramjam

        def raw_d(b: bytes) -> bytes:
            return bytes(cramjam.snappy.decompress_raw(b))

        def raw_c(b: bytes) -> bytes:
            return bytes(cramjam.snappy.compress_raw(b))

    except ImportError:
        try:
            import snappy
        except ImportError:
            return None
        raw_d, raw_c = snappy.decompress, snappy.compress

    def decompress(data: bytes) -> bytes:
        # Java clients (snappy-java) write xerial framing: a 16-byte header, then [int32 length, raw block]...
        # librdkafka and others write one raw snappy block. Accept both.
        if data[:8] != _XERIAL_MAGIC:
            return raw_d(data)
        out = []
        pos = 16
        while pos < len(data):
            (n,) = _I32.unpack_from(data, pos)
            pos += 4
            if n < 0 or pos + n > len(data):
                raise ValueError("bad xerial snappy block length")
            out.append(raw_d(data[pos : pos + n]))
            pos += n
        return b"".join(out)

    def compress(data: bytes) -> bytes:
        parts = [_XERIAL_HEADER]
        for i in range(0, len(data), _XERIAL_BLOCK):
            block = raw_c(data[i : i + _XERIAL_BLOCK])
            parts.append(_I32.pack(len(block)))
            parts.append(block)
        return b"".join(parts)

    return _Codec(decompress, compress)


def _load_lz4() -> _Codec | None:
    compress = None
    try:
        import lz4.frame as lz4f

        frame_d: Callable[[bytes], bytes] = lz4f.decompress

        def compress(data: bytes) -> bytes:
            # What Kafka's KafkaLZ4BlockOutputStream writes: 64 KB independent blocks, no content size or checksum.
            return lz4f.compress(
                data,
                block_size=lz4f.BLOCKSIZE_MAX64KB,
                block_linked=False,
                content_checksum=False,
                store_size=False,
            )
    except ImportError:
        try:
            import cramjam
        except ImportError:
            return None

        def frame_d(b: bytes) -> bytes:
            return bytes(cramjam.lz4.decompress(b))

    def decompress(data: bytes) -> bytes:
        return frame_d(_lz4_fix_header_checksum(data))

    return _Codec(decompress, compress)


def _load_zstd() -> _Codec | None:
    try:
        import zstandard

        def decompress(data: bytes) -> bytes:
            # Frames written by streaming compressors carry no content size, so a one-shot decompress() fails.
            try:
                obj = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
            except TypeError:  # zstandard < 0.22: no read_across_frames
                return zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read()
            return obj.decompress(data)

    except ImportError:
        try:
            import cramjam
        except ImportError:
            return None

        def decompress(data: bytes) -> bytes:
            return bytes(cramjam.zstd.decompress(data))

    return _Codec(decompress, None)  # zstd is magic 2 only, and magic 2 is never recompressed


def _codec(codec_id: int) -> _Codec:
    """The codec for a compression id, or BatchError(UNSUPPORTED_COMPRESSION_TYPE) if unknown or not installed."""
    if codec_id not in _codecs:
        loader = {1: lambda: _Codec(_gzip_decompress, _gzip_compress), 2: _load_snappy, 3: _load_lz4, 4: _load_zstd}
        _codecs[codec_id] = loader[codec_id]() if codec_id in loader else None
    codec = _codecs[codec_id]
    if codec is None:
        name = _CODEC_NAMES.get(codec_id, f"id {codec_id}")
        raise BatchError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"compression {name} is not available")
    return codec


def _decompress(codec_id: int, data: Buffer) -> bytes:
    codec = _codec(codec_id)
    try:
        return codec.decompress(bytes(data))
    except BatchError:
        raise
    except Exception as exc:  # each library raises its own exception types
        raise _corrupt(f"{_CODEC_NAMES[codec_id]} data does not decompress: {exc}") from exc


def _compress(codec_id: int, data: bytes) -> bytes:
    codec = _codec(codec_id)
    if codec.compress is None:
        raise BatchError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"cannot write {_CODEC_NAMES[codec_id]} data")
    return codec.compress(data)


def _require_compressor(codec_id: int) -> None:
    if _codec(codec_id).compress is None:
        raise BatchError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"cannot write {_CODEC_NAMES[codec_id]} data")


# xxHash32, needed only for the one-byte header checksum of an LZ4 frame (the lz4 package does not expose it).
_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
_M32 = 0xFFFFFFFF


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def _xxh32(data: bytes, seed: int = 0) -> int:
    n = len(data)
    i = 0
    if n >= 16:
        v = [(seed + _P1 + _P2) & _M32, (seed + _P2) & _M32, seed & _M32, (seed - _P1) & _M32]
        while i <= n - 16:
            for lane in range(4):
                (word,) = struct.unpack_from("<I", data, i)
                v[lane] = (_rotl32((v[lane] + word * _P2) & _M32, 13) * _P1) & _M32
                i += 4
        h = (_rotl32(v[0], 1) + _rotl32(v[1], 7) + _rotl32(v[2], 12) + _rotl32(v[3], 18)) & _M32
    else:
        h = (seed + _P5) & _M32
    h = (h + n) & _M32
    while i + 4 <= n:
        (word,) = struct.unpack_from("<I", data, i)
        h = (_rotl32((h + word * _P3) & _M32, 17) * _P4) & _M32
        i += 4
    while i < n:
        h = (_rotl32((h + data[i] * _P5) & _M32, 11) * _P1) & _M32
        i += 1
    h ^= h >> 15
    h = (h * _P2) & _M32
    h ^= h >> 13
    h = (h * _P3) & _M32
    h ^= h >> 16
    return h


def _lz4_fix_header_checksum(data: bytes) -> bytes:
    """Rewrite an LZ4 frame's header checksum byte to the correct value.

    Kafka before 0.10 (and so every magic-0 LZ4 producer that mimics it)
    computed the checksum over the frame magic too, which the lz4 library
    rejects. Java's reader ignores the byte for magic 0; recomputing it is the
    same thing for a reader that checks, and a no-op on a correct frame.
    """
    if len(data) < 7 or data[:4] != _LZ4_FRAME_MAGIC:
        return data
    flg = data[4]
    hc_pos = 6 + (8 if flg & 0x08 else 0) + (4 if flg & 0x01 else 0)
    if len(data) <= hc_pos:
        return data
    hc = (_xxh32(data[4:hc_pos]) >> 8) & 0xFF
    if data[hc_pos] == hc:
        return data
    return data[:hc_pos] + bytes((hc,)) + data[hc_pos + 1 :]


# --- varints (records) ---------------------------------------------------------


def _read_varint(buf: Buffer, pos: int, max_bytes: int) -> tuple[int, int]:
    """A zigzag varint at `pos`: (value, next position). IndexError past the end."""
    result = 0
    shift = 0
    for _ in range(max_bytes):
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
    raise _corrupt(f"varint longer than {max_bytes} bytes")


# --- records ---------------------------------------------------------------------


@dataclass
class Record:
    """One decoded record (v2) or message (v0/v1). Legacy messages have no headers; magic 0 has timestamp -1."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


def _decode_v2_records(
    body: Buffer, count: int, base_offset: int, base_timestamp: int, log_append_time: int | None
) -> Iterator[Record]:
    """Records of a v2 batch body (after the 61-byte header, decompressed). Follows Kafka's DefaultRecord.readFrom."""
    pos = 0
    try:
        for _ in range(count):
            length, pos = _read_varint(body, pos, 5)
            end = pos + length
            pos += 1  # attributes: unused
            ts_delta, pos = _read_varint(body, pos, 10)
            offset_delta, pos = _read_varint(body, pos, 5)
            klen, pos = _read_varint(body, pos, 5)
            key = None
            if klen >= 0:
                key = bytes(body[pos : pos + klen])
                pos += klen
            vlen, pos = _read_varint(body, pos, 5)
            value = None
            if vlen >= 0:
                value = bytes(body[pos : pos + vlen])
                pos += vlen
            nheaders, pos = _read_varint(body, pos, 5)
            if nheaders < 0:
                raise _corrupt(f"invalid number of record headers {nheaders}")
            headers: list[tuple[str, bytes | None]] = []
            for _ in range(nheaders):
                hklen, pos = _read_varint(body, pos, 5)
                if hklen < 0:
                    raise _corrupt(f"invalid negative header key size {hklen}")
                hkey = bytes(body[pos : pos + hklen]).decode("utf-8")
                pos += hklen
                hvlen, pos = _read_varint(body, pos, 5)
                hvalue = None
                if hvlen >= 0:
                    hvalue = bytes(body[pos : pos + hvlen])
                    pos += hvlen
                headers.append((hkey, hvalue))
            if pos != end or pos > len(body):
                raise _corrupt(f"record declares {length} bytes but its fields end elsewhere")
            timestamp = base_timestamp + ts_delta if log_append_time is None else log_append_time
            yield Record(base_offset + offset_delta, timestamp, key, value, headers)
    except (IndexError, UnicodeDecodeError) as exc:
        raise _corrupt(f"record data is garbled: {exc}") from exc
    if pos != len(body):
        raise _corrupt(f"{len(body) - pos} bytes left after the batch's {count} records")


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
        # Imported at first use: the package pulls in importlib.metadata, ~10 ms of `kstub serve`'s start-up.
        from crc32c import crc32c

        end = self._start + self.size
        with memoryview(self._buf) as mv:
            return crc32c(mv[self._start + _ATTRIBUTES : end])

    def validate(self) -> None:
        """Kafka's DefaultRecordBatch.ensureValid: size at least 61, magic 2, stored CRC = computed CRC.

        Also checks the buffer holds the whole batch. All failures are CORRUPT_MESSAGE.
        """
        length = self.batch_length
        if length + LOG_OVERHEAD < self.HEADER_SIZE:
            raise _corrupt(f"batch size {length + LOG_OVERHEAD} is below the {self.HEADER_SIZE}-byte minimum")
        available = len(self._buf) - self._start
        if length + LOG_OVERHEAD > available:
            raise _corrupt(f"batch is truncated: {length + LOG_OVERHEAD} bytes declared, {available} present")
        if self.magic != 2:
            raise _corrupt(f"magic {self.magic} is not 2")
        stored, computed = self.crc, self.compute_crc()
        if stored != computed:
            raise _corrupt(f"batch CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}")

    def set_base_offset(self, offset: int) -> None:
        _I64.pack_into(self._buf, self._start + _BASE_OFFSET, offset)

    def set_partition_leader_epoch(self, epoch: int) -> None:
        _I32.pack_into(self._buf, self._start + _LEADER_EPOCH, epoch)

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
        maxTimestamp, as Kafka's DefaultRecordBatch reports it. Garbled record
        data raises BatchError(CORRUPT_MESSAGE); a missing codec library,
        BatchError(UNSUPPORTED_COMPRESSION_TYPE).
        """
        size = self.size
        if size < self.HEADER_SIZE or self._start + size > len(self._buf):
            raise _corrupt("record batch length does not fit its buffer")
        body: bytes = bytes(self._buf[self._start + self.HEADER_SIZE : self._start + size])
        if self.compression:
            body = _decompress(self.compression, body)
        lat = self.max_timestamp if self.timestamp_type else None
        return _decode_v2_records(body, self.records_count, self.base_offset, self.base_timestamp, lat)

    def __repr__(self) -> str:
        return (
            f"RecordBatch(base_offset={self.base_offset}, last_offset_delta={self.last_offset_delta}, "
            f"size={self.size}, compression={self.compression}, records_count={self.records_count})"
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
    """The decompressed inner message set of a legacy wrapper."""

    blob: bytes  # decompressed bytes
    messages: list[_Msg]  # complete inner messages, in order
    end: int  # where the complete inner messages end in `blob`


def _legacy_inner(buf: Buffer, wrapper: _Msg, *, check: bool) -> _Inner:
    """Decompress and walk a legacy wrapper's inner set, with Kafka's checks (AbstractLegacyRecordBatch
    DeepRecordsIterator and LogValidator.validateRecord):

    * zstd in a legacy wrapper, or a null wrapper value -> INVALID_RECORD
    * inner size below 14 -> CORRUPT_MESSAGE; a trailing partial inner message is dropped silently
    * inner magic differing from the wrapper's -> INVALID_RECORD
    * inner message compressed -> INVALID_RECORD
    * inner CRC-32 mismatch -> CORRUPT_MESSAGE (only with `check`)
    * no inner message -> INVALID_RECORD
    * magic 1 wrapper offset neither 0 nor >= the last inner offset -> INVALID_RECORD (only with `check`)
    """
    codec = wrapper.attributes & _COMPRESSION_MASK
    if codec == 4:
        raise _invalid(f"zstd compression in a magic {wrapper.magic} message set")
    if wrapper.value_pos < 0:
        raise _invalid(f"compressed message set with a null value (magic {wrapper.magic})")
    blob = _decompress(codec, buf[wrapper.value_pos : wrapper.value_pos + wrapper.value_len])
    messages = []
    end = 0
    for pos, total in _walk(blob, "inner record size {size} is less than the minimum record overhead"):
        m = _parse_legacy(blob, pos, total)
        if m.magic != wrapper.magic:
            raise _invalid(f"compressed message magic {m.magic} does not match wrapper magic {wrapper.magic}")
        if m.attributes & _COMPRESSION_MASK:
            raise _invalid("inner messages must not be compressed")
        if check and _legacy_crc(blob, pos, total) != m.crc:
            raise _corrupt(f"inner message CRC-32 mismatch at inner offset {m.offset}")
        messages.append(m)
        end = pos + total
    if not messages:
        raise _invalid("compressed message set with no inner messages")
    if check and wrapper.magic == 1 and wrapper.offset != 0 and wrapper.offset < messages[-1].offset:
        raise _invalid(
            f"wrapper offset {wrapper.offset} is less than the last inner offset {messages[-1].offset} and not zero"
        )
    return _Inner(blob, messages, end)


def _legacy_timestamps(wrapper: _Msg, messages: list[_Msg]) -> list[int]:
    """Timestamps of the messages as a reader sees them (a LogAppendTime wrapper gives its own to all)."""
    if wrapper.magic == 0:
        return [_NO_TIMESTAMP] * len(messages)
    if wrapper.attributes & _TIMESTAMP_TYPE_BIT:
        return [wrapper.timestamp] * len(messages)
    return [m.timestamp for m in messages]


# --- produce ---------------------------------------------------------------------


@dataclass
class ProducedBatch:
    """One unit the broker appends: a v2 batch, or a legacy (magic 0/1) message set from one produce partition."""

    data: bytearray  # owned, patchable copy of the bytes as sent
    magic: int
    offset_count: int  # offsets it consumes: v2 last_offset_delta + 1; legacy: number of (outer or inner) messages
    first_timestamp: int  # -1 if none (magic 0)
    max_timestamp: int
    producer_id: int = -1
    producer_epoch: int = -1
    base_sequence: int = -1
    is_transactional: bool = False
    compression: int = 0
    # legacy compressed only: the decompressed inner set, and whether offset assignment must recompress it
    _inner: _Inner | None = field(default=None, repr=False, compare=False)
    _rebuild: bool = field(default=False, repr=False, compare=False)

    def assign_offsets(self, base_offset: int, leader_epoch: int) -> None:
        """Give the batch offsets base_offset .. base_offset + offset_count - 1, as Kafka does on append.

        * v2: patch baseOffset and partitionLeaderEpoch; neither is covered by the CRC.
        * magic 0/1 uncompressed: rewrite each entry's offset (outside the message CRC).
        * magic 1 compressed, inner offsets 0..n-1: rewrite the wrapper offset to the last absolute offset;
          also, as Kafka's in-place path does (``setMaxTimestamp``), set a CreateTime wrapper's timestamp
          to the largest inner timestamp, recomputing the wrapper CRC-32 if it changed.
        * magic 0 compressed (absolute inner offsets), or magic 1 whose inner offsets are not 0..n-1
          (older clients; Kafka rebuilds these too): renumber the inner messages, recompress with the same
          codec (LZ4 frames get a correct header checksum) and rebuild the wrapper with a new size and CRC-32.
          This replaces `data` with a new bytearray.

        `leader_epoch` is stored only by v2 (legacy formats have no field for it).
        """
        data = self.data
        if self.magic == 2:
            _I64.pack_into(data, _BASE_OFFSET, base_offset)
            _I32.pack_into(data, _LEADER_EPOCH, leader_epoch)
            return
        if not self.compression:
            pos, i = 0, 0
            while pos < len(data):
                _I64.pack_into(data, pos, base_offset + i)
                pos += _I32.unpack_from(data, pos + 8)[0] + LOG_OVERHEAD
                i += 1
            return
        last = base_offset + self.offset_count - 1
        if self._rebuild:
            self._rebuild_wrapper(base_offset)
            data = self.data
        _I64.pack_into(data, 0, last)
        if self.magic == 1 and not data[17] & _TIMESTAMP_TYPE_BIT:
            (wrapper_ts,) = _I64.unpack_from(data, _LEGACY_TIMESTAMP)
            if wrapper_ts != self.max_timestamp:
                _set_legacy_timestamp(data, 0, len(data), self.max_timestamp, False)

    def _rebuild_wrapper(self, base_offset: int) -> None:
        inner = self._inner
        assert inner is not None
        blob = bytearray(inner.blob[: inner.end])
        for i, m in enumerate(inner.messages):
            _I64.pack_into(blob, m.pos, base_offset + i if self.magic == 0 else i)
        compressed = _compress(self.compression, bytes(blob))
        wrapper = _parse_legacy(self.data, 0, len(self.data))
        head = self.data[: wrapper.value_len_pos]
        new = bytearray(head)
        new += _I32.pack(len(compressed))
        new += compressed
        _I32.pack_into(new, 8, len(new) - LOG_OVERHEAD)
        _U32.pack_into(new, 12, _legacy_crc(new, 0, len(new)))
        self.data = new
        # The new inner set is what is stored now; keep the view consistent for a second call.
        new_msgs = [m._replace(offset=base_offset + i if self.magic == 0 else i) for i, m in enumerate(inner.messages)]
        self._inner = _Inner(bytes(blob), new_msgs, len(blob))
        if self.magic == 1:
            self._rebuild = False  # inner offsets are 0..n-1 now

    def set_log_append_time(self, ts_ms: int) -> None:
        """Stamp LogAppendTime `ts_ms`, as Kafka does for a topic with message.timestamp.type=LogAppendTime.

        v2: attribute bit 3 + maxTimestamp, CRC-32C recomputed. Magic 1: the
        timestamp and bit 3 of each uncompressed message, or of the wrapper only
        when compressed (readers give its timestamp to all inner messages),
        CRC-32 recomputed. Magic 0 has no timestamp: no-op. `first_timestamp`
        and `max_timestamp` become `ts_ms` (magic 1 and 2), which is what
        readers will report for every record.
        """
        if self.magic == 0:
            return
        if self.magic == 2:
            RecordBatch(self.data).set_log_append_time(ts_ms)
        else:
            pos = 0
            while pos < len(self.data):
                total = _I32.unpack_from(self.data, pos + 8)[0] + LOG_OVERHEAD
                _set_legacy_timestamp(self.data, pos, total, ts_ms, True)
                pos += total
        self.first_timestamp = self.max_timestamp = ts_ms


def read_produce_data(
    data: Buffer | None, produce_version: int, *, max_message_bytes: int | None = None
) -> list[ProducedBatch]:
    """Validate one partition's produce records as Kafka does, and copy them into owned `ProducedBatch`es.

    Returns at most one ProducedBatch (Kafka appends one batch or one legacy
    message set per partition), and none when Produce v0-2 carries no complete
    entry (Kafka appends nothing and reports no error). Raises `BatchError`
    with the code Kafka answers; checks, in Kafka's order:

    ``ProduceRequest.validateRecords`` (Produce v3+ only):
      * no complete batch (empty, or shorter than its declared length) -> INVALID_RECORD
      * first batch magic is not 2 -> INVALID_RECORD
      * zstd with Produce < 7 -> UNSUPPORTED_COMPRESSION_TYPE
      * more than one complete batch -> INVALID_RECORD

    Walking entries (``ByteBufferLogInputStream``), any Produce version:
      * declared size below 14, or magic outside 0..2 -> CORRUPT_MESSAGE
      * a trailing partial entry ends the walk and is dropped (Kafka's ``trimInvalidBytes``)

    Per entry (``UnifiedLog.analyzeAndValidateRecords``):
      * v2 batch whose baseOffset is not 0 -> INVALID_RECORD
      * entry larger than `max_message_bytes` -> MESSAGE_TOO_LARGE
      * v2: size below 61 or CRC-32C mismatch; legacy: CRC-32 mismatch or fields overrunning the message
        -> CORRUPT_MESSAGE

    ``LogValidator``:
      * entries of different magics -> INVALID_RECORD
      * more than one v2 batch, or more than one legacy entry when any is compressed -> INVALID_RECORD
      * v2 (``validateBatch``, origin client): lastOffsetDelta < 0, recordsCount <= 0,
        recordsCount != lastOffsetDelta + 1, a control batch, producerId >= 0 with baseSequence < 0
        -> INVALID_RECORD
      * legacy compressed: see `_legacy_inner` (zstd / null value / mixed magic / nested compression /
        empty -> INVALID_RECORD, inner CRC -> CORRUPT_MESSAGE)

    Our own choices where Kafka has no API error: a compression id 5-7, or a
    codec whose library is missing when we must decompress (legacy) or
    recompress (magic 0) -> UNSUPPORTED_COMPRESSION_TYPE; undecompressable
    legacy data -> CORRUPT_MESSAGE.

    Topic-config-dependent checks (timestamp type/range, compacted topics
    needing keys) and producer-state checks (sequence numbers, epochs) are the
    caller's. v2 records are not decoded: only the CRC reads them.
    """
    mv = _as_view(data)
    entries, _ = _scan_entries(mv)
    try:
        if produce_version >= 3:
            if not entries:
                raise _invalid(f"Produce requests with version {produce_version} must have at least one record batch")
            pos, total, magic = entries[0]
            if magic != 2:
                raise _invalid(
                    f"Produce requests with version {produce_version} are only allowed to contain "
                    "record batches with magic version 2"
                )
            if total < RecordBatch.HEADER_SIZE:
                raise _corrupt(f"batch size {total} is below the {RecordBatch.HEADER_SIZE}-byte minimum")
            if produce_version < 7 and RecordBatch(mv, pos).compression == 4:
                raise BatchError(
                    ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
                    f"Produce requests with version {produce_version} are not allowed to use ZStandard compression",
                )
            if len(entries) > 1:
                raise _invalid(
                    f"Produce requests with version {produce_version} are only allowed to contain "
                    "exactly one record batch"
                )
    except BatchError as exc:
        exc.request_level = True
        raise
    if not entries:
        return []

    for pos, total, magic in entries:
        if magic == 2 and _I64.unpack_from(mv, pos)[0] != 0:
            raise _invalid(f"the baseOffset of a produced record batch must be 0, not {_I64.unpack_from(mv, pos)[0]}")
        if max_message_bytes is not None and total > max_message_bytes:
            raise BatchError(
                ErrorCode.MESSAGE_TOO_LARGE,
                f"the record batch size is {total} bytes, above the maximum configured value of {max_message_bytes}",
            )
        if magic == 2:
            if total < RecordBatch.HEADER_SIZE:
                raise _corrupt(f"batch size {total} is below the {RecordBatch.HEADER_SIZE}-byte minimum")
            RecordBatch(mv, pos).validate()
        else:
            (stored,) = _U32.unpack_from(mv, pos + 12)
            if _legacy_crc(mv, pos, total) != stored:
                raise _corrupt(f"message CRC-32 mismatch (stored {stored:#010x})")

    first_magic = entries[0][2]
    if any(magic != first_magic for _, _, magic in entries):
        raise _invalid("batch magic differs from the first batch's magic")
    if first_magic == 2:
        return [_read_v2(mv, entries)]
    return [_read_legacy(mv, entries)]


def _read_v2(mv: memoryview, entries: list[tuple[int, int, int]]) -> ProducedBatch:
    if len(entries) > 1:
        raise _invalid("a produce of magic 2 data must hold exactly one record batch")
    pos, total, _ = entries[0]
    b = RecordBatch(mv, pos)
    lod, count = b.last_offset_delta, b.records_count
    if lod < 0:
        raise _invalid(f"batch has an invalid offset range: last offset delta {lod}")
    if count <= 0:
        raise _invalid(f"invalid reported count for record batch: {count}")
    if count != lod + 1:
        raise _invalid(f"inconsistent batch offset range [0, {lod}] and count of records {count}")
    if b.is_control:
        raise _invalid("clients are not allowed to write control records")
    if b.producer_id >= 0 and b.base_sequence < 0:
        raise _invalid(f"invalid sequence number {b.base_sequence} in record batch with producerId {b.producer_id}")
    if b.compression > 4:
        raise BatchError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression id {b.compression}")
    return ProducedBatch(
        data=bytearray(mv[pos : pos + total]),
        magic=2,
        offset_count=lod + 1,
        first_timestamp=b.base_timestamp,
        max_timestamp=b.max_timestamp,
        producer_id=b.producer_id,
        producer_epoch=b.producer_epoch,
        base_sequence=b.base_sequence,
        is_transactional=b.is_transactional,
        compression=b.compression,
    )


def _read_legacy(mv: memoryview, entries: list[tuple[int, int, int]]) -> ProducedBatch:
    msgs = [_parse_legacy(mv, pos, total) for pos, total, _ in entries]
    magic = msgs[0].magic
    codecs = {m.attributes & _COMPRESSION_MASK for m in msgs}
    compression = max(codecs)
    if compression and len(msgs) > 1:
        raise _invalid("compressed outer record has more than one batch")
    if compression > 4:
        raise BatchError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression id {compression}")
    end = entries[-1][0] + entries[-1][1]
    if not compression:
        timestamps = [m.timestamp for m in msgs]  # -1 for magic 0
        return ProducedBatch(
            data=bytearray(mv[:end]),
            magic=magic,
            offset_count=len(msgs),
            first_timestamp=timestamps[0],
            max_timestamp=max(timestamps),
            compression=0,
        )
    wrapper = msgs[0]
    inner = _legacy_inner(mv, wrapper, check=True)
    rebuild = magic == 0 or any(m.offset != i for i, m in enumerate(inner.messages))
    if rebuild:
        _require_compressor(compression)
    timestamps = _legacy_timestamps(wrapper, inner.messages)
    return ProducedBatch(
        data=bytearray(mv[:end]),
        magic=magic,
        offset_count=len(inner.messages),
        first_timestamp=timestamps[0],
        max_timestamp=max(timestamps),
        compression=compression,
        _inner=inner,
        _rebuild=rebuild,
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
        inner = _legacy_inner(mv, m, check=False).messages
        if magic == 0:
            yield inner[0].offset, m.offset, _NO_TIMESTAMP
        else:
            yield m.offset - (inner[-1].offset - inner[0].offset), m.offset, m.timestamp


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
        if magic == 2:
            if total < RecordBatch.HEADER_SIZE:
                raise _corrupt(f"batch size {total} is below the {RecordBatch.HEADER_SIZE}-byte minimum")
            RecordBatch(mv, pos).validate()
        else:
            (stored,) = _U32.unpack_from(mv, pos + 12)
            if _legacy_crc(mv, pos, total) != stored:
                raise _corrupt(f"message CRC-32 mismatch (stored {stored:#010x})")
            _parse_legacy(mv, pos, total)


def _legacy_records(mv: memoryview, pos: int, total: int) -> Iterator[Record]:
    m = _parse_legacy(mv, pos, total)
    if not m.attributes & _COMPRESSION_MASK:
        key, value = _legacy_key_value(mv, m)
        yield Record(m.offset, m.timestamp, key, value, [])
        return
    inner = _legacy_inner(mv, m, check=False)
    timestamps = _legacy_timestamps(m, inner.messages)
    # Magic 1 inner offsets are relative to the wrapper's (the last one's); Kafka's deep iterator reads a
    # wrapper offset of 0 (unassigned produce data) as base 0.
    base = 0 if m.magic == 0 or m.offset == 0 else m.offset - inner.messages[-1].offset
    for im, ts in zip(inner.messages, timestamps, strict=True):
        key, value = _legacy_key_value(inner.blob, im)
        yield Record(base + im.offset, ts, key, value, [])


def iter_records(data: Buffer) -> Iterator[Record]:
    """Every record of stored (or produced) data: v2 batches and legacy entries, decompressed. Not for hot paths."""
    mv = _as_view(data)
    entries, _ = _scan_entries(mv)
    for pos, total, magic in entries:
        if magic == 2:
            yield from RecordBatch(mv, pos).records()
        else:
            yield from _legacy_records(mv, pos, total)


def first_record_at(data: Buffer, ts_ms: int) -> Record | None:
    """The first record in `data` whose timestamp is >= `ts_ms`, or None.

    Kafka's LogSegment.findOffsetByTimestamp: v2 batches whose maxTimestamp is
    below `ts_ms` are skipped without decoding; others are decoded
    (decompressed if needed) record by record. Legacy entries are always
    decoded; magic 0 messages have no timestamp (-1) and never match a
    non-negative `ts_ms`.
    """
    mv = _as_view(data)
    entries, _ = _scan_entries(mv)
    for pos, total, magic in entries:
        if magic == 2:
            b = RecordBatch(mv, pos)
            if b.max_timestamp < ts_ms:
                continue
            records = b.records()
        else:
            records = _legacy_records(mv, pos, total)
        for r in records:
            if r.timestamp >= ts_ms:
                return r
    return None


def offset_for_timestamp(data: Buffer, ts_ms: int) -> int | None:
    """The offset of the first record in `data` whose timestamp is >= `ts_ms`, or None."""
    record = first_record_at(data, ts_ms)
    return None if record is None else record.offset
