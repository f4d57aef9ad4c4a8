"""Tests of kstub.protocol.records against bytes made by a real client library (kafka-python's builders).

kafka-python's MemoryRecords reads our patched bytes back, so an offset, CRC or
compression mistake shows up as a reader would see it.
"""

from __future__ import annotations

import struct
import zlib

import cramjam
import crc32c
import lz4.frame
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

from kstub.protocol import records as rec
from kstub.protocol.errors import ErrorCode
from kstub.protocol.primitives import write_varint as _zz
from kstub.protocol.records import (
    BatchError,
    ProducedBatch,
    Record,
    RecordBatch,
    compression,
    iter_records,
    iter_stored,
    legacy,
    offset_for_timestamp,
    read_produce_data,
)
from kstub.protocol.records.compression import compress, decompress

NONE, GZIP, SNAPPY, LZ4, ZSTD = range(5)
V2_CODECS = [NONE, GZIP, SNAPPY, LZ4, ZSTD]
LEGACY_CODECS = [NONE, GZIP, SNAPPY, LZ4]
LEGACY_COMPRESSED = [GZIP, SNAPPY, LZ4]

SAMPLE = [
    # (timestamp, key, value, headers)
    (1_700_000_000_000, b"k0", b"v0", [("h1", b"x"), ("h2", None)]),
    (1_700_000_000_500, None, b"value with null key", []),
    (1_700_000_000_200, b"k2", None, [("only", b"")]),
    (1_700_000_001_000, b"", b"", []),
    (1_700_000_000_900, b"k4" * 50, b"v4" * 300, [("a", b"1"), ("b", b"2"), ("c", None)]),
]


# --- builders and readers (kafka-python) ----------------------------------------------------------


def build_v2(
    records=SAMPLE,
    codec: int = NONE,
    *,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
) -> bytes:
    b = DefaultRecordBatchBuilder(2, codec, transactional, producer_id, producer_epoch, base_sequence, 1 << 24)
    for i, (ts, key, value, headers) in enumerate(records):
        assert b.append(i, ts, key, value, headers) is not None
    return bytes(b.build())


def build_legacy(magic: int, codec: int, records=SAMPLE, offsets=None) -> bytes:
    b = LegacyRecordBatchBuilder(magic, codec, 1 << 24)
    for i, (ts, key, value, _headers) in enumerate(records):
        assert b.append(offsets[i] if offsets else i, ts, key, value) is not None
    return bytes(b.build())


def kp_read(data: bytes) -> list[tuple]:
    """(offset, timestamp, key, value, headers) of every record, as kafka-python reads them; CRCs must hold."""
    out = []
    mr = MemoryRecords(bytes(data))
    while (batch := mr.next_batch()) is not None:
        assert batch.validate_crc(), "batch/wrapper CRC does not validate"
        for r in batch:
            assert r.validate_crc(), f"record CRC does not validate at offset {r.offset}"
            out.append((r.offset, r.timestamp, r.key, r.value, list(r.headers)))
    return out


def kp_batches(data: bytes) -> list:
    mr = MemoryRecords(bytes(data))
    out = []
    while (batch := mr.next_batch()) is not None:
        out.append(batch)
    return out


def expected(records, base: int, *, magic: int = 2, ts_override: int | None = None) -> list[tuple]:
    out = []
    for i, (ts, key, value, headers) in enumerate(records):
        if magic == 0:
            ts = None
        elif ts_override is not None:
            ts = ts_override
        out.append((base + i, ts, key, value, headers if magic == 2 else []))
    return out


def patch_v2(data: bytes, fmt: str, offset: int, value: int, *, fix_crc: bool = True) -> bytes:
    """Overwrite one header field of a v2 batch and, by default, recompute its CRC-32C (independently of ours)."""
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, value)
    if fix_crc:
        struct.pack_into(">I", buf, 17, crc32c.crc32c(bytes(buf[21:])))
    return bytes(buf)


def fix_legacy_crc(buf: bytearray, pos: int = 0) -> None:
    (size,) = struct.unpack_from(">i", buf, pos + 8)
    struct.pack_into(">I", buf, pos + 12, zlib.crc32(bytes(buf[pos + 16 : pos + 12 + size])))


def make_wrapper(magic: int, inner: bytes, *, key: bytes | None = None) -> bytearray:
    """A gzip-compressed legacy wrapper around `inner`, written by hand (not by the code under test)."""
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    value = c.compress(inner) + c.flush()
    body = struct.pack(">bb", magic, GZIP) + (struct.pack(">q", 0) if magic else b"")
    body += struct.pack(">i", -1) if key is None else struct.pack(">i", len(key)) + key
    body += struct.pack(">i", len(value)) + value
    return bytearray(struct.pack(">qiI", 0, len(body) + 4, zlib.crc32(body)) + body)


def code_of(excinfo: pytest.ExceptionInfo[BatchError]) -> ErrorCode:
    return excinfo.value.code


# --- compression helpers ---------------------------------------------------------------


def test_lz4_frame_with_old_kafka_header_checksum_decodes() -> None:
    frame = bytearray(lz4.frame.compress(b"old kafka" * 10, store_size=False))
    frame[6] = (xxhash.xxh32_intdigest(bytes(frame[0:6])) >> 8) & 0xFF  # the pre-0.10 bug: checksum over the magic too
    with pytest.raises(RuntimeError):
        lz4.frame.decompress(bytes(frame))
    assert decompress(LZ4, bytes(frame)) == b"old kafka" * 10


def test_snappy_raw_and_xerial_both_decode() -> None:
    payload = b"snappy " * 20000  # > one 32 KB xerial block
    xerial = compress(SNAPPY, payload)
    assert xerial.startswith(b"\x82SNAPPY\x00")
    assert decompress(SNAPPY, xerial) == payload
    assert decompress(SNAPPY, bytes(cramjam.snappy.compress_raw(payload))) == payload


