#!/usr/bin/env python3
"""One request's round trip, taken apart: what any Trio server costs, what kstub adds, what the mock takes.

    python bench/request_floor.py [--requests 3000]

The acks=all latency target of the performance issue compares kstub with
librdkafka's mock through confluent-kafka, where both the client's time and
the broker's are in the figure. This benchmark takes the client out: one
blocking socket (on CPU 1) sends the same pre-encoded request, waits for the
whole response frame and sends the next, and no response is decoded. The
servers run on CPU 0, each in a process of its own:

- ``python echo``: a plain blocking-socket loop that answers every frame with a
  fixed frame (the floor of a Python server: a recv and a send per request);
- ``trio echo``: the same in a Trio task over ``trio.SocketStream`` (the floor
  of any Trio server: the run loop, the epoll wait, the task switch);
- ``kstub``: ``kstub serve --brokers 3`` (started as bench/suite.py starts it) (ApiVersions v3; Produce v9 of one
  100-byte record with acks=all to a partition of replication factor 1 and 3);
- ``mock``: librdkafka's mock cluster (ApiVersions; Produce acks=all, which it
  answers without replicating).

Prints p50 and p99 of each in microseconds, and kstub's share above the Trio
floor. A benchmark, not a test: it asserts only that each answer arrives.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from suite import BROKER_CPU as SERVER_CPU
from suite import CLIENT_CPU, kstub_target, mock_target, pinned

from kstub.kafka_client import Connection
from kstub.protocol import ApiKey
from kstub.protocol.connection import ClientConnection
from kstub.protocol.records.batch import Record

HERE = Path(__file__).resolve()
FIXED_ANSWER = struct.pack(">i", 4) + b"\x00\x00\x00\x00"  # a frame of four bytes (the correlation id)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return bytes(data)


def _read_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", _read_exactly(sock, 4))
    return _read_exactly(sock, size)


# --- the floors ----------------------------------------------------------------------------------


def python_echo(listener: socket.socket) -> None:
    """Answer each frame with a fixed frame, one connection at a time, with blocking calls."""
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with sock:
            try:
                while True:
                    _read_frame(sock)
                    sock.sendall(FIXED_ANSWER)
            except ConnectionError:
                continue


def trio_echo(listener: socket.socket) -> None:
    """The same in Trio: a task per connection reading frames from a SocketStream."""
    import trio

    async def handle(stream: trio.SocketStream) -> None:
        buffer = bytearray()
        async with stream:
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buffer += chunk
                while len(buffer) >= 4:
                    (size,) = struct.unpack_from(">i", buffer)
                    if len(buffer) < 4 + size:
                        break
                    del buffer[: 4 + size]
                    await stream.send_all(FIXED_ANSWER)

    async def main() -> None:
        trio_listener = trio.SocketListener(trio.socket.from_stdlib_socket(listener))
        await trio.serve_listeners(handle, [trio_listener])

    trio.run(main)


def serve_floor(kind: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    print(f"127.0.0.1:{listener.getsockname()[1]}", flush=True)
    (python_echo if kind == "python" else trio_echo)(listener)


@contextmanager
def floor_server(kind: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [*pinned(SERVER_CPU), sys.executable, str(HERE), "--serve-floor", kind], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait()


# --- the client ----------------------------------------------------------------------------------


def one_record_batch() -> bytes:
    from kstub.cluster.cleaner_batches import build_batch

    record = Record(offset=0, timestamp=int(time.time() * 1000), key=None, value=os.urandom(100))
    batch, _ = build_batch([record], base_offset=0, last_offset=0, leader_epoch=-1, codec=0)
    return batch


def encoded(api_key: int, version: int, body: dict) -> bytes:
    return ClientConnection("floor").send_request(api_key, version, body)


def produce_request(topic: str) -> bytes:
    body = {
        "transactional_id": None,
        "acks": -1,
        "timeout_ms": 30_000,
        "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": one_record_batch()}]}],
    }
    return encoded(ApiKey.PRODUCE, 9, body)


def round_trips(address: str, request: bytes, n: int) -> list[float]:
    """Microseconds of each of n round trips of `request` (its correlation id 0 each time), after a warm-up."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        samples = []
        for i in range(n + 200):
            started = time.perf_counter()
            sock.sendall(request)
            _read_frame(sock)
            if i >= 200:
                samples.append((time.perf_counter() - started) * 1e6)
    return samples


