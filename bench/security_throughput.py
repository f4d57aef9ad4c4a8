#!/usr/bin/env python3
"""Produce and consume throughput over SASL_SSL (SCRAM-SHA-512) against PLAINTEXT, with confluent-kafka.

    python bench/security_throughput.py [--messages 100000] [--size 1000] [--rounds 2]

Starts one `python -m kstub serve` in a subprocess with two listeners on the
same broker, PLAINTEXT and SASL_SSL (a throwaway CA from --tls-dir), so both
paths share everything but the transport. Each round produces --messages
messages of --size bytes to a fresh topic through each listener in turn
(flushed at the end), then consumes them back from the start; prints
messages/s and MB/s per listener and direction (best round). A benchmark, not
a test: it asserts only that every message was delivered and read.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from confluent_kafka import Consumer, Producer
from serving import free_port, send, serve_command


def produce(config: dict[str, str], topic: str, messages: int, size: int) -> float:
    producer = Producer({**config, "linger.ms": 5, "batch.size": 1_000_000, "acks": "all"})
    payload = os.urandom(size)
    delivered = 0

    def done(err: object, _msg: object) -> None:
        nonlocal delivered
        if err is None:
            delivered += 1

    start = time.perf_counter()
    for _ in range(messages):
        send(producer, topic, payload, on_delivery=done)
    producer.flush(120)
    elapsed = time.perf_counter() - start
    assert delivered == messages, f"{delivered} of {messages} delivered"
    return elapsed


def consume(config: dict[str, str], topic: str, messages: int) -> float:
    consumer = Consumer({**config, "group.id": f"bench-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got = 0
    start = None
    deadline = time.monotonic() + 300
    while got < messages and time.monotonic() < deadline:
        batch = consumer.consume(10_000, 1.0)
        for message in batch:
            if message.error() is None:
                if start is None:
                    start = time.perf_counter()
                got += 1
    elapsed = time.perf_counter() - (start or time.perf_counter())
    consumer.close()
    assert got == messages, f"{got} of {messages} read"
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    plain, secure = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="kstub-bench-tls-") as tls:
        server = subprocess.Popen(
            serve_command(
                "--tls-dir",
                tls,
                "--sasl-users",
                "bench:bench-secret",
                "--log-level",
                "WARNING",
                "-c",
                f"listeners=PLAINTEXT://127.0.0.1:{plain},SASL_SSL://127.0.0.1:{secure}",
            ),
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            for _ in range(100):  # until both listeners accept (the CA is made first)
                try:
                    socket.create_connection(("127.0.0.1", secure), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            configs = {
                "PLAINTEXT": {"bootstrap.servers": f"127.0.0.1:{plain}"},
                "SASL_SSL": {
                    "bootstrap.servers": f"127.0.0.1:{secure}",
                    "security.protocol": "SASL_SSL",
                    "ssl.ca.location": os.path.join(tls, "ca.pem"),
                    "sasl.mechanism": "SCRAM-SHA-512",
                    "sasl.username": "bench",
                    "sasl.password": "bench-secret",
                },
            }
            best: dict[tuple[str, str], float] = {}
            for _ in range(args.rounds):
                for name, config in configs.items():
                    topic = f"bench-{name.lower()}-{uuid.uuid4().hex[:6]}"
                    for direction, seconds in (
                        ("produce", produce(config, topic, args.messages, args.size)),
                        ("consume", consume(config, topic, args.messages)),
                    ):
                        key = (name, direction)
                        best[key] = min(best.get(key, seconds), seconds)
            megabytes = args.messages * args.size / 1e6
            print(f"{args.messages} messages of {args.size} bytes, best of {args.rounds} rounds, one broker")
            for (name, direction), seconds in sorted(best.items()):
                print(f"{name:10} {direction:8} {args.messages / seconds:10.0f} msg/s {megabytes / seconds:8.1f} MB/s")
        finally:
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