def test_garbage_compressed_data_is_corrupt() -> None:
    with pytest.raises(BatchError) as e:
        decompress(GZIP, b"not gzip at all")
    assert code_of(e) == ErrorCode.CORRUPT_MESSAGE


# --- RecordBatch view -------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", V2_CODECS)
def test_v2_header_fields_match_kafka_python(codec: int) -> None:
    data = build_v2(codec=codec, producer_id=4242, producer_epoch=3, base_sequence=17, transactional=True)
    ours = RecordBatch(bytearray(data))
    theirs = DefaultRecordBatch(data)
    assert ours.base_offset == theirs.base_offset == 0
    assert ours.batch_length == len(data) - 12
    assert ours.size == len(data) == theirs.size_in_bytes
    assert ours.partition_leader_epoch == theirs.leader_epoch
    assert ours.magic == 2
    assert ours.crc == theirs.crc
    assert ours.attributes == theirs.attributes
    assert ours.compression == codec == theirs.compression_type
    assert ours.timestamp_type == 0
    assert ours.is_transactional is True
    assert ours.is_control is False
    assert ours.last_offset_delta == len(SAMPLE) - 1
    assert ours.last_offset == len(SAMPLE) - 1
    assert ours.base_timestamp == SAMPLE[0][0] == theirs.first_timestamp
    assert ours.max_timestamp == max(r[0] for r in SAMPLE) == theirs.max_timestamp
    assert (ours.producer_id, ours.producer_epoch, ours.base_sequence) == (4242, 3, 17)
    assert ours.records_count == len(SAMPLE)


def test_v2_view_at_an_offset_inside_a_larger_buffer() -> None:
    first, second = build_v2(SAMPLE[:2]), build_v2(SAMPLE[2:], GZIP)
    buf = bytearray(first + second)
    view = RecordBatch(buf, len(first))
    assert view.records_count == 3 and view.compression == GZIP
    view.validate()
    struct.pack_into(">q", buf, len(first), 2)  # the base offset, as the log patches it
    assert [r.offset for r in view.records()] == [2, 3, 4]
    assert buf[: len(first)] == first


@pytest.mark.parametrize("codec", V2_CODECS)
def test_v2_crc_validates(codec: int) -> None:
    data = build_v2(codec=codec)
    batch = RecordBatch(data)
    assert batch.compute_crc() == batch.crc == crc32c.crc32c(data[21:])
    batch.validate()


def test_view_over_a_truncated_buffer_does_not_validate() -> None:
    data = build_v2()
    with pytest.raises(BatchError) as e:
        RecordBatch(bytearray(data[:-1])).validate()
    assert code_of(e) == ErrorCode.CORRUPT_MESSAGE
    with pytest.raises(BatchError) as e:
        RecordBatch(bytearray(data[:40]))
    assert code_of(e) == ErrorCode.CORRUPT_MESSAGE


def test_base_offset_and_leader_epoch_are_outside_the_crc() -> None:
    data = build_v2()
    buf = bytearray(data)
    struct.pack_into(">q", buf, 0, 1 << 40)
    struct.pack_into(">i", buf, 12, 9)
    b = RecordBatch(buf)
    assert b.base_offset == 1 << 40 and b.partition_leader_epoch == 9
    assert buf[16:] == data[16:]  # magic onwards untouched, so the CRC is still good
    b.validate()


@pytest.mark.parametrize("codec", V2_CODECS)
def test_v2_records_decode_keys_values_headers_and_nulls(codec: int) -> None:
    data = build_v2(codec=codec)
    got = list(RecordBatch(data).records())
    assert got == [Record(i, ts, k, v, h) for i, (ts, k, v, h) in enumerate(SAMPLE)]
    assert got[1].key is None and got[2].value is None and got[0].headers[1] == ("h2", None)


def test_v2_records_with_raw_snappy_block_as_librdkafka_writes() -> None:
    xerial = build_v2(codec=SNAPPY)
    body = decompress(SNAPPY, xerial[61:])
    raw = bytes(cramjam.snappy.compress_raw(body))
    data = bytearray(xerial[:61] + raw)
    struct.pack_into(">i", data, 8, len(data) - 12)
    struct.pack_into(">I", data, 17, crc32c.crc32c(bytes(data[21:])))
    assert [r.value for r in RecordBatch(data).records()] == [r[2] for r in SAMPLE]


def test_records_of_garbled_record_data_is_invalid_record() -> None:
    # Kafka's DefaultRecord readers throw InvalidRecordException (INVALID_RECORD) for records that do not parse.
    data = bytearray(build_v2())
    data[61] = 0x02  # the first record's length varint: now 1 byte, which its fields overrun
    with pytest.raises(BatchError) as e:
        list(RecordBatch(data).records())
    assert code_of(e) == ErrorCode.INVALID_RECORD


# --- read_produce_data: acceptance ----------------------------------------------------------------


@pytest.mark.parametrize("codec", V2_CODECS)
def test_produce_v2_batch_fields(codec: int) -> None:
    data = build_v2(codec=codec, producer_id=77, producer_epoch=1, base_sequence=10)
    [pb] = read_produce_data(data, 9)
    assert isinstance(pb.data, bytearray) and bytes(pb.data) == data
    assert pb.magic == 2 and pb.compression == codec
    assert pb.offset_count == len(SAMPLE)
    assert pb.first_timestamp == SAMPLE[0][0]
    assert pb.max_timestamp == max(r[0] for r in SAMPLE)
    assert (pb.producer_id, pb.producer_epoch, pb.base_sequence, pb.is_transactional) == (77, 1, 10, False)


