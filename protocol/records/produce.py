"""What a Produce request's records get: Kafka's checks (`read_produce_data`) and `ProducedBatch`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ErrorCode
from .batch import RecordBatch
from .compression import MAX_RECORD_BYTES, _require_compressor, compress, decompress_at_most
from .layout import (
    _ATTRIBUTES,
    _BASE_OFFSET,
    _BATCH_LENGTH,
    _COMPRESSION_MASK,
    _CONTROL_BIT,
    _CRC,
    _I32,
    _I64,
    _LEADER_EPOCH,
    _LEGACY_KEY_V0,
    _LEGACY_TIMESTAMP,
    _MAGIC_OFFSET,
    _NO_TIMESTAMP,
    _TIMESTAMP_TYPE_BIT,
    _TRANSACTIONAL_BIT,
    _U32,
    LOG_OVERHEAD,
    BatchError,
    Buffer,
    _corrupt,
    _invalid,
)
from .legacy import (
    _as_view,
    _Inner,
    _inner_messages,
    _legacy_crc,
    _legacy_inner,
    _parse_legacy,
    _scan_entries,
    _set_legacy_timestamp,
)
from .stored import check_entry, iter_records

#: where a v2 batch's records start (after its 61-byte header)
_RECORDS_START = 61

# --- produce ---------------------------------------------------------------------


@dataclass
class ProducedBatch:
    """One unit the broker appends: a v2 batch, or a legacy (magic 0/1) message set from one produce partition."""

    data: bytearray | memoryview  # the bytes as sent, patchable: a copy, or a view of the broker's own frame
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

    def needs_scan(self, compacted: bool, max_record_bytes: int = MAX_RECORD_BYTES) -> bool:
        """Whether `scan` has work to do before the batch is appended.

        For a compacted topic, always (records without a key are refused). For a compressed v2
        batch when the topic sets max.decompressed.message.bytes below Kafka's default (Kafka
        enforces it where it decompresses, which it does for every compressed batch). Otherwise
        only for a v2 CreateTime batch whose header cannot hold its records' largest timestamp: a
        negative baseTimestamp, or a maxTimestamp below it (librdkafka writes baseTimestamp -1
        and maxTimestamp 0 when its records carry no timestamp; Kafka would store -1, and a
        stored 0 makes retention delete the data at once). Walking every batch, as Kafka's
        LogValidator does, would cost the produce path about 1.5 us a record in Python against
        0.02 us for the CRC; a header that is consistent is trusted instead.
        """
        if compacted or (self.inflates and max_record_bytes < MAX_RECORD_BYTES):
            return True
        if self.magic != 2 or self.data[_ATTRIBUTES + 1] & _TIMESTAMP_TYPE_BIT:
            return False
        return self.first_timestamp < 0 or self.max_timestamp < self.first_timestamp

    @property
    def inflates(self) -> bool:
        """Whether `scan` would decompress (v2 compressed): work to keep off the event loop."""
        return self.magic == 2 and self.compression != 0

    def scan(self, *, compacted: bool, max_record_bytes: int = MAX_RECORD_BYTES) -> list[int]:
        """Walk the records as Kafka's LogValidator does; return the indexes of keyless records if `compacted`.

        v2: every record is checked (see `_v2_records`: INVALID_RECORD for records that do not
        parse, exceed `max_record_bytes`, or fall short of or overrun the declared count), a
        chunk of decompressed data at a time with keys and values skipped, so memory stays
        bounded whatever the batch inflates to. A CreateTime batch's maxTimestamp becomes its
        records' largest timestamp (-1 if none has one), header and CRC-32C rewritten, as
        Kafka's ``setMaxTimestamp``. Legacy sets were walked by `read_produce_data`; only
        their keys are looked at here.
        """
        keyless: list[int] = []
        if self.magic == 2:
            b = RecordBatch(self.data)
            real_max = _NO_TIMESTAMP
            for i, info in enumerate(b.record_infos(max_record_bytes)):
                if not info.has_key:
                    keyless.append(i)
                if info.timestamp > real_max:
                    real_max = info.timestamp
            if not b.timestamp_type and real_max != b.max_timestamp:
                b.set_max_timestamp(real_max)
                self.max_timestamp = real_max
        elif self._inner is not None:
            keyless = [i for i, m in enumerate(_inner_messages(self._inner.blob, self._inner.end)) if m.key_pos < 0]
        else:
            keyless = [i for i, r in enumerate(iter_records(self.data)) if r.key is None]
        return keyless if compacted else []

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
        for i, m in enumerate(_inner_messages(inner.blob, inner.end)):
            _I64.pack_into(blob, m.pos, base_offset + i if self.magic == 0 else i)
        compressed = compress(self.compression, bytes(blob))
        wrapper = _parse_legacy(self.data, 0, len(self.data))
        head = self.data[: wrapper.value_len_pos]
        new = bytearray(head)
        new += _I32.pack(len(compressed))
        new += compressed
        _I32.pack_into(new, 8, len(new) - LOG_OVERHEAD)
        _U32.pack_into(new, 12, _legacy_crc(new, 0, len(new)))
        self.data = new
        # The new inner set is what is stored now; keep the view consistent for a second call.
        first = base_offset if self.magic == 0 else 0
        self._inner = inner._replace(
            blob=bytes(blob), first_offset=first, last_offset=first + inner.count - 1, sequential=self.magic == 1
        )
        if self.magic == 1:
            self._rebuild = False  # inner offsets are 0..n-1 now

    def recompress(self, codec_id: int, max_message_bytes: int, max_inflated_bytes: int) -> None:
        """Store the v2 batch's records compressed with `codec_id` (0: none), as Kafka does for a topic whose
        compression.type is not the producer's: the records' bytes are the same under any compression, so only
        the records section, the compression bits, the batch length and the CRC-32C change. Legacy message sets
        are left as they are.

        A batch larger than `max_message_bytes` once recompressed is MESSAGE_TOO_LARGE, as in Kafka. Memory
        stays bounded: records inflating beyond `max_inflated_bytes` (or, stored uncompressed, beyond
        `max_message_bytes`) are refused as soon as they do, with the same error."""
        if self.magic != 2 or codec_id == self.compression:
            return
        data = self.data
        body: bytes | None = bytes(data[_RECORDS_START:])
        if self.compression:
            limit = max_message_bytes if codec_id == 0 else max_inflated_bytes
            body = decompress_at_most(self.compression, data[_RECORDS_START:], limit)
        too_large = BatchError(
            ErrorCode.MESSAGE_TOO_LARGE,
            f"the batch is larger than max.message.bytes ({max_message_bytes}) once recompressed",
        )
        if body is None:
            raise too_large
        if codec_id:
            body = compress(codec_id, body)
        if _RECORDS_START + len(body) > max_message_bytes:
            raise too_large
        new = bytearray(data[:_RECORDS_START])
        new += body
        new[_ATTRIBUTES + 1] = (new[_ATTRIBUTES + 1] & ~_COMPRESSION_MASK) | codec_id
        _I32.pack_into(new, _BATCH_LENGTH, len(new) - LOG_OVERHEAD)
        batch = RecordBatch(new)
        _U32.pack_into(new, _CRC, batch.compute_crc())
        self.data = new
        self.compression = codec_id

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
    data: Buffer | None,
    produce_version: int,
    *,
    max_message_bytes: int | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
    in_place: bool = False,
) -> list[ProducedBatch]:
    """Validate one partition's produce records as Kafka does, and copy them into owned `ProducedBatch`es.

    With `in_place`, the caller gives `data` up (a view of a request frame that is its own): a v2
    batch in a writable buffer then stays there, to be patched and stored as that view (no copy).

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
        check_entry(mv, pos, total, magic)

    first_magic = entries[0][2]
    if any(magic != first_magic for _, _, magic in entries):
        raise _invalid("batch magic differs from the first batch's magic")
    if first_magic == 2:
        return [_read_v2(mv, entries, in_place and not mv.readonly)]
    return [_read_legacy(mv, entries, max_record_bytes)]


