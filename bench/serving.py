"""What the benchmarks share to run ``kstub serve`` in a subprocess: free ports, its command line,
waiting until it listens (or its admin API answers), ApiVersions round trips as a measure of how
long the brokers' Trio thread is kept from serving, and a producer's throughput."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Any

from confluent_kafka import Producer

from kstub.kafka_client import Connection


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_base_port(n: int) -> int:
    """A port with n - 1 free ports after it."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        held: list[socket.socket] = []
        try:
            for i in range(n):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise SystemExit("no free ports")


def serve_command(*args: str) -> list[str]:
    """``kstub serve`` on the loopback interface with `args`, run by this Python."""
    return [sys.executable, "-m", "kstub", "serve", "--host", "127.0.0.1", *args]


def wait_ready(address: str, timeout: float = 10.0) -> None:
    """Until something listens on `address` (host:port)."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit("kstub did not start")


def start_with_admin(admin_port: int, *, stderr: Any = subprocess.DEVNULL) -> tuple[subprocess.Popen[str], str]:
    """Three brokers (replication factor 3) with the admin API on `admin_port`; their bootstrap servers."""
    cmd = [sys.executable, "-m", "kstub", "serve", "--brokers", "3", "--port", "0", "--admin-port", str(admin_port)]
    cmd += ["-c", "default.replication.factor=3", "--log-level", "WARNING"]
    proc = subprocess.Popen(cmd, stderr=stderr, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 60
    url = f"http://127.0.0.1:{admin_port}"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/v1/cluster", timeout=2) as resp:
                brokers = json.load(resp)["brokers"]
            return proc, ",".join(f"{b['host']}:{b['port']}" for b in brokers)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("kstub did not start")


def probe(bootstrap: str, seconds: float) -> list[float]:
    """Round-trip times of ApiVersions requests sent one after the other for `seconds`."""
    times = []
    with Connection(bootstrap.split(",")[0]) as c:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.perf_counter()
            c.request(18, 0, {})
            times.append(time.perf_counter() - t)
    return times


def describe(times: list[float]) -> str:
    """Round-trip times as a line: how many, median, p99, max."""
    ordered = sorted(times)
    p99 = ordered[int(len(ordered) * 0.99)]
    median = statistics.median(times) * 1000
    return f"{len(times)} requests, median {median:.2f} ms, p99 {p99 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms"


def produce(bootstrap: str, topics: list[str], partitions: int, n: int) -> float:
    """Messages per second of confluent-kafka sending `n` values of 100 bytes (acks=all) round-robin
    over `topics` and their `partitions`."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    value = b"v" * 100
    t = time.perf_counter()
    for i in range(n):
        send(producer, topics[i % len(topics)], value, partition=(i // len(topics)) % partitions)
    producer.flush(120)
    return n / (time.perf_counter() - t)


def send(producer: Producer, topic: str, value: bytes, **kwargs: Any) -> None:
    """``producer.produce``, serving delivery reports while its queue is full (BufferError) until it fits."""
    while True:
        try:
            producer.produce(topic, value, **kwargs)
            return
        except BufferError:
            producer.poll(0.01)
