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

Individual v2 records are not decoded on fetch, nor on produce in the common
case: the only pass over a v2 batch's bytes is then the CRC-32C, done by the
``crc32c`` C extension. `ProducedBatch.scan` walks them when a feature needs it
(keys on a compacted topic) or the header's maxTimestamp cannot be right;
`first_record_at` walks one batch for a timestamp lookup. ``RecordBatch.records()``
and `iter_records` decode records whole, for tests and tools.

Compressed data is never inflated whole on the broker's paths: codecs are read
as streams, a chunk (`_CHUNK`) at a time, and walks skip keys and values
without holding them (`RecordBatch.record_infos`), so memory stays bounded
whatever a batch inflates to (a 30 KB zstd batch can hold a gigabyte). Each
record is checked against max.decompressed.message.bytes (`MAX_RECORD_BYTES` by
default, Kafka's: no cap) as Kafka 4.4 does; a legacy wrapper's inner set, which
must be held to be renumbered, is capped at `LEGACY_INNER_MAX_BYTES`.

Layouts (see CLIENTS.md 6.3-6.5 in the shared protocol notes): every entry,
batch or legacy message, starts with ``offset int64, size int32`` and carries
its magic at byte 16, which is how a reader tells the formats apart.

Compression codecs other than gzip are optional imports: ``cramjam`` or
``python-snappy`` for snappy, ``lz4`` (or ``cramjam``) for lz4, ``zstandard``
(or ``cramjam``) for zstd. A codec whose library is missing is reported as
``UNSUPPORTED_COMPRESSION_TYPE`` only when it must actually run.

The package's modules: `layout` (offsets of fields, errors), `compression`
(codecs, streaming), `stream` (record bytes read with bounded memory), `batch`
(magic-2 records and `RecordBatch`), `legacy` (magic 0/1 message sets),
`produce` (`read_produce_data`, `ProducedBatch`), `stored` (reading stored
data back) and `control` (transaction markers).
"""

from __future__ import annotations

from .batch import Record, RecordBatch, RecordInfo
from .compression import LEGACY_INNER_MAX_BYTES, MAX_RECORD_BYTES
from .layout import LOG_OVERHEAD, BatchError
from .produce import ProducedBatch, inflates_on_read, read_produce_data
from .stored import first_record_at, iter_records, iter_stored, offset_for_timestamp, verify_stored

__all__ = [
    "LEGACY_INNER_MAX_BYTES",
    "LOG_OVERHEAD",
    "MAX_RECORD_BYTES",
    "BatchError",
    "ProducedBatch",
    "Record",
    "RecordBatch",
    "RecordInfo",
    "first_record_at",
    "inflates_on_read",
    "iter_records",
    "iter_stored",
    "offset_for_timestamp",
    "read_produce_data",
    "verify_stored",
]
