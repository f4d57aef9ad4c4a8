#!/usr/bin/env python3
"""Compression bombs against `kstub serve`: peak RSS, and Metadata latency on another connection meanwhile.

    python bench/compression_bomb.py [--gib 4] [--json]

A compacted topic gets a zstd batch of `--gib` records of 1 GiB each (a key and
a value of zeros: legal, as in Kafka; some tens of KB compressed), so every
key must be checked and `--gib` GiB walked. While the produce is in progress,
a second connection sends Metadata requests back to back; their latencies are
reported (targets: the largest under 200 ms, the server's peak RSS, VmHWM,
under 300 MB), with the time the produce took. Then ListOffsets by timestamp
for the last record walks the same data, measured the same way.

Reads /proc for memory, so Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import statistics
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import crc32c
import zstandard

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from kstub.protocol.primitives import write_varint as _varint

from support.raw import RawClient

GIB = 1 << 30
MIB = 1 << 20
T0 = 1_700_000_000_000


def bomb(records: int) -> bytes:
    def parts() -> Iterator[bytes]:
        zeros = bytes(MIB)
        for i in range(records):
            fields = b"\x00" + _varint(i) + _varint(i) + _varint(1) + b"k" + _varint(GIB)
            yield _varint(len(fields) + GIB + 1) + fields
            for _ in range(GIB // MIB):
                yield zeros
            yield _varint(0)

    c = zstandard.ZstdCompressor(level=3).compressobj()
    payload = b"".join([*(c.compress(p) for p in parts()), c.flush()])
    last_ts = T0 + records - 1
    after_crc = struct.pack(">hiqqqhii", 4, records - 1, T0, last_ts, -1, -1, -1, records) + payload
    head = struct.pack(">qiib", 0, 9 + len(after_crc), -1, 2)
    return head + struct.pack(">I", crc32c.crc32c(after_crc)) + after_crc


def peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def measure(a: RawClient, b: RawClient, topic: str, api_key: int, version: int, body: dict) -> dict:
    """Send the heavy request on a; ping Metadata on b until a's answer is readable."""
    latencies = []
    start = time.perf_counter()
    a.send(api_key, version, body)
    while not select.select([a.sock], [], [], 0)[0]:
        t = time.perf_counter()
        b.request(3, 12, {"topics": [{"name": topic}], "allow_auto_topic_creation": False})
        latencies.append(time.perf_counter() - t)
    resp = a.receive()
    took = time.perf_counter() - start
    return {
        "seconds": round(took, 3),
        "metadata_answered": len(latencies),
        "metadata_max_ms": round(max(latencies) * 1000, 2) if latencies else None,
        "metadata_median_ms": round(statistics.median(latencies) * 1000, 3) if latencies else None,
        "response": resp,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gib", type=int, default=4, help="records of 1 GiB in the bomb (default 4)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    data = bomb(args.gib)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kstub", "serve", "--port", "0", "--log-level", "INFO"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            m = re.search(r"kstub ready: bootstrap servers (\S+)", line)
            if m:
                bootstrap = m.group(1)
                break
        else:
            raise RuntimeError("kstub serve did not start")
        idle = peak_rss(proc.pid)
        topic = f"bomb-{uuid.uuid4().hex[:8]}"
        with RawClient(bootstrap, timeout=600) as a, RawClient(bootstrap, timeout=600) as b:
            a.request(
                19,
                7,
                {
                    "topics": [
                        {
                            "name": topic,
                            "num_partitions": 1,
                            "replication_factor": 1,
                            "assignments": [],
                            "configs": [{"name": "cleanup.policy", "value": "compact"}],
                        }
                    ],
                    "timeout_ms": 5000,
                },
            )
            produce = {
                "transactional_id": None,
                "acks": -1,
                "timeout_ms": 600000,
                "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": data}]}],
            }
            p = measure(a, b, topic, 0, 9, produce)
            p["error_code"] = int(p.pop("response").responses[0].partition_responses[0].error_code)
            last = T0 + args.gib - 1
            lo = {
                "replica_id": -1,
                "topics": [{"name": topic, "partitions": [{"partition_index": 0, "timestamp": last}]}],
            }
            lo_result = measure(a, b, topic, 2, 7, lo)
            found = lo_result.pop("response").topics[0].partitions[0]
            lo_result["offset"] = found.offset
        result = {
            "bomb_compressed_bytes": len(data),
            "bomb_inflated_bytes": args.gib * GIB,
            "produce_to_compacted_topic": p,
            "list_offsets_by_timestamp": lo_result,
            "idle_peak_rss_mb": round(idle / MIB, 1),
            "peak_rss_mb": round(peak_rss(proc.pid) / MIB, 1),
        }
    finally:
        proc.terminate()
        proc.wait(30)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"bomb: {result['bomb_compressed_bytes']} bytes of zstd inflating to {args.gib} GiB")
        for name in ("produce_to_compacted_topic", "list_offsets_by_timestamp"):
            r = result[name]
            print(
                f"{name}: {r['seconds']} s; meanwhile {r['metadata_answered']} Metadata answered on another "
                f"connection, max {r['metadata_max_ms']} ms (target < 200), median {r['metadata_median_ms']} ms"
            )
        print(f"peak RSS {result['peak_rss_mb']} MB (target < 300; {result['idle_peak_rss_mb']} MB at start)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
