"""Helpers for the cluster-state tests: batches as a producer would send them, a hand-moved clock."""

from __future__ import annotations

from kafka.record.default_records import DefaultRecordBatchBuilder

from kstub.protocol.records import ProducedBatch, read_produce_data


class Clock:
    """Milliseconds that a test moves by hand."""

    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def build_batch(
    count: int = 1,
    *,
    timestamp: int = 1_700_000_000_000,
    value_size: int = 100,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
) -> ProducedBatch:
    """One v2 batch of `count` records, validated as the produce path does."""
    b = DefaultRecordBatchBuilder(2, 0, False, producer_id, producer_epoch, base_sequence, 1 << 24)
    for i in range(count):
        assert b.append(i, timestamp + i, f"k{i}".encode(), b"v" * value_size, []) is not None
    return read_produce_data(bytes(b.build()), 9)[0]
