"""The compression codecs: streaming decompression a chunk at a time, and compression for tests and
rewrites (magic 0 wrappers)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from typing import NamedTuple

from ..errors import ErrorCode
from .layout import _I32, BatchError, Buffer, _corrupt

# --- compression -------------------------------------------------------------

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024  # snappy-java's default block size, as Kafka's Java producer writes it
_LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"
_CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


Reader = Callable[[int], bytes]  # read(n): up to n more decompressed bytes, b"" at the end

#: Decompressed bytes asked of a codec at a time: what a stream holds besides the record being read.
_CHUNK = 256 * 1024

#: Kafka's default max.decompressed.message.bytes (Records.SOFT_MAX_ARRAY_LENGTH): no cap beyond the largest array.
MAX_RECORD_BYTES = 2147483639

#: Most bytes a legacy (magic 0/1) wrapper's inner message set may inflate to. The inner set is held whole
#: (magic 0, and magic 1 with bad inner offsets, are renumbered and recompressed), so it gets a cap of its own;
#: a legitimate set is far smaller (it came from one batch of at most max.message.bytes, 1 MB by default).
LEGACY_INNER_MAX_BYTES = 64 * 1024 * 1024


class _Codec(NamedTuple):
    open: Callable[[bytes], Reader]  # a streaming reader over compressed data
    compress: Callable[[bytes], bytes] | None  # None: we can read it but not write it


_codecs: dict[int, _Codec | None] = {}


def _whole(out: bytes) -> Reader:
    """A reader over already decompressed bytes (codec libraries without a streaming API)."""
    mv = memoryview(out)
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        chunk = bytes(mv[pos : pos + n])
        pos += len(chunk)
        return chunk

    return read


def _gzip_open(data: bytes) -> Reader:
    d = zlib.decompressobj(47)  # 32 + 15: gzip or zlib header, detected
    pending = data

    def read(n: int) -> bytes:
        nonlocal d, pending
        while True:
            if d.eof:
                if not d.unused_data:
                    return b""
                pending = d.unused_data  # concatenated gzip members, as java.util.zip.GZIPInputStream reads them
                d = zlib.decompressobj(47)
            out = d.decompress(pending, n)
            pending = d.unconsumed_tail
            if out:
                return out
            if not d.eof and not pending:
                raise ValueError("gzip stream ends early")

    return read


def _gzip_compress(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)  # 16 + 15: gzip wrapper, as java.util.zip.GZIPOutputStream
    return c.compress(data) + c.flush()


def _snappy_raw_length(block: bytes) -> int:
    """The uncompressed length a raw snappy block declares (its leading varint), checked against what the
    block could possibly produce (a snappy element never writes more than 64 bytes per 3), so a forged
    length cannot make the library allocate gigabytes."""
    length = shift = 0
    for i in range(min(5, len(block))):
        length |= (block[i] & 0x7F) << shift
        if block[i] < 0x80:
            break
        shift += 7
    if length > 22 * len(block) + 64:
        raise ValueError(f"snappy block of {len(block)} bytes declares {length} uncompressed bytes")
    return length


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

    def blocks(data: bytes) -> Iterator[bytes]:
        # Java clients (snappy-java) write xerial framing: a 16-byte header, then [int32 length, raw block]...
        # librdkafka and others write one raw snappy block. Accept both; inflate one block at a time.
        if data[:8] != _XERIAL_MAGIC:
            _snappy_raw_length(data)
            yield raw_d(data)
            return
        pos = 16
        while pos < len(data):
            (n,) = _I32.unpack_from(data, pos)
            pos += 4
            if n < 0 or pos + n > len(data):
                raise ValueError("bad xerial snappy block length")
            block = data[pos : pos + n]
            _snappy_raw_length(block)
            yield raw_d(block)
            pos += n

    def open_(data: bytes) -> Reader:
        it = blocks(data)
        current = memoryview(b"")
        pos = 0

        def read(n: int) -> bytes:
            nonlocal current, pos
            while pos >= len(current):
                nxt = next(it, None)
                if nxt is None:
                    return b""
                current, pos = memoryview(nxt), 0
            chunk = bytes(current[pos : pos + n])
            pos += len(chunk)
            return chunk

        return read

    def compress(data: bytes) -> bytes:
        parts = [_XERIAL_HEADER]
        for i in range(0, len(data), _XERIAL_BLOCK):
            block = raw_c(data[i : i + _XERIAL_BLOCK])
            parts.append(_I32.pack(len(block)))
            parts.append(block)
        return b"".join(parts)

    return _Codec(open_, compress)


def _load_lz4() -> _Codec | None:
    compress = None
    open_: Callable[[bytes], Reader]
    try:
        import lz4.frame as lz4f

        def compress(data: bytes) -> bytes:
            # What Kafka's KafkaLZ4BlockOutputStream writes: 64 KB independent blocks, no content size or checksum.
            return lz4f.compress(
                data,
                block_size=lz4f.BLOCKSIZE_MAX64KB,
                block_linked=False,
                content_checksum=False,
                store_size=False,
            )

        def open_(data: bytes) -> Reader:
            d = lz4f.LZ4FrameDecompressor()
            pending = _lz4_fix_header_checksum(data)

            def read(n: int) -> bytes:
                nonlocal pending
                while True:
                    if d.eof:
                        return b""  # one frame, as Kafka's reader; anything after it is ignored
                    out = d.decompress(pending, max_length=n)
                    pending = b""
                    if out:
                        return out
                    if d.needs_input and not d.eof:
                        raise ValueError("lz4 frame ends early")

            return read

    except ImportError:
        try:
            import cramjam
        except ImportError:
            return None

        def open_(data: bytes) -> Reader:
            return _whole(bytes(cramjam.lz4.decompress(_lz4_fix_header_checksum(data))))

    return _Codec(open_, compress)


def _load_zstd() -> _Codec | None:
    open_: Callable[[bytes], Reader]
    compress: Callable[[bytes], bytes]
    try:
        import zstandard

        def open_(data: bytes) -> Reader:
            # Frames written by streaming compressors carry no content size; a stream reader needs none.
            return zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read

        def compress(data: bytes) -> bytes:  # level 3: Kafka's compression.zstd.level default
            return zstandard.ZstdCompressor(level=3).compress(data)

    except ImportError:
        try:
            import cramjam
        except ImportError:
            return None

        def open_(data: bytes) -> Reader:
            return _whole(bytes(cramjam.zstd.decompress(data)))

        def compress(data: bytes) -> bytes:
            return bytes(cramjam.zstd.compress(data, level=3))

    # zstd is magic 2 only: written when a topic's compression.type recompresses batches
    return _Codec(open_, compress)


def _codec(codec_id: int) -> _Codec:
    """The codec for a compression id, or BatchError(UNSUPPORTED_COMPRESSION_TYPE) if unknown or not installed."""
    if codec_id not in _codecs:
        loader = {1: lambda: _Codec(_gzip_open, _gzip_compress), 2: _load_snappy, 3: _load_lz4, 4: _load_zstd}
        _codecs[codec_id] = loader[codec_id]() if codec_id in loader else None
    codec = _codecs[codec_id]
    if codec is None:
        name = _CODEC_NAMES.get(codec_id, f"id {codec_id}")
        raise BatchError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"compression {name} is not available")
    return codec


def _inflate(codec_id: int, data: Buffer) -> Reader:
    """A streaming reader of `data` decompressed with `codec_id`; codec errors become CORRUPT_MESSAGE."""
    codec = _codec(codec_id)
    name = _CODEC_NAMES[codec_id]
    try:
        inner = codec.open(bytes(data))
    except Exception as exc:  # each library raises its own exception types
        raise _corrupt(f"{name} data does not decompress: {exc}") from exc

    def read(n: int) -> bytes:
        try:
            return inner(n)
        except BatchError:
            raise
        except Exception as exc:
            raise _corrupt(f"{name} data does not decompress: {exc}") from exc

    return read


def decompress(codec_id: int, data: Buffer) -> bytes:
    """All of `data` decompressed (unbounded: for tests and small inputs, never the broker's paths)."""
    read = _inflate(codec_id, data)
    return b"".join(iter(lambda: read(_CHUNK), b""))


def decompress_at_most(codec_id: int, data: Buffer, limit: int) -> bytes | None:
    """`data` decompressed, or None as soon as it inflates beyond `limit` bytes (memory stays bounded)."""
    read = _inflate(codec_id, data)
    parts: list[bytes] = []
    total = 0
    while chunk := read(_CHUNK):
        total += len(chunk)
        if total > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def compress(codec_id: int, data: bytes) -> bytes:
    codec = _codec(codec_id)
    if codec.compress is None:
        raise BatchError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"cannot write {_CODEC_NAMES[codec_id]} data")
    return codec.compress(data)


def _require_compressor(codec_id: int) -> None:
    if _codec(codec_id).compress is None:
        raise BatchError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"cannot write {_CODEC_NAMES[codec_id]} data")


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
    import xxhash  # only for lz4 frames (imported on first use, as the codecs are)

    hc = (xxhash.xxh32_intdigest(data[4:hc_pos]) >> 8) & 0xFF
    if data[hc_pos] == hc:
        return data
    return data[:hc_pos] + bytes((hc,)) + data[hc_pos + 1 :]
