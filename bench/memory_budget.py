#!/usr/bin/env python3
"""Peak memory of `kstub serve` (in memory, no --data-dir) after a large produce, and fetch speed of spilled data.

    python bench/memory_budget.py [--gigabytes 4] [--size 10000] [--budgets default]

For each budget in --budgets ("default": the broker's default
``kstub.memory.budget.bytes``; a number of bytes; -1: no budget, everything
in memory; 0: every batch written to its spill file at once; "disk": no
budget but ``--data-dir`` in a temporary directory, the on-disk log served
from the page cache) it starts `python -m kstub serve` in a subprocess on a
free loopback port, produces --gigabytes of --size-byte messages to a
one-partition topic with confluent-kafka (acks=all), then reports:

- the produce rate, and the broker's peak RSS (VmHWM from /proc/PID/status)
  and current RSS after the produce;
- the fetch rate of the oldest --read-mb megabytes (spilled to files, read
  back with pread; normally from the page cache) next to that of the newest
  --read-mb megabytes (still in memory), each the median of --repeat reads
  by a confluent-kafka consumer with default settings.

A benchmark, not a test: it asserts only that every message was delivered
and every message read came back.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from serving import free_port, send, wait_ready

MB = 1024 * 1024


def status(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of `pid`, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) * 1024
    return out


def produce(bootstrap: str, topic: str, count: int, size: int) -> float:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 100_000,
            "queue.buffering.max.kbytes": 256 * 1024,
        }
    )
    pool = os.urandom(size + 4096)  # values differ: each is a different window of the pool
    failed: list[object] = []

    def delivered(err: object, msg: object) -> None:
        if err is not None:
            failed.append(err)

    start = time.perf_counter()
    for i in range(count):
        offset = (i * 61) % 4096
        send(producer, topic, pool[offset : offset + size], key=str(i).encode(), on_delivery=delivered)
    if producer.flush(600) != 0 or failed:
        raise SystemExit(f"not every message was delivered: {failed[:3]}")
    return time.perf_counter() - start


def read(bootstrap: str, topic: str, first: int, count: int, size: int) -> float:
    """Seconds for a consumer (librdkafka defaults) to read `count` messages from offset `first`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:6]}"})
    consumer.assign([TopicPartition(topic, 0, first)])
    got = 0
    start = time.perf_counter()
    try:
        while got < count:
            batch = consumer.consume(min(10_000, count - got), timeout=30)
            if not batch:
                raise SystemExit(f"read only {got} of {count} messages from offset {first}")
            for m in batch:
                if m.error():
                    raise SystemExit(f"consumer error: {m.error()}")
                if len(m.value()) != size:
                    raise SystemExit(f"message at {m.offset()} has {len(m.value())} bytes")
                got += 1
        return time.perf_counter() - start
    finally:
        consumer.close()


def run(budget: str, args: argparse.Namespace) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    data_dir = tempfile.TemporaryDirectory(prefix="kstub-bench-") if budget == "disk" else None
    if data_dir is not None:
        extra = ["--data-dir", data_dir.name]
    elif budget == "default":
        extra = []
    else:
        extra = ["-c", f"kstub.memory.budget.bytes={budget}"]
    command = [sys.executable, "-m", "kstub", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen([*command, "--log-level", "WARNING", *extra])
    try:
        wait_ready(bootstrap)
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        count = int(args.gigabytes * 1024 * MB) // args.size
        seconds = produce(bootstrap, topic, count, args.size)
        total = count * args.size
        mem = status(server.pid)
        print(
            f"budget {budget:>9}: produced {total / MB:,.0f} MB ({count:,} messages) in {seconds:.1f} s "
            f"= {total / MB / seconds:,.0f} MB/s; broker peak RSS (VmHWM) {mem['VmHWM'] / MB:,.0f} MB, "
            f"RSS now {mem['VmRSS'] / MB:,.0f} MB",
            flush=True,
        )
        n = max(1, args.read_mb * MB // args.size)
        for label, first in (("spilled (oldest)", 0), ("resident (newest)", count - n)):
            times = [read(bootstrap, topic, first, n, args.size) for _ in range(args.repeat)]
            t = statistics.median(times)
            print(
                f"    fetch {label:>17}: {n * args.size / MB:,.0f} MB in {t:.2f} s = {n * args.size / MB / t:,.0f} MB/s"
            )
        mem = status(server.pid)
        print(f"    after the reads: peak RSS {mem['VmHWM'] / MB:,.0f} MB, RSS now {mem['VmRSS'] / MB:,.0f} MB")
    finally:
        server.terminate()
        server.wait(60)
        if data_dir is not None:
            data_dir.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=4.0, help="data to produce (GiB)")
    parser.add_argument("--size", type=int, default=10_000, help="bytes per message")
    parser.add_argument("--read-mb", type=int, default=64, help="MiB read back from each end of the log")
    parser.add_argument("--repeat", type=int, default=3, help="reads per end; the median is reported")
    parser.add_argument("--budgets", default="default", help="comma-separated: default, -1, 0, bytes, disk")
    args = parser.parse_args()
    print(
        f"{args.gigabytes} GiB in messages of {args.size} bytes to one partition, acks=all, "
        f"confluent-kafka {__import__('confluent_kafka').version()}"
    )
    for budget in args.budgets.split(","):
        run(budget.strip(), args)


if __name__ == "__main__":
    main()