def test_produce_data_is_an_owned_copy() -> None:
    src = bytearray(build_v2())
    [pb] = read_produce_data(memoryview(src), 3)
    src[30] ^= 0xFF
    assert pb.data != src
    RecordBatch(pb.data).validate()


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("codec", LEGACY_CODECS)
def test_produce_legacy_set_fields(magic: int, codec: int) -> None:
    data = build_legacy(magic, codec)
    [pb] = read_produce_data(data, 2)
    assert bytes(pb.data) == data
    assert pb.magic == magic and pb.compression == codec
    assert pb.offset_count == len(SAMPLE)
    if magic == 0:
        assert (pb.first_timestamp, pb.max_timestamp) == (-1, -1)
    else:
        assert pb.first_timestamp == SAMPLE[0][0]
        assert pb.max_timestamp == max(r[0] for r in SAMPLE)
    assert (pb.producer_id, pb.producer_epoch, pb.base_sequence, pb.is_transactional) == (-1, -1, -1, False)


def test_produce_v2_data_accepted_in_old_produce_versions() -> None:
    # Kafka validates magic only from Produce v3 on ("to ensure compatibility with clients which send the wrong magic").
    [pb] = read_produce_data(build_v2(codec=ZSTD), 2)
    assert pb.magic == 2 and pb.compression == ZSTD


def test_produce_does_not_decode_records() -> None:
    """A 1 MB batch whose records are garbage but whose header and CRC are consistent is accepted, as Kafka's
    header-only checks would: proof that read_produce_data and assign_offsets never parse the records."""
    good = build_v2(SAMPLE[:1])
    body = bytes(range(256)) * 4096
    data = bytearray(good[:61] + body)
    struct.pack_into(">i", data, 8, len(data) - 12)
    struct.pack_into(">I", data, 17, crc32c.crc32c(bytes(data[21:])))
    [pb] = read_produce_data(bytes(data), 9)
    pb.assign_offsets(5, 1)
    RecordBatch(pb.data).validate()
    with pytest.raises(BatchError):
        list(RecordBatch(pb.data).records())


# --- read_produce_data: Kafka's refusals -------------------------------------------------------------


@pytest.mark.parametrize("pos", [21, 23, 30, 40, 57, 61, 80, -1])
def test_flipped_byte_under_the_crc_is_corrupt(pos: int) -> None:
    data = bytearray(build_v2(codec=GZIP))
    data[pos] ^= 0x01
    with pytest.raises(BatchError) as e:
        read_produce_data(bytes(data), 9)
    assert code_of(e) == ErrorCode.CORRUPT_MESSAGE


def test_flipped_crc_byte_is_corrupt() -> None:
    data = bytearray(build_v2())
    data[18] ^= 0x10
    with pytest.raises(BatchError) as e:
        read_produce_data(bytes(data), 3)
    assert code_of(e) == ErrorCode.CORRUPT_MESSAGE


def test_leader_epoch_is_outside_the_crc() -> None:
    data = bytearray(build_v2())
    data[12:16] = b"\x00\x00\x01\x00"
    [pb] = read_produce_data(bytes(data), 9)
    assert RecordBatch(pb.data).partition_leader_epoch == 256


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("codec", [NONE, GZIP])
def test_legacy_flipped_byte_is_corrupt(magic: int, codec: int) -> None:
    data = bytearray(build_legacy(magic, codec))
    data[-2] ^= 0x01
    with pytest.raises(BatchError) as e:
        read_produce_data(bytes(data), 1)
    assert code_of(e) == ErrorCode.CORRUPT_MESSAGE


def test_legacy_inner_crc_mismatch_is_corrupt() -> None:
    # The wrapper CRC is right, but a message inside the compressed set is damaged.
    inner = bytearray(build_legacy(1, NONE, SAMPLE[:2]))
    inner[-1] ^= 0x01
    with pytest.raises(BatchError) as e:
        read_produce_data(bytes(make_wrapper(1, bytes(inner))), 2)
    assert code_of(e) == ErrorCode.CORRUPT_MESSAGE


def test_hand_made_wrapper_is_accepted() -> None:
    # the control case for the refusals built with make_wrapper
    [pb] = read_produce_data(bytes(make_wrapper(1, build_legacy(1, NONE, SAMPLE[:2]))), 2)
    pb.assign_offsets(8, 0)
    assert kp_read(pb.data) == expected(SAMPLE[:2], 8, magic=1)


def test_inner_magic_differing_from_wrapper_is_invalid_record() -> None:
    with pytest.raises(BatchError) as e:
        read_produce_data(bytes(make_wrapper(1, build_legacy(0, NONE, SAMPLE[:2]))), 2)
    assert code_of(e) == ErrorCode.INVALID_RECORD


def test_empty_compressed_set_is_invalid_record() -> None:
    with pytest.raises(BatchError) as e:
        read_produce_data(bytes(make_wrapper(0, b"")), 0)
    assert code_of(e) == ErrorCode.INVALID_RECORD


def test_truncated_only_batch_in_produce_v3_is_invalid_record() -> None:
    # Kafka's batch iterator stops at an entry longer than the bytes left, so it sees no batch at all:
    # ProduceRequest.validateRecords answers INVALID_RECORD ("must have at least one record batch").
    data = build_v2()
    for cut in (1, 30, len(data) - 13):
        with pytest.raises(BatchError) as e:
            read_produce_data(data[:-cut], 3)
        assert code_of(e) == ErrorCode.INVALID_RECORD
    with pytest.raises(BatchError) as e:
        read_produce_data(b"", 3)
    assert code_of(e) == ErrorCode.INVALID_RECORD


def test_truncated_batch_with_its_length_field_adjusted_is_corrupt() -> None:
    data = build_v2(codec=LZ4)
    cut = bytearray(data[:-5])
    struct.pack_into(">i", cut, 8, len(cut) - 12)
    with pytest.raises(BatchError) as e:
        read_produce_data(bytes(cut), 9)
    assert code_of(e) == ErrorCode.CORRUPT_MESSAGE


def test_batch_shorter_than_its_header_is_corrupt() -> None:
    data = bytearray(build_v2()[:40])
    struct.pack_into(">i", data, 8, 28)
    with pytest.raises(BatchError) as e:
        read_produce_data(bytes(data), 9)
    assert code_of(e) == ErrorCode.CORRUPT_MESSAGE


