#!/usr/bin/env python3
"""Produce throughput of `kstub serve` in memory vs on disk (``--data-dir``), measured with confluent-kafka.

    python bench/storage_throughput.py [--messages 200000] [--size 100] [--partitions 3]

For each storage mode (memory; --data-dir leaving data to the page cache, as
Kafka does by default; --data-dir --fsync, every acknowledged produce
fsynced) it starts `python -m kstub serve` in a subprocess on a free loopback
port, produces --messages messages of --size bytes with acks=all (batches of
at most --batch-messages messages), then consumes them back from offset 0,
and prints msgs/s and MB/s, the median of --repeat runs. The data directory
is a fresh temporary folder (``--dir`` chooses where: put it on the disk you
want to measure). A benchmark, not a test: it asserts only that every
message came back.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import uuid

from serving import free_port, serve_command, wait_ready
from throughput import consume, produce, report


def run(mode: str, args: argparse.Namespace) -> tuple[float, float]:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="kstub-bench-") as data_dir:
        extra = [] if mode == "memory" else ["--data-dir", data_dir]
        if mode == "disk+fsync":
            extra.append("--fsync")
        server = subprocess.Popen(
            serve_command(
                "--port",
                str(port),
                "-c",
                f"num.partitions={args.partitions}",
                "--log-level",
                "WARNING",
                *extra,
            )
        )
        try:
            wait_ready(bootstrap)
            topic = f"bench-{uuid.uuid4().hex[:6]}"
            produced = produce(
                bootstrap, topic, args.messages, args.size, "all", batch_num_messages=args.batch_messages
            )
            consumed = consume(bootstrap, topic, args.partitions, args.messages)
            return produced, consumed
        finally:
            server.terminate()
            server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to make the data directories (default: the temp dir)")
    parser.add_argument("--batch-messages", type=int, default=10_000, help="librdkafka batch.num.messages")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode; the median is reported")
    parser.add_argument("--modes", default="memory,disk,disk+fsync", help="comma-separated: memory, disk, disk+fsync")
    args = parser.parse_args()
    print(
        f"{args.messages} messages of {args.size} bytes, {args.partitions} partitions, acks=all, "
        f"batches of <= {args.batch_messages} messages, median of {args.repeat} runs, "
        f"confluent-kafka {__import__('confluent_kafka').version()}"
    )
    for mode in args.modes.split(","):
        runs = [run(mode.strip(), args) for _ in range(args.repeat)]
        report(f"{mode}: produce", args.messages, args.size, statistics.median(r[0] for r in runs))
        report(f"{mode}: consume", args.messages, args.size, statistics.median(r[1] for r in runs))


if __name__ == "__main__":
    main()
