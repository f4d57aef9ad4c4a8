"""Kafka's primitive wire types as constructs (protocol/constructs.py).

Names follow Kafka's own vocabulary (see the protocol guide): int8..int64,
uint16/uint32, float64, boolean, uuid, (compact)(nullable) string and bytes,
(compact) arrays, unsigned varints for framing and zigzag varints for records.

Varints are bounded as Kafka bounds them: an unsigned varint may take at most
5 bytes (varint/int32) or 10 bytes (varlong/int64); a longer one is a
`DecodeError`, never a silent parse. The `construct` library's `VarInt` (kstub
used that library once) accepts any length, which is why these are written out here.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

from . import constructs as c
from .constructs import stream_read, stream_write
from .errors import DecodeError, LocalProtocolError

__all__ = [
    "ZERO_UUID",
    "Boolean",
    "Float64",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "KArray",
    "KBytes",
    "KRecordView",
    "KString",
    "UInt16",
    "UInt32",
    "UnsignedVarInt",
    "UnsignedVarLong",
    "Uuid",
    "VarInt",
    "VarLong",
    "read_uvarint",
    "write_uvarint",
    "write_varint",
    "zigzag_decode",
    "zigzag_encode",
]

ZERO_UUID = uuid.UUID(int=0)


class _Fixed(c.Construct):
    """A big-endian fixed-width number (faster than the `construct` library's FormatField)."""

    def __init__(self, fmt: str) -> None:
        super().__init__()
        self._struct = struct.Struct(">" + fmt)
        self.length = self._struct.size

    def _parse(self, stream, context, path):
        data = stream_read(stream, self.length, path)
        return self._struct.unpack(data)[0]

    def _build(self, obj, stream, context, path):
        try:
            stream_write(stream, self._struct.pack(obj), self.length, path)
        except struct.error as exc:
            raise LocalProtocolError(f"{path}: cannot encode {obj!r}: {exc}") from None
        return obj

    def _sizeof(self, context, path):
        return self.length


Int8 = _Fixed("b")
Int16 = _Fixed("h")
Int32 = _Fixed("i")
Int64 = _Fixed("q")
UInt16 = _Fixed("H")
UInt32 = _Fixed("I")
Float64 = _Fixed("d")


class _Boolean(c.Construct):
    def _parse(self, stream, context, path):
        return stream_read(stream, 1, path) != b"\x00"

    def _build(self, obj, stream, context, path):
        stream_write(stream, b"\x01" if obj else b"\x00", 1, path)
        return obj

    def _sizeof(self, context, path):
        return 1


Boolean = _Boolean()


class _Uuid(c.Construct):
    def _parse(self, stream, context, path):
        return uuid.UUID(bytes=stream_read(stream, 16, path))

    def _build(self, obj, stream, context, path):
        if obj is None:
            obj = ZERO_UUID
        stream_write(stream, obj.bytes, 16, path)
        return obj

    def _sizeof(self, context, path):
        return 16


Uuid = _Uuid()


# --- varints -------------------------------------------------------------


def read_uvarint(read, max_bytes: int, path: str = "") -> int:
    """Read an unsigned varint with `read(1)`, failing past `max_bytes` bytes."""
    result = 0
    shift = 0
    for _ in range(max_bytes):
        byte = read(1)
        if not byte:
            raise DecodeError("stream ended inside a varint", path)
        b = byte[0]
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result
        shift += 7
    raise DecodeError(f"varint longer than {max_bytes} bytes", path)


def write_uvarint(value: int) -> bytes:
    if value < 0:
        raise LocalProtocolError(f"unsigned varint cannot hold {value}")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def write_varint(value: int, bits: int = 64) -> bytes:
    """A signed (zigzag) varint of `bits` bits, as a record's fields are written (a varlong by default)."""
    return write_uvarint(zigzag_encode(value, bits) & ((1 << bits) - 1))


def zigzag_encode(value: int, bits: int) -> int:
    return (value << 1) ^ (value >> (bits - 1))


def zigzag_decode(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


class _UVarInt(c.Construct):
    def __init__(self, max_bytes: int, bits: int) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self.limit = 1 << bits

    def _parse(self, stream, context, path):
        value = read_uvarint(lambda n: stream.read(n), self.max_bytes, path)
        if value >= self.limit:
            raise DecodeError("varint overflows its width", path)
        return value

    def _build(self, obj, stream, context, path):
        if not 0 <= obj < self.limit:
            raise LocalProtocolError(f"{path}: {obj} does not fit an unsigned varint")
        data = write_uvarint(obj)
        stream_write(stream, data, len(data), path)
        return obj


class _ZigZag(c.Construct):
    def __init__(self, max_bytes: int, bits: int) -> None:
        super().__init__()
        self.unsigned = _UVarInt(max_bytes, bits)
        self.bits = bits

    def _parse(self, stream, context, path):
        return zigzag_decode(self.unsigned._parse(stream, context, path))

    def _build(self, obj, stream, context, path):
        lo = -(1 << (self.bits - 1))
        if not lo <= obj < -lo:
            raise LocalProtocolError(f"{path}: {obj} does not fit a {self.bits}-bit varint")
        self.unsigned._build(zigzag_encode(obj, self.bits) & (self.unsigned.limit - 1), stream, context, path)
        return obj


UnsignedVarInt = _UVarInt(5, 32)
UnsignedVarLong = _UVarInt(10, 64)
VarInt = _ZigZag(5, 32)
VarLong = _ZigZag(10, 64)


# --- strings, bytes, arrays ----------------------------------------------


class _Sized(c.Construct):
    """A length-prefixed value: classic (`prefix`, -1 = null) or compact (uvarint length+1, 0 = null)."""

    prefix: c.Construct
    what: str

    def __init__(self, compact: bool, nullable: bool) -> None:
        super().__init__()
        self.compact = compact
        self.nullable = nullable

    def _read_size(self, stream, context, path) -> int | None:
        """The length that follows, or None for null."""
        if self.compact:
            n = UnsignedVarInt._parse(stream, context, path) - 1
        else:
            n = self.prefix._parse(stream, context, path)
        if n >= 0:
            return n
        if self.nullable and n == -1:
            return None
        raise DecodeError(f"invalid {self.what} length {n}", path)

    def _write_size(self, n: int | None, stream, context, path) -> None:
        if n is None:
            if not self.nullable:
                raise LocalProtocolError(f"{path}: null for a non-nullable {self.what}")
            n = -1
        if self.compact:
            UnsignedVarInt._build(n + 1, stream, context, path)
        else:
            self.prefix._build(n, stream, context, path)


class KString(_Sized):
    """STRING / NULLABLE_STRING / COMPACT_(NULLABLE_)STRING, UTF-8."""

    prefix = Int16
    what = "string"

    def _parse(self, stream, context, path):
        n = self._read_size(stream, context, path)
        if n is None:
            return None
        try:
            return stream_read(stream, n, path).decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("string is not UTF-8", path) from None

    def _build(self, obj, stream, context, path):
        if obj is None:
            self._write_size(None, stream, context, path)
            return obj
        data = obj.encode("utf-8")
        if not self.compact and len(data) > 0x7FFF:
            raise LocalProtocolError(f"{path}: string longer than 32767 bytes")
        self._write_size(len(data), stream, context, path)
        stream_write(stream, data, len(data), path)
        return obj


class KBytes(_Sized):
    """BYTES / NULLABLE_BYTES / RECORDS and their compact forms.

    Parsing returns `bytes` (records stay undecoded: the record-batch layer
    reads them). Building accepts bytes-like objects or a list of them, so a
    Fetch response can hand over the stored batch slices without joining them.
    """

    prefix = Int32
    what = "bytes"

    def _parse(self, stream, context, path):
        n = self._read_size(stream, context, path)
        return None if n is None else stream_read(stream, n, path)

    def _build(self, obj, stream, context, path):
        if obj is None:
            self._write_size(None, stream, context, path)
            return obj
        parts = obj if isinstance(obj, list) else (obj,)
        self._write_size(sum(len(p) for p in parts), stream, context, path)
        for part in parts:
            stream.write(part)
        return obj


class KRecordView(KBytes):
    """RECORDS of a request (Produce's) read as a memoryview of the message's bytes, not a copy.

    The records are copied once, into the log, by the record-batch layer; a
    view here saves a copy of every produced byte on the way. (The constructs'
    own path, the fallback, reads a copy and wraps it, so both give a view.)
    """

    def _parse(self, stream, context, path):
        n = self._read_size(stream, context, path)
        return None if n is None else memoryview(stream_read(stream, n, path))


class KArray(_Sized):
    """ARRAY / COMPACT_ARRAY of `element`, null as -1 (or 0 when compact)."""

    prefix = Int32
    what = "array"

    def __init__(self, element: c.Construct, compact: bool, nullable: bool) -> None:
        super().__init__(compact, nullable)
        self.element = element

    def _parse(self, stream, context, path):
        n = self._read_size(stream, context, path)
        if n is None:
            return None
        parse = self.element._parse
        return [parse(stream, context, path) for _ in range(n)]

    def _build(self, obj: Any, stream, context, path):
        if obj is None:
            self._write_size(None, stream, context, path)
            return obj
        self._write_size(len(obj), stream, context, path)
        build = self.element._build
        for item in obj:
            build(item, stream, context, path)
        return obj
