"""Control batches (transaction markers): built as Kafka lays them out, read back."""

from __future__ import annotations

import pytest

from protocol.records import RecordBatch
from protocol.records.control import Marker, control_batch, read_marker

from support.batches import batch


@pytest.mark.parametrize("commit", [True, False])
def test_marker_round_trip(commit: bool) -> None:
    data = control_batch(4242, 7, commit=commit, coordinator_epoch=3, timestamp_ms=1_700_000_000_123, base_offset=50)
    batch = RecordBatch(data)
    batch.validate()  # size, magic and CRC-32C as Kafka checks them
    assert batch.is_control and batch.is_transactional
    assert (batch.base_offset, batch.records_count, batch.base_sequence) == (50, 1, -1)
    assert (batch.producer_id, batch.producer_epoch) == (4242, 7)
    assert batch.max_timestamp == 1_700_000_000_123
    assert read_marker(batch) == Marker(4242, 7, commit, 3)
    (record,) = list(batch.records())
    # key: version 0, type 1 (commit) or 0 (abort); value: version 0, coordinator epoch
    assert record.key == b"\x00\x00\x00" + (b"\x01" if commit else b"\x00")
    assert record.value == b"\x00\x00\x00\x00\x00\x03"


def test_data_batch_is_no_marker() -> None:
    assert read_marker(RecordBatch(batch(1))) is None


def test_kafka_python_reads_it_as_a_control_batch() -> None:
    # an independent reader: kafka-python's DefaultRecordBatch checks the CRC and sees the control bit
    from kafka.record.default_records import DefaultRecordBatch

    reader = DefaultRecordBatch(control_batch(9, 1, commit=True, coordinator_epoch=0, timestamp_ms=5))
    assert reader.validate_crc()
    assert reader.is_control_batch and reader.is_transactional
    assert (reader.producer_id, reader.producer_epoch) == (9, 1)
