#!/usr/bin/env python3
"""How fast kstub's log cleaner compacts a log, in memory and on disk.

    python bench/compaction.py [--updates 100000] [--keys 1000] [--batch 100] [--value 50]

Builds a compacted log (1 MiB segments) of --updates records over --keys keys,
in batches of --batch records as a producer sends them, then runs one cleaning
(`kstub.cluster.cleaner_rewrite.clean_once`) and prints the records and megabytes read
per second, the records kept and the log's size before and after. A benchmark,
not a test: it asserts only that each key's latest value survived.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from kafka.record.default_records import DefaultRecordBatchBuilder

from kstub.cluster.cleaner_rewrite import clean_once
from kstub.cluster.config import TOPIC_CONFIGS
from kstub.cluster.log import Log
from kstub.cluster.log_files import DiskLogStorage
from kstub.protocol.records import iter_records, read_produce_data

T0 = 1_700_000_000_000


def config(name: str) -> str:
    values = {"cleanup.policy": "compact", "segment.bytes": str(1024 * 1024)}
    return values.get(name, TOPIC_CONFIGS[name].default_string or "")


def build(lg: Log, args: argparse.Namespace) -> dict[bytes, bytes]:
    latest: dict[bytes, bytes] = {}
    i = 0
    while i < args.updates:
        b = DefaultRecordBatchBuilder(2, 0, False, -1, -1, -1, 1 << 24)
        for j in range(min(args.batch, args.updates - i)):
            key = f"key-{(i * 7919) % args.keys:06d}".encode()
            value = f"{i:08d}".encode().ljust(args.value, b"x")
            b.append(j, T0 + i, key, value, [])
            latest[key] = value
            i += 1
        lg.append(read_produce_data(bytes(b.build()), 9)[0], 0)
    lg.roll()
    return latest


def run(mode: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="kstub-bench-clean-") as tmp:
        storage = DiskLogStorage(Path(tmp), fsync_checkpoints=False) if mode == "disk" else None
        lg = Log(config=config, clock=lambda: T0, storage=storage)
        try:
            latest = build(lg, args)
            before = lg.size_bytes
            start = time.perf_counter()
            result = clean_once(lg, config, checkpoint=None, stable=lg.log_end_offset, now_ms=T0, force=True)
            elapsed = time.perf_counter() - start
            assert result is not None
            kept = {r.key: r.value for c in lg.read(0) for r in iter_records(c.data)}
            assert kept == latest
            print(
                f"{mode:6s} {result.records_read / elapsed:10.0f} records/s  {before / elapsed / 1e6:6.1f} MB/s read  "
                f"{elapsed:6.2f} s  kept {result.records_kept} of {result.records_read}  "
                f"{before / 1e6:.1f} MB -> {lg.size_bytes / 1e6:.2f} MB"
            )
        finally:
            lg.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--value", type=int, default=50)
    args = parser.parse_args()
    for mode in ("memory", "disk"):
        run(mode, args)


if __name__ == "__main__":
    main()