def test_entry_size_below_minimum_is_corrupt() -> None:
    data = bytearray(build_v2())
    struct.pack_into(">i", data, 8, 13)
    for version in (2, 9):
        with pytest.raises(BatchError) as e:
            read_produce_data(bytes(data), version)
        assert code_of(e) == ErrorCode.CORRUPT_MESSAGE


def test_unknown_magic_is_corrupt() -> None:
    data = bytearray(build_legacy(1, NONE))
    data[16] = 3
    with pytest.raises(BatchError) as e:
        read_produce_data(bytes(data), 2)
    assert code_of(e) == ErrorCode.CORRUPT_MESSAGE


def test_trailing_partial_entry_is_dropped_like_kafka_trims_it() -> None:
    v2 = build_v2()
    [pb] = read_produce_data(v2 + v2[:50], 9)
    assert bytes(pb.data) == v2
    legacy = build_legacy(1, NONE)
    pos = 0
    for _ in range(2):
        pos += 12 + struct.unpack_from(">i", legacy, pos + 8)[0]
    first_two = pos
    [pb] = read_produce_data(legacy[: first_two + 20], 2)
    assert pb.offset_count == 2 and bytes(pb.data) == legacy[:first_two]
    assert read_produce_data(legacy[:20], 2) == []
    assert read_produce_data(b"", 0) == []


def test_two_batches_in_produce_v3_is_invalid_record() -> None:
    data = build_v2(SAMPLE[:2]) + build_v2(SAMPLE[2:])
    with pytest.raises(BatchError) as e:
        read_produce_data(data, 3)
    assert code_of(e) == ErrorCode.INVALID_RECORD
    with pytest.raises(BatchError) as e:  # LogValidator: v2 data is one batch whatever the Produce version
        read_produce_data(data, 2)
    assert code_of(e) == ErrorCode.INVALID_RECORD


@pytest.mark.parametrize("magic", [0, 1])
def test_legacy_magic_in_produce_v3_is_invalid_record(magic: int) -> None:
    with pytest.raises(BatchError) as e:
        read_produce_data(build_legacy(magic, NONE), 3)
    assert code_of(e) == ErrorCode.INVALID_RECORD


def test_zstd_needs_produce_v7() -> None:
    data = build_v2(codec=ZSTD)
    with pytest.raises(BatchError) as e:
        read_produce_data(data, 6)
    assert code_of(e) == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    [pb] = read_produce_data(data, 7)
    assert pb.compression == ZSTD


def test_too_large_batch_is_message_too_large() -> None:
    data = build_v2()
    with pytest.raises(BatchError) as e:
        read_produce_data(data, 9, max_message_bytes=len(data) - 1)
    assert code_of(e) == ErrorCode.MESSAGE_TOO_LARGE
    assert read_produce_data(data, 9, max_message_bytes=len(data))[0].offset_count == len(SAMPLE)


def test_too_large_legacy_message_is_message_too_large() -> None:
    data = build_legacy(1, NONE)
    largest = 12 + 22 + len(SAMPLE[4][1]) + len(SAMPLE[4][2])
    with pytest.raises(BatchError) as e:
        read_produce_data(data, 2, max_message_bytes=largest - 1)
    assert code_of(e) == ErrorCode.MESSAGE_TOO_LARGE
    # the limit is per message, not for the whole set
    assert read_produce_data(data, 2, max_message_bytes=largest)[0].offset_count == len(SAMPLE)


@pytest.mark.parametrize(
    ("fmt", "offset", "value"),
    [
        (">i", 57, len(SAMPLE) + 1),  # recordsCount != lastOffsetDelta + 1
        (">i", 57, 0),  # recordsCount <= 0
        (">i", 23, -1),  # lastOffsetDelta < 0
        (">h", 21, 0x20),  # control batch from a client
    ],
)
def test_v2_batch_rules_are_invalid_record(fmt: str, offset: int, value: int) -> None:
    with pytest.raises(BatchError) as e:
        read_produce_data(patch_v2(build_v2(), fmt, offset, value), 9)
    assert code_of(e) == ErrorCode.INVALID_RECORD


def test_v2_producer_id_without_sequence_is_invalid_record() -> None:
    data = build_v2(producer_id=5, producer_epoch=0, base_sequence=0)
    read_produce_data(data, 9)
    with pytest.raises(BatchError) as e:
        read_produce_data(patch_v2(data, ">i", 53, -1), 9)
    assert code_of(e) == ErrorCode.INVALID_RECORD


def test_v2_nonzero_base_offset_from_client_is_invalid_record() -> None:
    with pytest.raises(BatchError) as e:
        read_produce_data(patch_v2(build_v2(), ">q", 0, 7, fix_crc=False), 9)
    assert code_of(e) == ErrorCode.INVALID_RECORD


def test_v2_unknown_compression_id_is_unsupported() -> None:
    with pytest.raises(BatchError) as e:
        read_produce_data(patch_v2(build_v2(), ">h", 21, 5), 9)
    assert code_of(e) == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE


def test_mixed_legacy_magics_are_invalid_record() -> None:
    with pytest.raises(BatchError) as e:
        read_produce_data(build_legacy(0, NONE, SAMPLE[:1]) + build_legacy(1, NONE, SAMPLE[1:2]), 2)
    assert code_of(e) == ErrorCode.INVALID_RECORD


def test_two_compressed_legacy_wrappers_are_invalid_record() -> None:
    with pytest.raises(BatchError) as e:
        read_produce_data(build_legacy(1, GZIP, SAMPLE[:2]) + build_legacy(1, GZIP, SAMPLE[2:]), 2)
    assert code_of(e) == ErrorCode.INVALID_RECORD


def test_zstd_in_a_legacy_wrapper_is_invalid_record() -> None:
    data = bytearray(build_legacy(1, GZIP))
    data[17] = (data[17] & ~0x07) | ZSTD
    fix_legacy_crc(data)
    with pytest.raises(BatchError) as e:
        read_produce_data(bytes(data), 2)
    assert code_of(e) == ErrorCode.INVALID_RECORD


