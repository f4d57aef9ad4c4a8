"""Property tests of every primitive wire type in kstub.protocol.primitives.

Each primitive is a construct (kstub/protocol/constructs.py): `.build(value)` gives bytes,
`.parse(bytes)` the value back. The expected byte layouts are written out here
independently (``struct`` for fixed widths, a reference varint encoder) so the
tests do not just check the codec against itself. Errors seen through a
`MessageCodec` are checked at the end: there every malformed input is a
`DecodeError` carrying the path of the field that failed.
"""

from __future__ import annotations

import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstub.protocol.constructs import StreamError
from kstub.protocol.errors import DecodeError, LocalProtocolError
from kstub.protocol.primitives import (
    ZERO_UUID,
    Boolean,
    Float64,
    Int8,
    Int16,
    Int32,
    Int64,
    KArray,
    KBytes,
    KString,
    UInt16,
    UInt32,
    UnsignedVarInt,
    UnsignedVarLong,
    Uuid,
    VarInt,
    VarLong,
    read_uvarint,
    write_uvarint,
    write_varint,
    zigzag_decode,
    zigzag_encode,
)
from kstub.protocol.schema import Field, Message

SETTINGS = settings(max_examples=200, deadline=None)

#: errors a raw construct may raise on a short stream (through a MessageCodec
#: both become DecodeError, tested at the bottom)
SHORT = (DecodeError, StreamError)


def ref_uvarint(value: int) -> bytes:
    """Reference unsigned LEB128, written independently of the codec."""
    out = []
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def ref_zigzag(value: int) -> int:
    return 2 * value if value >= 0 else -2 * value - 1


# --- fixed width ------------------------------------------------------------

FIXED = [
    (Int8, "b", -(2**7), 2**7 - 1),
    (Int16, "h", -(2**15), 2**15 - 1),
    (Int32, "i", -(2**31), 2**31 - 1),
    (Int64, "q", -(2**63), 2**63 - 1),
    (UInt16, "H", 0, 2**16 - 1),
    (UInt32, "I", 0, 2**32 - 1),
]
FIXED_IDS = ["int8", "int16", "int32", "int64", "uint16", "uint32"]


@pytest.mark.parametrize(("con", "fmt", "lo", "hi"), FIXED, ids=FIXED_IDS)
@SETTINGS
@given(data=st.data())
def test_fixed_int_roundtrip(con, fmt, lo, hi, data) -> None:
    value = data.draw(st.integers(lo, hi))
    raw = con.build(value)
    assert raw == struct.pack(">" + fmt, value)  # big-endian, exact width
    assert con.parse(raw) == value
    assert con.sizeof() == struct.calcsize(fmt)


@pytest.mark.parametrize(("con", "fmt", "lo", "hi"), FIXED, ids=FIXED_IDS)
@SETTINGS
@given(data=st.data())
def test_fixed_int_out_of_range_is_local_error(con, fmt, lo, hi, data) -> None:
    value = data.draw(st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1)))
    with pytest.raises(LocalProtocolError):
        con.build(value)


@pytest.mark.parametrize(("con", "fmt", "lo", "hi"), FIXED, ids=FIXED_IDS)
@SETTINGS
@given(data=st.data())
def test_fixed_int_short_stream(con, fmt, lo, hi, data) -> None:
    raw = data.draw(st.binary(max_size=struct.calcsize(fmt) - 1))
    with pytest.raises(SHORT):
        con.parse(raw)


@SETTINGS
@given(st.floats(allow_nan=False))
def test_float64_roundtrip(value: float) -> None:
    raw = Float64.build(value)
    assert raw == struct.pack(">d", value)
    assert Float64.parse(raw) == value


def test_float64_nan_keeps_its_bits() -> None:
    raw = bytes.fromhex("7ff8000000000001")
    value = Float64.parse(raw)
    assert value != value  # NaN
    assert Float64.build(value) == raw


@SETTINGS
@given(st.booleans())
def test_boolean_roundtrip(value: bool) -> None:
    raw = Boolean.build(value)
    assert raw == (b"\x01" if value else b"\x00")
    assert Boolean.parse(raw) is value


@SETTINGS
@given(st.integers(0, 255))
def test_boolean_any_nonzero_byte_is_true(byte: int) -> None:
    # Kafka reads a boolean as `readByte() != 0`
    assert Boolean.parse(bytes([byte])) is (byte != 0)


def test_boolean_short_stream() -> None:
    with pytest.raises(SHORT):
        Boolean.parse(b"")


