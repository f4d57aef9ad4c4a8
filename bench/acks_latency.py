#!/usr/bin/env python3
"""Produce latency with acks=all: replication factor 3 against 1, measured with confluent-kafka.

    python bench/acks_latency.py [--messages 3000] [--size 100]

Starts `python -m kstub serve --brokers 3` on free loopback ports in a
subprocess (so the client and the brokers do not share a GIL), creates a
topic with replication factor 1 and one with replication factor 3 (one
partition each), and sends --messages messages one
at a time to each: every message is produced, then flushed, and its latency
is the time from produce() to its delivery report. The topics take turns in
--rounds rounds, so that load from elsewhere on the machine hits both alike.
Prints p50, p99, mean and max per topic, for acks=all (the high watermark must pass the batch: with RF
3 both followers must have copied it) and, for reference, acks=1. A
benchmark, not a test: it asserts only that every message was delivered.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from serving import free_base_port, wait_ready


def make_producer(bootstrap: str, acks: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "linger.ms": 0,
            "enable.idempotence": False,
            "log.connection.close": False,
        }
    )


def latencies(producer: Producer, topic: str, n: int, size: int, warm_up: int = 0) -> list[float]:
    payload = os.urandom(size)
    result: list[float] = []

    def delivered(err, msg, started: float) -> None:
        if err is not None:
            raise SystemExit(f"delivery failed: {err}")
        result.append(time.perf_counter() - started)

    for _ in range(n + warm_up):
        started = time.perf_counter()
        producer.produce(
            topic, value=payload, partition=0, on_delivery=lambda err, msg, s=started: delivered(err, msg, s)
        )
        if producer.flush(30) != 0:
            raise SystemExit("a message was not delivered")
    return result[warm_up:]


def report(label: str, values: list[float]) -> None:
    ms = sorted(v * 1000 for v in values)
    p50 = ms[len(ms) // 2]
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    mean = statistics.fmean(ms)
    print(f"{label:<20} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   mean {mean:6.2f} ms   max {ms[-1]:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    base = free_base_port(3)
    bootstrap = f"127.0.0.1:{base}"
    server = subprocess.Popen(
        [sys.executable, "-m", "kstub", "serve", "--brokers", "3", "--port", str(base), "--log-level", "WARNING"]
    )
    try:
        wait_ready(f"127.0.0.1:{base}")
        admin = AdminClient({"bootstrap.servers": bootstrap, "log.connection.close": False})
        # One partition each (which broker leads makes no difference: one process, one event loop).
        topics = [
            NewTopic("rf1", 1, 1),
            NewTopic("rf3", 1, 3),
        ]
        for future in admin.create_topics(topics).values():
            future.result(30)
        print(
            f"kstub, 3 brokers on {bootstrap}; {args.messages} messages of {args.size} bytes per topic, "
            f"one at a time, confluent-kafka {__import__('confluent_kafka').version()}"
        )
        per_round = max(1, args.messages // args.rounds)
        for acks in ("all", "1"):
            producer = make_producer(bootstrap, acks)
            for topic in ("rf1", "rf3"):
                latencies(producer, topic, 0, args.size, warm_up=100)  # connections, metadata
            results: dict[str, list[float]] = {"rf1": [], "rf3": []}
            for _ in range(args.rounds):
                for topic in results:
                    results[topic] += latencies(producer, topic, per_round, args.size)
            for topic, values in results.items():
                report(f"acks={acks} RF={topic[2:]}", values)
            del producer  # librdkafka closes its connections before the brokers go away
        del admin
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