def test_nested_compression_is_invalid_record() -> None:
    inner = build_legacy(1, GZIP, SAMPLE[:2])  # a compressed wrapper inside another one
    with pytest.raises(BatchError) as e:
        read_produce_data(bytes(make_wrapper(1, inner)), 2)
    assert code_of(e) == ErrorCode.INVALID_RECORD


@pytest.mark.parametrize("codec", [SNAPPY, LZ4])
def test_missing_codec_library_is_unsupported_for_magic0(monkeypatch: pytest.MonkeyPatch, codec: int) -> None:
    monkeypatch.setattr(compression, "_codecs", {codec: None})
    with pytest.raises(BatchError) as e:
        read_produce_data(build_legacy(0, codec), 1)
    assert code_of(e) == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE


def test_batch_error_carries_code_and_message() -> None:
    err = BatchError(ErrorCode.INVALID_RECORD, "why")
    assert err.code == ErrorCode.INVALID_RECORD and err.message == "why" and "why" in str(err)


# --- assign_offsets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", V2_CODECS)
def test_assign_offsets_v2(codec: int) -> None:
    data = build_v2(codec=codec)
    [pb] = read_produce_data(data, 9)
    pb.assign_offsets(1_000_000, 12)
    assert kp_read(pb.data) == expected(SAMPLE, 1_000_000)
    batch = RecordBatch(pb.data)
    assert batch.partition_leader_epoch == 12 and batch.last_offset == 1_000_000 + len(SAMPLE) - 1
    batch.validate()
    assert pb.data[16:] == data[16:]


@pytest.mark.parametrize("magic", [0, 1])
def test_assign_offsets_legacy_uncompressed(magic: int) -> None:
    data = build_legacy(magic, NONE)
    [pb] = read_produce_data(data, 2)
    pb.assign_offsets(500, 3)
    assert kp_read(pb.data) == expected(SAMPLE, 500, magic=magic)
    assert [e[:2] for e in iter_stored(pb.data)] == [(500 + i, 500 + i) for i in range(len(SAMPLE))]


@pytest.mark.parametrize("codec", LEGACY_COMPRESSED)
def test_assign_offsets_magic1_compressed_rewrites_only_the_wrapper(codec: int) -> None:
    data = build_legacy(1, codec)
    [pb] = read_produce_data(data, 2)
    pb.assign_offsets(700, 0)
    assert kp_read(pb.data) == expected(SAMPLE, 700, magic=1)
    (wrapper,) = kp_batches(pb.data)
    assert wrapper.base_offset == 700 + len(SAMPLE) - 1
    # compressed payload untouched (no recompression): same bytes after the 26-byte header
    assert pb.data[26:] == data[26:]
    # as Kafka's in-place path, the CreateTime wrapper timestamp becomes the largest inner timestamp
    assert struct.unpack_from(">q", pb.data, 18)[0] == max(r[0] for r in SAMPLE)


@pytest.mark.parametrize("codec", LEGACY_COMPRESSED)
def test_assign_offsets_magic0_compressed_renumbers_absolute_inner_offsets(codec: int) -> None:
    data = build_legacy(0, codec)
    [pb] = read_produce_data(data, 0)
    pb.assign_offsets(12345, 0)
    assert kp_read(pb.data) == expected(SAMPLE, 12345, magic=0)
    (wrapper,) = kp_batches(pb.data)
    assert wrapper.base_offset == 12345 + len(SAMPLE) - 1
    assert list(iter_stored(pb.data)) == [(12345, 12345 + len(SAMPLE) - 1, -1)]
    # a second assignment (e.g. a retry) renumbers again
    pb.assign_offsets(9, 0)
    assert [r[0] for r in kp_read(pb.data)] == list(range(9, 9 + len(SAMPLE)))


@pytest.mark.parametrize("codec", LEGACY_COMPRESSED)
def test_assign_offsets_magic1_with_bad_inner_offsets_is_rebuilt(codec: int) -> None:
    # Older clients wrote absolute (or all-zero) inner offsets in magic 1; Kafka rebuilds rather than refusing.
    data = build_legacy(1, codec, offsets=[40, 41, 42, 43, 44])
    [pb] = read_produce_data(data, 2)
    pb.assign_offsets(3, 0)
    assert kp_read(pb.data) == expected(SAMPLE, 3, magic=1)


def test_assign_offsets_keeps_legacy_wrapper_key() -> None:
    data = make_wrapper(0, build_legacy(0, NONE), key=b"wk")
    [pb] = read_produce_data(bytes(data), 0)
    pb.assign_offsets(100, 0)
    assert pb.data[18:24] == struct.pack(">i", 2) + b"wk"
    assert [r[0] for r in kp_read(pb.data)] == list(range(100, 100 + len(SAMPLE)))


# --- set_log_append_time ------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", V2_CODECS)
def test_set_log_append_time_v2(codec: int) -> None:
    [pb] = read_produce_data(build_v2(codec=codec), 9)
    pb.assign_offsets(10, 1)
    pb.set_log_append_time(1_800_000_000_000)
    (batch,) = kp_batches(pb.data)
    assert batch.timestamp_type == 1 and batch.max_timestamp == 1_800_000_000_000
    assert kp_read(pb.data) == expected(SAMPLE, 10, ts_override=1_800_000_000_000)
    RecordBatch(pb.data).validate()
    assert (pb.first_timestamp, pb.max_timestamp) == (1_800_000_000_000, 1_800_000_000_000)
    assert offset_for_timestamp(pb.data, 1_800_000_000_000) == 10


@pytest.mark.parametrize("codec", LEGACY_CODECS)
def test_set_log_append_time_magic1(codec: int) -> None:
    [pb] = read_produce_data(build_legacy(1, codec), 2)
    pb.set_log_append_time(1_800_000_000_000)
    pb.assign_offsets(20, 0)
    for batch in kp_batches(pb.data):
        assert batch.timestamp_type == 1
    assert kp_read(pb.data) == expected(SAMPLE, 20, magic=1, ts_override=1_800_000_000_000)