@SETTINGS
@given(st.integers(0, 2**128 - 1))
def test_uuid_roundtrip(n: int) -> None:
    value = uuid.UUID(int=n)
    raw = Uuid.build(value)
    assert raw == n.to_bytes(16, "big")
    assert Uuid.parse(raw) == value


def test_uuid_none_is_zero_uuid() -> None:
    assert Uuid.build(None) == bytes(16)
    assert Uuid.parse(bytes(16)) == ZERO_UUID


@SETTINGS
@given(st.binary(max_size=15))
def test_uuid_short_stream(raw: bytes) -> None:
    with pytest.raises(SHORT):
        Uuid.parse(raw)


# --- varints ------------------------------------------------------------------


@SETTINGS
@given(st.integers(0, 2**32 - 1))
def test_unsigned_varint_roundtrip(value: int) -> None:
    raw = UnsignedVarInt.build(value)
    assert raw == ref_uvarint(value)
    assert len(raw) <= 5
    assert UnsignedVarInt.parse(raw) == value
    assert write_uvarint(value) == raw
    stream = iter([raw[i : i + 1] for i in range(len(raw))])
    assert read_uvarint(lambda n: next(stream, b""), 5) == value


@SETTINGS
@given(st.integers(0, 2**64 - 1))
def test_unsigned_varlong_roundtrip(value: int) -> None:
    raw = UnsignedVarLong.build(value)
    assert raw == ref_uvarint(value)
    assert len(raw) <= 10
    assert UnsignedVarLong.parse(raw) == value


@pytest.mark.parametrize(
    ("value", "raw"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),
        (300, "ac02"),
        (2**32 - 1, "ffffffff0f"),
    ],
)
def test_unsigned_varint_known_bytes(value: int, raw: str) -> None:
    assert UnsignedVarInt.build(value).hex() == raw
    assert UnsignedVarInt.parse(bytes.fromhex(raw)) == value


def test_unsigned_varint_six_bytes_is_decode_error() -> None:
    # a 6-byte varint (even one whose value would be small) is refused
    with pytest.raises(DecodeError, match="longer than 5"):
        UnsignedVarInt.parse(b"\x80\x80\x80\x80\x80\x00")
    with pytest.raises(DecodeError):
        UnsignedVarInt.parse(b"\xff" * 5 + b"\x01")


@SETTINGS
@given(st.binary(min_size=4, max_size=4), st.integers(0x10, 0x7F))
def test_unsigned_varint_five_bytes_overflowing_32_bits(prefix: bytes, last: int) -> None:
    raw = bytes(b | 0x80 for b in prefix) + bytes([last])
    with pytest.raises(DecodeError, match="overflow"):
        UnsignedVarInt.parse(raw)


@SETTINGS
@given(st.binary(min_size=4, max_size=4), st.integers(0, 0x0F))
def test_unsigned_varint_five_bytes_within_32_bits(prefix: bytes, last: int) -> None:
    raw = bytes(b | 0x80 for b in prefix) + bytes([last])
    expected = sum((b & 0x7F) << (7 * i) for i, b in enumerate(raw))
    assert UnsignedVarInt.parse(raw) == expected


def test_unsigned_varlong_limits() -> None:
    assert UnsignedVarLong.parse(b"\xff" * 9 + b"\x01") == 2**64 - 1
    with pytest.raises(DecodeError, match="longer than 10"):
        UnsignedVarLong.parse(b"\x80" * 10 + b"\x00")
    with pytest.raises(DecodeError, match="overflow"):
        UnsignedVarLong.parse(b"\xff" * 9 + b"\x02")


@SETTINGS
@given(st.binary(max_size=4).map(lambda b: bytes(x | 0x80 for x in b)))
def test_unsigned_varint_short_stream(raw: bytes) -> None:
    with pytest.raises(DecodeError, match="ended inside a varint"):
        UnsignedVarInt.parse(raw)


@pytest.mark.parametrize(("con", "bits"), [(UnsignedVarInt, 32), (UnsignedVarLong, 64)], ids=["varint", "varlong"])
@SETTINGS
@given(data=st.data())
def test_unsigned_varint_out_of_range_is_local_error(con, bits, data) -> None:
    value = data.draw(st.one_of(st.integers(max_value=-1), st.integers(min_value=2**bits)))
    with pytest.raises(LocalProtocolError):
        con.build(value)


