"""Record batches for protocol-level tests, built as a producer builds them (kafka-python's builder).

Plus a few deliberate corruptions (a wrong CRC, a wrong record count, a
compression type a request version may not carry) with the CRC fixed up
where the test needs only the one fault.
"""

from __future__ import annotations

import struct

from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.util import calc_crc32c

#: compression codes in a v2 batch's attributes
NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4

# offsets of fields in a v2 record batch header
_CRC = 17
_ATTRIBUTES = 21
_RECORD_COUNT = 57


def batch(
    n: int = 3,
    *,
    producer_id: int = -1,
    epoch: int = -1,
    sequence: int = -1,
    ts: int | list[int] = 1_700_000_000_000,
    value_size: int = 10,
    compression: int = NONE,
    transactional: bool = False,
) -> bytes:
    """A v2 batch of `n` records keyed k0.., timestamps `ts`+i (or the list given; -1 allowed)."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=compression,
        is_transactional=transactional,
        producer_id=producer_id,
        producer_epoch=epoch,
        base_sequence=sequence,
        batch_size=1 << 30,
    )
    stamps = ts if isinstance(ts, list) else [ts + i for i in range(n)]
    for i, stamp in enumerate(stamps):
        builder.append(i, timestamp=stamp, key=f"k{i}".encode(), value=b"v" * value_size, headers=[])
    return bytes(builder.build())


def fix_crc(data: bytes) -> bytes:
    """`data` (one v2 batch) with its CRC recomputed."""
    crc = calc_crc32c(data[_ATTRIBUTES:])
    return data[:_CRC] + struct.pack(">I", crc) + data[_CRC + 4 :]


def bad_crc(data: bytes) -> bytes:
    """`data` with a CRC that does not match its contents."""
    crc = struct.unpack_from(">I", data, _CRC)[0] ^ 0xFFFF
    return data[:_CRC] + struct.pack(">I", crc) + data[_CRC + 4 :]


def with_record_count(data: bytes, count: int) -> bytes:
    """`data` claiming `count` records (CRC valid)."""
    return fix_crc(data[:_RECORD_COUNT] + struct.pack(">i", count) + data[_RECORD_COUNT + 4 :])


def with_compression(data: bytes, codec: int) -> bytes:
    """`data` whose attributes name compression `codec` (records unchanged; CRC valid)."""
    attrs = struct.unpack_from(">h", data, _ATTRIBUTES)[0]
    attrs = (attrs & ~0x7) | codec
    return fix_crc(data[:_ATTRIBUTES] + struct.pack(">h", attrs) + data[_ATTRIBUTES + 2 :])


def legacy_message(value: bytes = b"v", *, magic: int = 1, ts: int = 1_700_000_000_000) -> bytes:
    """One uncompressed message set entry of the old format (magic 0 or 1), at offset 0."""
    import zlib

    body = struct.pack(">bb", magic, 0)
    if magic == 1:
        body += struct.pack(">q", ts)
    body += struct.pack(">i", -1) + struct.pack(">i", len(value)) + value
    message = struct.pack(">I", zlib.crc32(body)) + body
    return struct.pack(">qi", 0, len(message)) + message