def test_set_log_append_time_magic0_is_a_noop() -> None:
    data = build_legacy(0, NONE)
    [pb] = read_produce_data(data, 0)
    pb.set_log_append_time(1_800_000_000_000)
    assert bytes(pb.data) == data and pb.max_timestamp == -1


# --- offset_for_timestamp, iter_stored, iter_records ------------------------------------------------


@pytest.mark.parametrize("codec", V2_CODECS)
def test_offset_for_timestamp_inside_a_v2_batch(codec: int) -> None:
    # SAMPLE timestamps: ...000, ...500, ...200, ...1000, ...900 (not monotonic)
    [pb] = read_produce_data(build_v2(codec=codec), 9)
    pb.assign_offsets(100, 0)
    t0 = 1_700_000_000_000
    assert offset_for_timestamp(pb.data, t0 - 5) == 100
    assert offset_for_timestamp(pb.data, t0) == 100
    assert offset_for_timestamp(pb.data, t0 + 1) == 101  # first record with ts >= t, not the closest one
    assert offset_for_timestamp(pb.data, t0 + 600) == 103
    assert offset_for_timestamp(pb.data, t0 + 1000) == 103
    assert offset_for_timestamp(pb.data, t0 + 1001) is None


@pytest.mark.parametrize("codec", LEGACY_CODECS)
def test_offset_for_timestamp_in_magic1(codec: int) -> None:
    [pb] = read_produce_data(build_legacy(1, codec), 2)
    pb.assign_offsets(100, 0)
    t0 = 1_700_000_000_000
    assert offset_for_timestamp(pb.data, t0 + 300) == 101
    assert offset_for_timestamp(pb.data, t0 + 950) == 103
    assert offset_for_timestamp(pb.data, t0 + 2000) is None


def test_offset_for_timestamp_skips_earlier_batches_and_ignores_magic0() -> None:
    chunk = bytearray()
    base = 0
    for data, version in ((build_legacy(0, NONE, SAMPLE[:2]), 0), (build_v2(SAMPLE[:2]), 9), (build_v2(SAMPLE), 9)):
        [pb] = read_produce_data(data, version)
        pb.assign_offsets(base, 0)
        base += pb.offset_count
        chunk += pb.data
    assert offset_for_timestamp(chunk, 0) == 2  # magic 0 has no timestamps
    assert offset_for_timestamp(chunk, 1_700_000_000_600) == 7  # second v2 batch, its 4th record
    assert offset_for_timestamp(bytes(chunk), 1_700_000_009_000) is None


def _stored_mix() -> tuple[bytearray, list[tuple[int, int, int]], int]:
    """A stored chunk mixing formats, as a log that saw several clients would hold it."""
    chunk = bytearray()
    want = []
    base = 0
    parts = [
        (build_v2(SAMPLE[:3]), 9),
        (build_legacy(1, NONE, SAMPLE[:2]), 2),
        (build_legacy(1, SNAPPY, SAMPLE), 2),
        (build_legacy(0, GZIP, SAMPLE[:3]), 0),
        (build_legacy(0, NONE, SAMPLE[:1]), 0),
        (build_v2(SAMPLE, ZSTD), 9),
        (build_legacy(0, LZ4, SAMPLE[:2]), 0),
    ]
    for data, version in parts:
        [pb] = read_produce_data(data, version)
        pb.assign_offsets(base, 4)
        if pb.compression or pb.magic == 2:
            want.append((base, base + pb.offset_count - 1, pb.max_timestamp))
        else:
            ts = [r[0] if pb.magic else -1 for r in SAMPLE]
            want += [(base + i, base + i, ts[i]) for i in range(pb.offset_count)]
        base += pb.offset_count
        chunk += pb.data
    return chunk, want, base


def test_iter_stored_over_a_mix_of_formats() -> None:
    chunk, want, _ = _stored_mix()
    assert list(iter_stored(chunk)) == want
    assert list(iter_stored(memoryview(chunk))) == want
    assert list(iter_stored(bytes(chunk) + bytes(chunk[:30]))) == want  # trailing partial entry ignored


def test_iter_records_and_kafka_python_agree_on_the_mix() -> None:
    chunk, _, end = _stored_mix()
    ours = [(r.offset, r.key, r.value) for r in iter_records(chunk)]
    theirs = [(o, k, v) for o, _ts, k, v, _h in kp_read(chunk)]
    assert ours == theirs
    assert [o for o, _, _ in ours] == list(range(end))


def test_iter_stored_on_garbage_is_corrupt() -> None:
    with pytest.raises(BatchError) as e:
        list(iter_stored(b"\x00" * 8 + struct.pack(">i", 3) + b"\x00" * 20))
    assert code_of(e) == ErrorCode.CORRUPT_MESSAGE


# --- properties --------------------------------------------------------------------------------------

_keys = st.none() | st.binary(max_size=40)
_headers = st.lists(st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=8)), max_size=3)
_ts = st.integers(min_value=0, max_value=2**41)


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(st.tuples(_ts, _keys, _keys, _headers), min_size=1, max_size=12),
    codec=st.sampled_from(V2_CODECS),
    base=st.integers(min_value=0, max_value=2**62),
    epoch=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_property_v2_roundtrip_through_kafka_python(records, codec, base, epoch) -> None:
    data = build_v2(records, codec)
    [pb] = read_produce_data(data, 9)
    pb.assign_offsets(base, epoch)
    assert kp_read(pb.data) == expected(records, base)
    assert list(iter_stored(pb.data)) == [(base, base + len(records) - 1, max(r[0] for r in records))]
    target = records[len(records) // 2][0]
    want = next(base + i for i, r in enumerate(records) if r[0] >= target)
    assert offset_for_timestamp(pb.data, target) == want


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(st.tuples(_ts, _keys, _keys, st.just([])), min_size=1, max_size=12),
    magic=st.sampled_from([0, 1]),
    codec=st.sampled_from(LEGACY_CODECS),
    base=st.integers(min_value=0, max_value=2**62),
)
def test_property_legacy_roundtrip_through_kafka_python(records, magic, codec, base) -> None:
    data = build_legacy(magic, codec, records)
    [pb] = read_produce_data(data, magic + 1)
    assert pb.offset_count == len(records)
    pb.assign_offsets(base, 0)
    assert kp_read(pb.data) == expected(records, base, magic=magic)
    stored = list(iter_stored(pb.data))
    assert stored[0][0] == base and stored[-1][1] == base + len(records) - 1


