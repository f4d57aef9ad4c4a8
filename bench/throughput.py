#!/usr/bin/env python3
"""Produce and consume throughput of `kstub serve`, measured with confluent-kafka.

    python bench/throughput.py [--messages 200000] [--size 100] [--partitions 3]

Starts `python -m kstub serve` on a free loopback port in a subprocess (so the
client and the broker do not share a GIL), produces --messages messages of
--size bytes with acks=1 (and then with acks=all), consumes them all back by
assign from offset 0, and prints msgs/s and MB/s for each phase. A benchmark,
not a test: it asserts only that every message came back.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from serving import free_port, send, wait_ready


def produce(bootstrap: str, topic: str, n: int, size: int, acks: str, **config: object) -> float:
    """Seconds to produce `n` messages of `size` bytes; `config` adds librdkafka settings (dots as underscores)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
            **{key.replace("_", "."): value for key, value in config.items()},
        }
    )
    payload = os.urandom(size)
    start = time.perf_counter()
    for i in range(n):
        send(producer, topic, payload, key=str(i % 1000).encode())
    if producer.flush(300) != 0:
        raise SystemExit("not every message was delivered")
    return time.perf_counter() - start


def consume(bootstrap: str, topic: str, partitions: int, n: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 50 * 1024 * 1024,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = 0
    start = time.perf_counter()
    while got < n:
        for m in consumer.consume(10_000, timeout=5):
            if m.error():
                raise SystemExit(f"consumer error: {m.error()}")
            got += 1
        if time.perf_counter() - start > 300:
            raise SystemExit(f"consumed only {got} of {n}")
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed


def report(phase: str, n: int, size: int, seconds: float) -> None:
    print(
        f"{phase:<22} {n:>9} msgs  {seconds:7.2f} s  {n / seconds:>10,.0f} msgs/s  {n * size / seconds / 1e6:7.1f} MB/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=3)
    args = parser.parse_args()

    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kstub",
            "serve",
            "--port",
            str(port),
            "-c",
            f"num.partitions={args.partitions}",
            "--log-level",
            "WARNING",
        ]
    )
    try:
        wait_ready(bootstrap)
        print(
            f"kstub on {bootstrap}; {args.messages} messages of {args.size} bytes, "
            f"{args.partitions} partitions, confluent-kafka {__import__('confluent_kafka').version()}"
        )
        for acks in ("1", "all"):
            topic = f"bench-{acks}-{uuid.uuid4().hex[:6]}"
            report(
                f"produce acks={acks}",
                args.messages,
                args.size,
                produce(bootstrap, topic, args.messages, args.size, acks),
            )
            report("consume", args.messages, args.size, consume(bootstrap, topic, args.partitions, args.messages))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