@pytest.mark.parametrize(("con", "bits", "max_len"), [(VarInt, 32, 5), (VarLong, 64, 10)], ids=["varint", "varlong"])
@SETTINGS
@given(data=st.data())
def test_zigzag_roundtrip(con, bits, max_len, data) -> None:
    value = data.draw(st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
    raw = con.build(value)
    assert raw == ref_uvarint(ref_zigzag(value))
    assert len(raw) <= max_len
    assert con.parse(raw) == value
    assert zigzag_encode(value, bits) & (2**bits - 1) == ref_zigzag(value)
    assert zigzag_decode(ref_zigzag(value)) == value


@pytest.mark.parametrize(("value", "raw"), [(0, "00"), (-1, "01"), (1, "02"), (-2, "03"), (-64, "7f"), (64, "8001")])
def test_zigzag_known_bytes(value: int, raw: str) -> None:
    assert VarInt.build(value).hex() == raw
    assert VarLong.build(value).hex() == raw
    assert VarInt.parse(bytes.fromhex(raw)) == value


def test_zigzag_extremes() -> None:
    assert VarInt.build(2**31 - 1).hex() == "feffffff0f"
    assert VarInt.build(-(2**31)).hex() == "ffffffff0f"
    assert VarLong.build(-(2**63)).hex() == "ff" * 9 + "01"
    with pytest.raises(DecodeError):
        VarInt.parse(b"\xff\xff\xff\xff\x1f")  # 33 bits


@pytest.mark.parametrize(("con", "bits"), [(VarInt, 32), (VarLong, 64)], ids=["varint", "varlong"])
@SETTINGS
@given(data=st.data())
def test_zigzag_out_of_range_is_local_error(con, bits, data) -> None:
    half = 2 ** (bits - 1)
    value = data.draw(st.one_of(st.integers(max_value=-half - 1), st.integers(min_value=half)))
    with pytest.raises(LocalProtocolError):
        con.build(value)


# --- strings, bytes, arrays ---------------------------------------------------

KINDS = [(False, False), (False, True), (True, False), (True, True)]
KIND_IDS = ["classic", "classic-nullable", "compact", "compact-nullable"]


def length_prefix(compact: bool, n: int, classic_fmt: str) -> bytes:
    """Kafka's length/count prefix: classic int16/int32, compact uvarint(n+1)."""
    return ref_uvarint(n + 1) if compact else struct.pack(">" + classic_fmt, n)


@pytest.mark.parametrize(("compact", "nullable"), KINDS, ids=KIND_IDS)
@SETTINGS
@given(value=st.text(max_size=50))
def test_string_roundtrip(compact: bool, nullable: bool, value: str) -> None:
    con = KString(compact, nullable)
    data = value.encode("utf-8")
    raw = con.build(value)
    assert raw == length_prefix(compact, len(data), "h") + data
    assert con.parse(raw) == value


@pytest.mark.parametrize(("compact", "nullable"), KINDS, ids=KIND_IDS)
def test_string_null(compact: bool, nullable: bool) -> None:
    con = KString(compact, nullable)
    null = b"\x00" if compact else b"\xff\xff"
    if nullable:
        assert con.build(None) == null
        assert con.parse(null) is None
    else:
        with pytest.raises(LocalProtocolError):
            con.build(None)
        with pytest.raises(DecodeError, match="length -1"):
            con.parse(null)


@pytest.mark.parametrize("nullable", [False, True])
@SETTINGS
@given(n=st.integers(-(2**15), -2))
def test_string_negative_length_is_decode_error(nullable: bool, n: int) -> None:
    with pytest.raises(DecodeError, match=f"length {n}"):
        KString(False, nullable).parse(struct.pack(">h", n) + b"abc")


@pytest.mark.parametrize(("compact", "nullable"), KINDS, ids=KIND_IDS)
@SETTINGS
@given(
    data=st.tuples(
        st.text(max_size=10).map(str.encode),
        # bytes that never occur in UTF-8, a lone continuation byte, a cut sequence
        st.sampled_from([b"\xff", b"\xc0\x80", b"\x80", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]),
        st.text(max_size=10).map(str.encode),
    ).map(b"".join)
)
def test_string_invalid_utf8_is_decode_error(compact: bool, nullable: bool, data: bytes) -> None:
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    with pytest.raises(DecodeError, match="UTF-8"):
        KString(compact, nullable).parse(length_prefix(compact, len(data), "h") + data)


@pytest.mark.parametrize(("compact", "nullable"), KINDS, ids=KIND_IDS)
@SETTINGS
@given(value=st.text(min_size=1, max_size=30), cut=st.integers(1, 1000))
def test_string_short_stream(compact: bool, nullable: bool, value: str, cut: int) -> None:
    raw = KString(compact, nullable).build(value)
    with pytest.raises(SHORT):
        KString(compact, nullable).parse(raw[: len(raw) - 1 - cut % len(raw)])


def test_classic_string_too_long_is_local_error() -> None:
    KString(False, False).build("x" * 0x7FFF)
    with pytest.raises(LocalProtocolError):
        KString(False, False).build("x" * 0x8000)
    # compact strings have no such limit
    assert KString(True, False).parse(KString(True, False).build("x" * 0x8000)) == "x" * 0x8000


@pytest.mark.parametrize(("compact", "nullable"), KINDS, ids=KIND_IDS)
@SETTINGS
@given(value=st.binary(max_size=80))
def test_bytes_roundtrip(compact: bool, nullable: bool, value: bytes) -> None:
    con = KBytes(compact, nullable)
    raw = con.build(value)
    assert raw == length_prefix(compact, len(value), "i") + value
    assert con.parse(raw) == value


@pytest.mark.parametrize(("compact", "nullable"), KINDS, ids=KIND_IDS)
@SETTINGS
@given(parts=st.lists(st.binary(max_size=20), max_size=5))
def test_bytes_built_from_parts(compact: bool, nullable: bool, parts: list[bytes]) -> None:
    # a Fetch response hands the stored batch slices over without joining them
    con = KBytes(compact, nullable)
    assert con.build(parts) == con.build(b"".join(parts))
    assert con.build([memoryview(p) for p in parts]) == con.build(b"".join(parts))


@pytest.mark.parametrize(("compact", "nullable"), KINDS, ids=KIND_IDS)
def test_bytes_null(compact: bool, nullable: bool) -> None:
    con = KBytes(compact, nullable)
    null = b"\x00" if compact else b"\xff\xff\xff\xff"
    if nullable:
        assert con.build(None) == null
        assert con.parse(null) is None
    else:
        with pytest.raises(LocalProtocolError):
            con.build(None)
        with pytest.raises(DecodeError, match="length -1"):
            con.parse(null)


@pytest.mark.parametrize("nullable", [False, True])
@SETTINGS
@given(n=st.integers(-(2**31), -2))
def test_bytes_negative_length_is_decode_error(nullable: bool, n: int) -> None:
    with pytest.raises(DecodeError, match=f"length {n}"):
        KBytes(False, nullable).parse(struct.pack(">i", n) + b"abc")


@pytest.mark.parametrize(("compact", "nullable"), KINDS, ids=KIND_IDS)
@SETTINGS
@given(value=st.binary(min_size=1, max_size=30), cut=st.integers(1, 1000))
def test_bytes_short_stream(compact: bool, nullable: bool, value: bytes, cut: int) -> None:
    raw = KBytes(compact, nullable).build(value)
    with pytest.raises(SHORT):
        KBytes(compact, nullable).parse(raw[: len(raw) - 1 - cut % len(raw)])


@pytest.mark.parametrize(("compact", "nullable"), KINDS, ids=KIND_IDS)
@SETTINGS
@given(value=st.lists(st.integers(-(2**31), 2**31 - 1), max_size=20))
def test_array_roundtrip(compact: bool, nullable: bool, value: list[int]) -> None:
    con = KArray(Int32, compact, nullable)
    raw = con.build(value)
    assert raw == length_prefix(compact, len(value), "i") + b"".join(struct.pack(">i", x) for x in value)
    assert con.parse(raw) == value


@pytest.mark.parametrize(("compact", "nullable"), KINDS, ids=KIND_IDS)
@SETTINGS
@given(value=st.lists(st.text(max_size=10), max_size=10))
def test_array_of_strings_roundtrip(compact: bool, nullable: bool, value: list[str]) -> None:
    con = KArray(KString(compact, False), compact, nullable)
    assert con.parse(con.build(value)) == value


@pytest.mark.parametrize(("compact", "nullable"), KINDS, ids=KIND_IDS)
def test_array_null(compact: bool, nullable: bool) -> None:
    con = KArray(Int32, compact, nullable)
    null = b"\x00" if compact else b"\xff\xff\xff\xff"
    if nullable:
        assert con.build(None) == null
        assert con.parse(null) is None
    else:
        with pytest.raises(LocalProtocolError):
            con.build(None)
        with pytest.raises(DecodeError, match="length -1"):
            con.parse(null)


@pytest.mark.parametrize("nullable", [False, True])
@SETTINGS
@given(n=st.integers(-(2**31), -2))
def test_array_negative_length_is_decode_error(nullable: bool, n: int) -> None:
    with pytest.raises(DecodeError, match=f"length {n}"):
        KArray(Int32, False, nullable).parse(struct.pack(">i", n) + bytes(8))


@pytest.mark.parametrize("compact", [False, True])
def test_array_huge_count_on_short_stream_fails_fast(compact: bool) -> None:
    # a count of ~2**31 with 8 bytes of elements must fail, not allocate
    raw = (ref_uvarint(2**32 - 1) if compact else struct.pack(">i", 2**31 - 1)) + bytes(8)
    with pytest.raises(SHORT):
        KArray(Int32, compact, False).parse(raw)


# --- errors through a MessageCodec: always DecodeError, naming the field ------

PROBE = Message(
    "Probe",
    [
        Field("id", "int32"),
        Field("name", "string", nullable="1+"),
        Field("items", [Field("key", "string"), Field("value", "bytes", nullable="0+"), Field("n", "int64")]),
        Field("tail", "uuid"),
    ],
)


@pytest.mark.parametrize(("version", "flexible"), [(0, False), (1, False), (1, True)])
@SETTINGS
@given(
    value=st.fixed_dictionaries(
        {
            "id": st.integers(-(2**31), 2**31 - 1),
            "name": st.text(max_size=10),
            "items": st.lists(
                st.fixed_dictionaries(
                    {
                        "key": st.text(max_size=5),
                        "value": st.none() | st.binary(max_size=5),
                        "n": st.integers(-(2**63), 2**63 - 1),
                    }
                ),
                max_size=3,
            ),
            "tail": st.uuids(),
        }
    ),
    data=st.data(),
)
def test_short_stream_through_codec_names_the_field(version: int, flexible: bool, value, data) -> None:
    codec = PROBE.codec(version, flexible)
    raw = codec.encode(value)
    decoded = codec.decode(raw, exact=True)
    assert dict(decoded) == {**value, "items": [dict(i) for i in decoded["items"]]}
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError) as info:
        codec.decode(raw[:cut])
    assert info.value.path.startswith(f"Probe v{version}")
    last = info.value.path.rsplit(".", 1)[-1]
    assert last in {"id", "name", "items", "key", "value", "n", "tail", "<tagged fields>"}, info.value.path