def test_produced_batch_is_a_dataclass_with_the_documented_fields() -> None:
    names = [f for f in ProducedBatch.__dataclass_fields__ if not f.startswith("_")]
    assert names == [
        "data",
        "magic",
        "offset_count",
        "first_timestamp",
        "max_timestamp",
        "producer_id",
        "producer_epoch",
        "base_sequence",
        "is_transactional",
        "compression",
    ]


# --- streaming walks, caps and the real max timestamp ---------------------------------------------


def _raw_v2(payload: bytes, count: int, codec: int = NONE, *, base_ts: int = 0, max_ts: int = 0) -> bytes:
    """A v2 batch around `payload` (records, compressed with `codec` if any), written by hand."""
    after_crc = struct.pack(">hiqqqhii", codec, count - 1, base_ts, max_ts, -1, -1, -1, count) + payload
    head = struct.pack(">qiib", 0, 9 + len(after_crc), -1, 2)
    return head + struct.pack(">I", crc32c.crc32c(after_crc)) + after_crc


def _raw_record(key: bytes | None, value: bytes, ts_delta: int = 0, offset_delta: int = 0) -> bytes:
    k = _zz(-1) if key is None else _zz(len(key)) + key
    body = b"\x00" + _zz(ts_delta) + _zz(offset_delta) + k + _zz(len(value)) + value + _zz(0)
    return _zz(len(body)) + body


def _zstd_stream(*parts: bytes, zeros: int = 0, tail: bytes = b"") -> bytes:
    import zstandard

    c = zstandard.ZstdCompressor().compressobj()
    out = [c.compress(p) for p in parts]
    block = bytes(1 << 20)
    out += [c.compress(block) for _ in range(zeros >> 20)]
    out += [c.compress(tail), c.flush()]
    return b"".join(out)


def test_scan_replaces_the_max_timestamp_librdkafka_writes_for_records_without_one() -> None:
    # librdkafka, records with timestamp -1: baseTimestamp -1, deltas 0, maxTimestamp 0. Kafka stores -1.
    data = _raw_v2(b"".join(_raw_record(b"k", b"v", 0, i) for i in range(3)), 3, base_ts=-1, max_ts=0)
    [pb] = read_produce_data(data, 9)
    assert pb.max_timestamp == 0 and pb.needs_scan(compacted=False)
    assert pb.scan(compacted=False) == []
    assert pb.max_timestamp == -1
    stored = RecordBatch(pb.data)
    stored.validate()  # CRC-32C recomputed
    assert stored.max_timestamp == -1 and stored.base_timestamp == -1
    assert [r.timestamp for r in stored.records()] == [-1, -1, -1]


@pytest.mark.parametrize("codec", V2_CODECS)
def test_scan_takes_the_records_largest_timestamp_when_the_header_is_impossible(codec: int) -> None:
    data = bytearray(build_v2(codec=codec))
    struct.pack_into(">q", data, 35, SAMPLE[0][0] - 1)  # maxTimestamp below baseTimestamp
    struct.pack_into(">I", data, 17, crc32c.crc32c(bytes(data[21:])))
    [pb] = read_produce_data(bytes(data), 9)
    assert pb.needs_scan(compacted=False)
    pb.scan(compacted=False)
    assert pb.max_timestamp == RecordBatch(pb.data).max_timestamp == max(r[0] for r in SAMPLE)
    RecordBatch(pb.data).validate()


@pytest.mark.parametrize("codec", V2_CODECS)
def test_a_consistent_header_is_trusted_and_compacted_topics_get_their_keyless_records(codec: int) -> None:
    [pb] = read_produce_data(build_v2(codec=codec), 9)
    assert not pb.needs_scan(compacted=False)
    assert pb.needs_scan(compacted=True)
    assert pb.scan(compacted=True) == [1]  # SAMPLE's record 1 has no key
    assert pb.max_timestamp == max(r[0] for r in SAMPLE)


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("codec", LEGACY_CODECS)
def test_scan_of_legacy_sets_finds_keyless_records(magic: int, codec: int) -> None:
    [pb] = read_produce_data(build_legacy(magic, codec), magic + 1)
    assert pb.scan(compacted=True) == [1]


def test_record_above_the_cap_is_invalid_record_without_inflating_it() -> None:
    payload = _zstd_stream(_zz(64 << 20) + b"\x00" + _zz(0) + _zz(0) + _zz(1) + b"k")  # 64 MiB declared
    data = _raw_v2(payload, 1, ZSTD)
    with pytest.raises(BatchError) as e:
        list(RecordBatch(data).record_infos(max_record_bytes=1 << 20))
    assert code_of(e) == ErrorCode.INVALID_RECORD
    assert "67108864 exceeds the configured maximum record size of 1048576" in str(e.value)
    [pb] = read_produce_data(data, 9)
    assert not pb.needs_scan(compacted=False)  # Kafka's default cap: nothing to check
    assert pb.needs_scan(compacted=False, max_record_bytes=1 << 20)  # a lower cap: every compressed batch
    with pytest.raises(BatchError) as e:
        pb.scan(compacted=False, max_record_bytes=1 << 20)
    assert code_of(e) == ErrorCode.INVALID_RECORD