def _read_v2(mv: memoryview, entries: list[tuple[int, int, int]], in_place: bool) -> ProducedBatch:
    if len(entries) > 1:
        raise _invalid("a produce of magic 2 data must hold exactly one record batch")
    pos, total, _ = entries[0]
    h = RecordBatch(mv, pos).header()
    lod, count = h.last_offset_delta, h.records_count
    if lod < 0:
        raise _invalid(f"batch has an invalid offset range: last offset delta {lod}")
    if count <= 0:
        raise _invalid(f"invalid reported count for record batch: {count}")
    if count != lod + 1:
        raise _invalid(f"inconsistent batch offset range [0, {lod}] and count of records {count}")
    attributes = h.attributes
    if attributes & _CONTROL_BIT:
        raise _invalid("clients are not allowed to write control records")
    if h.producer_id >= 0 and h.base_sequence < 0:
        raise _invalid(f"invalid sequence number {h.base_sequence} in record batch with producerId {h.producer_id}")
    compression = attributes & _COMPRESSION_MASK
    if compression > 4:
        raise BatchError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression id {compression}")
    view = mv[pos : pos + total]
    return ProducedBatch(
        data=view if in_place else bytearray(view),
        magic=2,
        offset_count=lod + 1,
        first_timestamp=h.base_timestamp,
        max_timestamp=h.max_timestamp,
        producer_id=h.producer_id,
        producer_epoch=h.producer_epoch,
        base_sequence=h.base_sequence,
        is_transactional=bool(attributes & _TRANSACTIONAL_BIT),
        compression=compression,
    )


def _read_legacy(mv: memoryview, entries: list[tuple[int, int, int]], max_record_bytes: int) -> ProducedBatch:
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
    inner = _legacy_inner(mv, wrapper, check=True, max_record_bytes=max_record_bytes)
    rebuild = magic == 0 or not inner.sequential
    if rebuild:
        _require_compressor(compression)
    return ProducedBatch(
        data=bytearray(mv[:end]),
        magic=magic,
        offset_count=inner.count,
        first_timestamp=inner.first_timestamp,
        max_timestamp=inner.max_timestamp,
        compression=compression,
        _inner=inner,
        _rebuild=rebuild,
    )


def inflates_on_read(data: Buffer | None) -> bool:
    """Whether `read_produce_data` decompresses `data` (a compressed legacy wrapper): work to keep off the loop."""
    mv = _as_view(data)
    if len(mv) < _LEGACY_KEY_V0:
        return False
    magic = mv[_MAGIC_OFFSET]
    return magic in (0, 1) and bool(mv[17] & _COMPRESSION_MASK)
