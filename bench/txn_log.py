#!/usr/bin/env python3
"""Transactions in the logs: what the producer/transaction state costs on append, and on a read_committed read.

    python bench/txn_log.py [--batches 20000] [--aborted 100,10000,100000]

In process, on the model (no sockets, one replica): appends --batches
idempotent batches, then the same number of transactional batches each
followed by a marker (one transaction per batch, every other one aborted),
and prints the time per append. Then, for logs holding each number of aborted
transactions given, the time to answer what a read_committed Fetch asks of
the state (the LSO and the aborted transactions overlapping a read near the
log end): it should not grow with the number of aborted transactions, the
index being searched, not scanned. A benchmark, not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import time

from kafka.record.default_records import DefaultRecordBatchBuilder

from kstub.cluster.config import BrokerConfig
from kstub.cluster.model import ClusterState
from kstub.cluster.partition import Partition
from kstub.cluster.txn_markers import marker_batch
from kstub.protocol.records import ProducedBatch, read_produce_data
from kstub.protocol.records.control import Marker

T0 = 1_700_000_000_000


def _data(pid: int, seq: int, transactional: bool) -> bytes:
    b = DefaultRecordBatchBuilder(2, 0, transactional, pid, 0, seq, 1 << 20)
    for i in range(5):
        b.append(i, T0 + i, f"k{i}".encode(), b"v" * 100, [])
    return bytes(b.build())


def _partition(name: str) -> Partition:
    cluster = ClusterState(BrokerConfig({}))
    cluster.add_broker(0, "127.0.0.1", 9092)
    cluster.create_topic(name, 1, 1)
    p = cluster.partition(name, 0)
    assert p is not None
    return p


def _batches(pid: int, n: int, transactional: bool) -> list[ProducedBatch]:
    """`n` batches of one producer, in sequence (built before the timing: that is the client's work)."""
    return [read_produce_data(_data(pid, i * 5, transactional), 9)[0] for i in range(n)]


def bench_appends(n: int) -> None:
    p = _partition("idempotent")
    batches = _batches(1, n, False)
    start = time.perf_counter()
    for b in batches:
        assert p.append([b], T0).error == 0
    idem = (time.perf_counter() - start) / n

    p = _partition("transactional")
    batches = [read_produce_data(_data(1000 + i, 0, True), 9)[0] for i in range(n)]
    markers = [Marker(1000 + i, 0, i % 2 == 0, 0) for i in range(n)]
    marker_batches = [marker_batch(m, T0) for m in markers]
    start = time.perf_counter()
    for b, m, mb in zip(batches, markers, marker_batches, strict=True):
        assert p.append([b], T0).error == 0
        assert p.append_marker(mb, m, T0).error == 0
    txn = (time.perf_counter() - start) / (2 * n)
    print(f"append, idempotent batch of 5 records:       {idem * 1e6:7.1f} us")
    print(f"append, transactional batch or its marker:   {txn * 1e6:7.1f} us  ({n} transactions, half aborted)")


def bench_read_committed(aborted: int, reads: int = 2000) -> None:
    p = _partition(f"aborted-{aborted}")
    lg = p.leader_log
    for i in range(aborted):
        # one transaction of one batch each, aborted; an open one at the end keeps the LSO below the high watermark
        lg.append(read_produce_data(_data(5000 + i, 0, True), 9)[0], 0)
        lg.append(marker_batch(Marker(5000 + i, 0, False, 0), T0), 0)
    lg.append(read_produce_data(_data(4999, 0, True), 9)[0], 0)
    p.advance_high_watermark()
    fetch_offset = max(0, lg.log_end_offset - 60)
    assert p.last_stable_offset < p.high_watermark  # once: drops the decided transactions below the high watermark
    start = time.perf_counter()
    for _ in range(reads):
        lso = p.last_stable_offset
        found = lg.producers.aborted_transactions(fetch_offset, lso)
    per = (time.perf_counter() - start) / reads
    print(f"read_committed state, {aborted:>7} aborted transactions in the log: {per * 1e6:6.2f} us per read "
          f"({len(found)} listed, LSO {lso})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20000)
    parser.add_argument("--aborted", default="100,10000,100000")
    args = parser.parse_args()
    bench_appends(args.batches)
    for n in (int(x) for x in args.aborted.split(",")):
        bench_read_committed(n)


if __name__ == "__main__":
    main()