@pytest.mark.parametrize(
    ("body", "count", "message"),
    [
        (_raw_record(b"k", b"v") + b"\x00" * 100, 1, "records still remaining"),
        (_raw_record(b"k", b"v"), 2, "premature EOF"),
        (_zz(-3), 1, "is negative"),
        (_zz(40) + b"\x00" + _zz(0) + _zz(0) + _zz(1000) + b"k" * 36, 1, "runs past the end of its record"),
        (_zz(6) + b"\x00" + _zz(0) + _zz(0) + _zz(-1) + _zz(-1) + _zz(-5), 1, "invalid number of record headers"),
    ],
)
@pytest.mark.parametrize("codec", [NONE, ZSTD])
def test_records_that_do_not_parse_are_invalid_record(body: bytes, count: int, message: str, codec: int) -> None:
    data = _raw_v2(_zstd_stream(body) if codec else body, count, codec)
    with pytest.raises(BatchError) as e:
        list(RecordBatch(data).record_infos())
    assert code_of(e) == ErrorCode.INVALID_RECORD
    assert message in str(e.value)


@pytest.mark.parametrize("codec", [NONE, ZSTD])
@pytest.mark.parametrize("value_size", [10, 300_000])  # a record held in one buffer, and one streamed past
def test_the_two_record_walks_agree(codec: int, value_size: int) -> None:
    records = [_raw_record(b"k", b"v" * value_size, 7, 0), _raw_record(None, b"w" * value_size, 3, 1)]
    data = _raw_v2(_zstd_stream(*records) if codec else b"".join(records), 2, codec, base_ts=100, max_ts=107)
    assert list(RecordBatch(data).record_infos()) == [rec.RecordInfo(0, 107, True), rec.RecordInfo(1, 103, False)]
    assert [(r.offset, r.timestamp, r.key) for r in RecordBatch(data).records()] == [(0, 107, b"k"), (1, 103, None)]
    # a record declaring 3 bytes more than its fields hold: both walks refuse it
    fields = b"\x00" + _zz(7) + _zz(0) + _zz(1) + b"k" + _zz(value_size) + b"v" * value_size + _zz(0)
    body = _zz(len(fields) + 3) + fields + b"\x00\x00\x00"
    data = _raw_v2(_zstd_stream(body) if codec else body, 1, codec)
    for walk in (RecordBatch(data).record_infos, RecordBatch(data).records):
        with pytest.raises(BatchError) as e:
            list(walk())
        assert code_of(e) == ErrorCode.INVALID_RECORD
        assert "expected to read" in str(e.value)


def test_walking_a_batch_that_inflates_to_256_mib_holds_one_chunk() -> None:
    import tracemalloc

    size = 256 << 20
    fields = b"\x00" + _zz(0) + _zz(0) + _zz(1) + b"k" + _zz(size)
    head = _zz(len(fields) + size + 1) + fields
    data = _raw_v2(_zstd_stream(head, zeros=size, tail=_zz(0)), 1, ZSTD, base_ts=5, max_ts=5)
    assert len(data) < 64 * 1024
    tracemalloc.start()
    try:
        infos = list(RecordBatch(data).record_infos())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert infos == [rec.RecordInfo(0, 5, True)]
    assert peak < 8 << 20
    assert offset_for_timestamp(data, 5) == 0


def test_snappy_block_declaring_an_impossible_length_is_corrupt() -> None:
    forged = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + b"\x00" * 10  # 4 GiB declared, 15 bytes
    data = _raw_v2(forged, 1, SNAPPY)
    with pytest.raises(BatchError) as e:
        list(RecordBatch(data).record_infos())
    assert code_of(e) == ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize("codec", [GZIP, LZ4])
def test_truncated_compressed_stream_is_refused(codec: int) -> None:
    data = bytearray(build_v2(codec=codec))
    cut = bytes(data[: len(data) - 8])
    cut = cut[:8] + struct.pack(">i", len(cut) - 12) + cut[12:]
    with pytest.raises(BatchError) as e:
        list(RecordBatch(cut).records())
    assert code_of(e) in (ErrorCode.CORRUPT_MESSAGE, ErrorCode.INVALID_RECORD)


def test_legacy_inner_set_inflating_past_the_cap_is_invalid_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(legacy, "LEGACY_INNER_MAX_BYTES", 64 * 1024)
    records = [(SAMPLE[0][0], b"k", b"v" * 10_000, []) for _ in range(10)]
    with pytest.raises(BatchError) as e:
        read_produce_data(build_legacy(1, GZIP, records), 2)
    assert code_of(e) == ErrorCode.INVALID_RECORD


def test_legacy_gzip_of_zeros_is_corrupt_after_its_first_chunk() -> None:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    value = b"".join([c.compress(bytes(1 << 20)) for _ in range(200)] + [c.flush()])
    body = struct.pack(">bbq", 1, GZIP, 0) + struct.pack(">i", -1) + struct.pack(">i", len(value)) + value
    data = struct.pack(">qiI", 0, len(body) + 4, zlib.crc32(body)) + body
    assert len(data) < 1 << 20
    with pytest.raises(BatchError) as e:
        read_produce_data(data, 2)
    assert code_of(e) == ErrorCode.CORRUPT_MESSAGE
    assert "minimum record overhead" in str(e.value)


def test_produce_data_in_place_stays_in_a_writable_frame_and_copies_a_read_only_one() -> None:
    """The broker's request frames that it copied out of the receive buffer are its own (a bytearray):
    a batch in one is stored where it lies, patched there; one in read-only bytes is copied."""
    frame = bytearray(b"header" + build_v2())
    [copied] = read_produce_data(memoryview(bytes(frame))[6:], 3, in_place=True)
    assert isinstance(copied.data, bytearray)
    [pb] = read_produce_data(memoryview(frame)[6:], 3, in_place=True)
    assert isinstance(pb.data, memoryview) and pb.data.obj is frame
    pb.assign_offsets(1000, 7)
    assert RecordBatch(frame[6:]).base_offset == 1000  # patched in the frame itself
    RecordBatch(pb.data).validate()
    assert RecordBatch(copied.data).base_offset == 0
