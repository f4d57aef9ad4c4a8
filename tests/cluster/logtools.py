"""Helpers for the cluster-state tests: batches as a producer would send them, a hand-moved clock,
a data directory opened as a cluster and a crash of it."""

from __future__ import annotations

import os
from pathlib import Path

from kafka.record.default_records import DefaultRecordBatchBuilder

from kstub.cluster.config import BrokerConfig
from kstub.cluster.disk_store import DiskStore
from kstub.cluster.log_files import FileSegment
from kstub.cluster.model import ClusterState
from kstub.protocol.records import ProducedBatch, read_produce_data

T0 = 1_700_000_000_000


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


def kv(
    pairs: list[tuple[str, str | None]],
    *,
    ts: int = T0,
    pid: int = -1,
    epoch: int = -1,
    seq: int = -1,
    transactional: bool = False,
    compression: int = 0,
) -> ProducedBatch:
    """A v2 batch of (key, value) records (None: a tombstone), validated as the produce path does."""
    b = DefaultRecordBatchBuilder(2, compression, transactional, pid, epoch, seq, 1 << 24)
    for i, (k, v) in enumerate(pairs):
        assert b.append(i, ts + i, k.encode(), None if v is None else v.encode(), []) is not None
    return read_produce_data(bytes(b.build()), 9)[0]


def open_cluster(data_dir: Path, brokers: int = 1, **config: str) -> ClusterState:
    cluster = ClusterState(BrokerConfig({k.replace("_", "."): v for k, v in config.items()}))
    cluster.store = DiskStore(data_dir)
    for i in range(brokers):
        cluster.add_broker(i, "127.0.0.1", 9092 + i)
    cluster.store.recover(cluster)
    return cluster


def crash(cluster: ClusterState) -> None:
    """Drop file descriptors and the lock without flushing anything (the process died)."""
    for p in cluster.iter_partitions():
        for lg in p.logs.values():
            for seg in lg.segments:
                if isinstance(seg, FileSegment) and seg.fd >= 0:
                    os.close(seg.fd)
                    seg.fd = -1
    store = cluster.store
    assert isinstance(store, DiskStore)
    if store._offsets_fd is not None:
        os.close(store._offsets_fd)
    os.close(store._lock_fd)
