"""Control batches: the COMMIT and ABORT markers a transaction coordinator writes.

A marker is a magic-2 batch with the transactional and control attributes set,
the producer's id and epoch, no sequence (-1), and one record whose key is
``version int16 (0), type int16 (0 = abort, 1 = commit)`` and whose value is
``version int16 (0), coordinator_epoch int32``. The broker writes them; clients
only read them (and skip them). `control_batch` builds one, `read_marker`
reads one back from a stored batch.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..primitives import zigzag_encode
from .batch import RecordBatch
from .layout import _ATTRIBUTES, _CONTROL_BIT, _TRANSACTIONAL_BIT

ABORT = 0
COMMIT = 1

_HEADER = struct.Struct(">qiibIhiqqqhii")  # base offset .. records count
_KEY = struct.Struct(">hh")
_VALUE = struct.Struct(">hi")


class Marker(NamedTuple):
    """What a control batch says: which producer's transaction ended, and how."""

    producer_id: int
    producer_epoch: int
    commit: bool
    coordinator_epoch: int


def _varint(value: int) -> bytes:
    out = bytearray()
    v = zigzag_encode(value, 32)
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def control_batch(
    producer_id: int,
    producer_epoch: int,
    *,
    commit: bool,
    coordinator_epoch: int,
    timestamp_ms: int,
    base_offset: int = 0,
    leader_epoch: int = -1,
) -> bytes:
    """One marker batch, CRC computed; the log patches base offset and leader epoch on append as for any batch."""
    from crc32c import crc32c

    key = _KEY.pack(0, COMMIT if commit else ABORT)
    value = _VALUE.pack(0, coordinator_epoch)
    body = (
        b"\x00"  # record attributes
        + _varint(0)  # timestamp delta
        + _varint(0)  # offset delta
        + _varint(len(key))
        + key
        + _varint(len(value))
        + value
        + _varint(0)  # no headers
    )
    record = _varint(len(body)) + body
    attributes = _TRANSACTIONAL_BIT | _CONTROL_BIT
    size = _HEADER.size + len(record)
    header = bytearray(
        _HEADER.pack(
            base_offset,
            size - 12,  # batch length: after base offset and the length itself
            leader_epoch,
            2,
            0,  # crc, set below
            attributes,
            0,  # last offset delta
            timestamp_ms,
            timestamp_ms,
            producer_id,
            producer_epoch,
            -1,  # base sequence
            1,  # one record
        )
    )
    data = bytes(header) + record
    crc = crc32c(data[_ATTRIBUTES:])
    struct.pack_into(">I", header, 17, crc)
    return bytes(header) + record


def read_marker(batch: RecordBatch) -> Marker | None:
    """The marker a control batch carries; None for a data batch or a control record of another type."""
    if not batch.is_control:
        return None
    for record in batch.records():
        if record.key is None or len(record.key) < _KEY.size or record.value is None or len(record.value) < _VALUE.size:
            return None
        _version, kind = _KEY.unpack_from(record.key)
        if kind not in (ABORT, COMMIT):
            return None
        _v, coordinator_epoch = _VALUE.unpack_from(record.value)
        return Marker(batch.producer_id, batch.producer_epoch, kind == COMMIT, coordinator_epoch)
    return None