def leaders(conn: Connection, names: list[str], *, create: bool = False) -> dict[str, str]:
    """The address of each topic's partition 0 leader, asking again until every one has a leader."""
    body = {"topics": [{"name": n} for n in names], "allow_auto_topic_creation": create}
    for _ in range(100):
        reply = conn.request(ApiKey.METADATA, 4, body)
        brokers = {b.node_id: f"{b.host}:{b.port}" for b in reply.brokers}
        found = {t.name: brokers.get(t.partitions[0].leader_id) for t in reply.topics if t.partitions}
        if len(found) == len(names) and all(found.values()):
            return found  # type: ignore[return-value]
        time.sleep(0.05)  # not a measured figure: the new partitions' leaders are being elected
    raise RuntimeError(f"no leader for {names}")


def create_topics(address: str, names: dict[str, int]) -> dict[str, str]:
    """Create the topics (one partition each); the address of each one's leader."""
    with Connection(address) as conn:
        topics = [
            {"name": name, "num_partitions": 1, "replication_factor": rf, "assignments": [], "configs": []}
            for name, rf in names.items()
        ]
        reply = conn.request(ApiKey.CREATE_TOPICS, 5, {"topics": topics, "timeout_ms": 30_000, "validate_only": False})
        for topic in reply.topics:
            if topic.error_code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS
                raise RuntimeError(f"creating {topic.name}: error {topic.error_code}")
        return leaders(conn, list(names))


def measure(n: int) -> list[tuple[str, list[float]]]:
    api_versions = encoded(ApiKey.API_VERSIONS, 3, {"client_software_name": "floor", "client_software_version": "1"})
    rows = []
    for kind in ("python", "trio"):
        with floor_server(kind) as address:
            rows.append((f"{kind} echo (a fixed answer)", round_trips(address, api_versions, n)))
    with kstub_target(None) as kstub:  # `kstub serve --brokers 3`, as the benchmark set starts it
        address = kstub.bootstrap.split(",")[0]
        leader = create_topics(address, {"floor-rf1": 1, "floor-rf3": 3})
        rows.append(("kstub ApiVersions", round_trips(address, api_versions, n)))
        for rf in (1, 3):
            topic = f"floor-rf{rf}"
            rows.append((f"kstub Produce acks=all RF {rf}", round_trips(leader[topic], produce_request(topic), n)))
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        print("(no confluent-kafka: the mock's rows are left out)")
        return rows
    with mock_target(None) as mock:  # librdkafka's mock cluster, held by a process of its own
        address = mock.bootstrap.split(",")[0]
        with Connection(address) as conn:  # the mock creates a topic the first time Metadata names it
            mock_leader = leaders(conn, ["floor-mock"], create=True)["floor-mock"]
        rows.append(("mock ApiVersions", round_trips(address, api_versions, n)))
        rows.append(("mock Produce acks=all", round_trips(mock_leader, produce_request("floor-mock"), n)))
    return rows


def floors(n: int) -> dict[str, tuple[float, float]]:
    """Each server's p50 and p99 round trip, microseconds (the client pinned to CPU 1 while it measures)."""
    affinity = os.sched_getaffinity(0)
    if pinned(CLIENT_CPU):
        os.sched_setaffinity(0, {int(CLIENT_CPU)})
    try:
        rows = measure(n)
    finally:
        os.sched_setaffinity(0, affinity)
    return {name: (statistics.median(s), sorted(s)[int(len(s) * 0.99)]) for name, s in rows}


def report(figures: dict[str, tuple[float, float]], n: int) -> str:
    lines = [f"one request at a time, {n} round trips each, microseconds (p50, p99)"]
    lines += [f"  {name:<32} {p50:8.1f} {p99:8.1f}" for name, (p50, p99) in figures.items()]
    trio_floor = figures["trio echo (a fixed answer)"][0]
    for name in ("kstub ApiVersions", "kstub Produce acks=all RF 1", "kstub Produce acks=all RF 3"):
        lines.append(f"  {name}: {figures[name][0] - trio_floor:.1f} us above the Trio floor")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--serve-floor", choices=("python", "trio"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(args.serve_floor)
        return
    print(report(floors(args.requests), args.requests))


if __name__ == "__main__":
    main()