def test_codec_error_paths() -> None:
    codec = PROBE.codec(1, False)
    ok = codec.encode({"id": 1, "name": "x", "items": [{"key": "k", "value": b"v", "n": 5}]})
    # cut inside items[0].n
    with pytest.raises(DecodeError) as info:
        codec.decode(ok[: 4 + 3 + 4 + 3 + 5 + 4])
    assert info.value.path == "Probe v1.items.n"
    # a bad string length inside the array
    bad = ok[:11] + b"\xff\xfe" + ok[13:]
    with pytest.raises(DecodeError, match="length -2") as info:
        codec.decode(bad)
    assert info.value.path == "Probe v1.items.key"
    # invalid UTF-8 in the top-level name
    with pytest.raises(DecodeError, match="UTF-8") as info:
        codec.decode(ok[:4] + b"\x00\x01\xff" + ok[7:])
    assert info.value.path == "Probe v1.name"
    # null only where nullable: v0 name is not nullable
    with pytest.raises(DecodeError, match="length -1") as info:
        PROBE.codec(0, False).decode(ok[:4] + b"\xff\xff" + ok[7:])
    assert info.value.path == "Probe v0.name"
    # trailing bytes with exact=True
    with pytest.raises(DecodeError, match="1 trailing bytes"):
        codec.decode(ok + b"\x00", exact=True)
    assert codec.decode(ok + b"\x00")["id"] == 1


def test_codec_encode_errors_are_local() -> None:
    codec = PROBE.codec(0, False)
    with pytest.raises(LocalProtocolError):
        codec.encode({"id": 2**31})
    with pytest.raises(LocalProtocolError):
        codec.encode({"name": None})  # not nullable in v0
    with pytest.raises(LocalProtocolError):
        codec.encode({"items": [5]})
    with pytest.raises(LocalProtocolError):
        codec.encode({"tail": "not a uuid"})


@pytest.mark.parametrize(
    ("value", "bits", "raw"),
    [
        (0, 64, "00"),
        (-1, 64, "01"),
        (1, 64, "02"),
        (-64, 64, "7f"),
        (64, 64, "8001"),
        (2**63 - 1, 64, "fe" + "ff" * 8 + "01"),
        (-(2**63), 64, "ff" * 9 + "01"),
        (-1, 32, "01"),
        (-(2**31), 32, "ffffffff0f"),
    ],
)
def test_signed_varint_known_bytes(value: int, bits: int, raw: str) -> None:
    assert write_varint(value, bits) == bytes.fromhex(raw)
