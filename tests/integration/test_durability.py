"""`kstub serve --data-dir`: a server killed with SIGKILL comes back with every acknowledged message.

Each test runs `python -m kstub serve` in a subprocess on a fixed port,
kills it, and starts it again on the same port and data directory, while
real clients (confluent-kafka) keep working against it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from support.served import serve_command

TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `kstub serve` subprocess that can be killed and restarted on the same port and data directory."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.args = args
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_path(self, run: int) -> Path:
        return self.data_dir.parent / f"server-{run}.log"

    def start(self) -> None:
        self.runs += 1
        log = open(self.log_path(self.runs), "w")  # noqa: SIM115 (the child writes to it)
        self.proc = subprocess.Popen(
            serve_command("--port", str(self.port), "--data-dir", str(self.data_dir), *self.args),
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"kstub exited: {self.log_path(self.runs).read_text()}")
            # The listeners are bound before recovery runs, so a TCP connect could
            # succeed early: wait for the line logged once the cluster serves.
            if "kstub ready" in self.log_path(self.runs).read_text():
                return
            time.sleep(0.02)
        raise AssertionError("kstub did not start serving")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(TIMEOUT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(TIMEOUT)

    def log(self, run: int) -> str:
        return self.log_path(run).read_text()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator:
    servers: list[Server] = []

    def make(*args: str) -> Server:
        server = Server(tmp_path / "data", *args)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def read_all(bootstrap: str, topic: str, partitions: int, ends: dict[int, int]) -> dict[int, list[tuple[int, bytes]]]:
    """(offset, value) of every record up to `ends`, per partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "verify", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
    deadline = time.monotonic() + TIMEOUT
    while any(len(got[p]) < ends[p] for p in got) and time.monotonic() < deadline:
        for m in consumer.consume(1000, timeout=0.5):
            assert m.error() is None, m.error()
            got[m.partition()].append((m.offset(), m.value()))
    consumer.close()
    return got


def test_sigkill_while_producing_with_acks_all_loses_and_duplicates_nothing(server_factory):
    server = server_factory("--fsync")
    server.start()
    topic = "crash"
    admin = AdminClient({"bootstrap.servers": server.bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(TIMEOUT)

    producer = Producer(
        {
            "bootstrap.servers": server.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "batch.num.messages": 50,
            "message.timeout.ms": 120_000,
            "reconnect.backoff.max.ms": 200,
        }
    )
    acked: dict[int, tuple[int, int]] = {}
    errors: list[object] = []

    def delivered(err, msg) -> None:
        if err is not None:
            errors.append(err)
        else:
            acked[int(msg.value())] = (msg.partition(), msg.offset())

    total = 20_000
    for i in range(total):
        while True:
            try:
                producer.produce(topic, str(i).encode(), key=str(i % 97).encode(), on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.01)
    deadline = time.monotonic() + TIMEOUT
    while len(acked) < 4000 and time.monotonic() < deadline:
        producer.poll(0.005)
    assert 4000 <= len(acked) < total, "the kill must land mid-stream"
    server.kill()  # requests in flight, more queued in the producer
    server.start()
    assert producer.flush(TIMEOUT * 2) == 0
    assert not errors, errors[:3]
    assert len(acked) == total

    ends = {p: 0 for p in range(3)}
    for p, off in acked.values():
        ends[p] = max(ends[p], off + 1)
    stored = read_all(server.bootstrap, topic, 3, ends)
    values = [v for records in stored.values() for _, v in records]
    assert len(values) == len(set(values)), "a message was stored twice"
    assert sorted(int(v) for v in values) == list(range(total))
    for p, records in stored.items():
        assert [o for o, _ in records] == list(range(ends[p])), f"partition {p} has gaps"
        for offset, value in records:
            assert acked[int(value)] == (p, offset)
    assert "recovered" in server.log(2)


def test_a_torn_segment_is_truncated_on_restart_and_the_log_goes_on(server_factory):
    server = server_factory()
    server.start()
    topic = "torn"
    admin = AdminClient({"bootstrap.servers": server.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(TIMEOUT)
    producer = Producer({"bootstrap.servers": server.bootstrap, "acks": "all", "linger.ms": 0})
    for i in range(100):  # one batch per message
        producer.produce(topic, f"m{i}".encode())
        assert producer.flush(TIMEOUT) == 0
    server.kill()

    segment = server.data_dir / "broker-0" / "torn-0" / "00000000000000000000.log"
    size = segment.stat().st_size
    with open(segment, "r+b") as f:
        f.truncate(size - 10)  # a partial write of the last batch

    server.start()
    log = server.log(2)
    assert "partial entry" in log and "truncating segment 00000000000000000000.log" in log
    stored = read_all(server.bootstrap, topic, 1, {0: 99})
    assert stored[0] == [(i, f"m{i}".encode()) for i in range(99)]
    producer = Producer({"bootstrap.servers": server.bootstrap, "acks": "all"})
    offsets = []
    producer.produce(topic, b"after", on_delivery=lambda err, msg: offsets.append((err, msg.offset())))
    assert producer.flush(TIMEOUT) == 0
    assert offsets == [(None, 99)]


def test_group_offsets_survive_a_sigkill(server_factory):
    """Committed offsets are kept under --data-dir (fsynced before OffsetCommit is answered with --fsync)."""
    server = server_factory("--fsync")
    server.start()
    topic = "committed"
    admin = AdminClient({"bootstrap.servers": server.bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(TIMEOUT)
    producer = Producer({"bootstrap.servers": server.bootstrap, "acks": "all"})
    for i in range(10):
        producer.produce(topic, f"m{i}".encode(), partition=i % 2)
    assert producer.flush(TIMEOUT) == 0
    consumer = Consumer({"bootstrap.servers": server.bootstrap, "group.id": "keeper", "enable.auto.commit": False})
    wanted = [TopicPartition(topic, 0, 3, leader_epoch=0), TopicPartition(topic, 1, 5, leader_epoch=0)]
    consumer.commit(offsets=wanted, asynchronous=False)
    consumer.close()
    server.kill()

    server.start()
    consumer = Consumer({"bootstrap.servers": server.bootstrap, "group.id": "keeper"})
    try:
        got = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=TIMEOUT)
    finally:
        consumer.close()
    assert [(tp.partition, tp.offset, tp.error) for tp in got] == [(0, 3, None), (1, 5, None)]
    assert "restored the committed offsets of 1 group(s)" in server.log(2)
