"""The in-memory store under a small memory budget, seen by real clients.

With ``kstub.memory.budget.bytes`` set low, closed segments leave memory
(the store's own accounting says so, and the segments hold no bytes) and
every record is still served, byte for byte, to confluent-kafka and
kafka-python consumers. Retention, DeleteRecords and topic deletion remove
the spilled files; stopping the server (or SIGTERM to `kstub serve`)
removes the spill directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

from kstub.cluster.spill import SpillingSegment
from kstub.embedded import EmbeddedCluster

from support.served import free_ports, serve_command

TIMEOUT = 30
BUDGET = 256 * 1024
SEGMENT = 64 * 1024
SMALL = {"kstub.memory.budget.bytes": str(BUDGET), "log.segment.bytes": str(SEGMENT)}


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(bootstrap: str, topic: str, partitions: int, replication: int = 1, **configs: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, partitions, replication, config=configs)
    admin.create_topics([new], operation_timeout=10)[topic].result(TIMEOUT)


def messages(n: int) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs with values of varied size whose bytes tell them apart."""
    return [(f"k{i}".encode(), os.urandom(200 + (i * 37) % 1500)) for i in range(n)]


def produce(bootstrap: str, topic: str, msgs: list[tuple[bytes, bytes]], partitions: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "batch.size": 16384})
    failed: list[object] = []
    for i, (key, value) in enumerate(msgs):
        while True:
            try:
                producer.produce(
                    topic, value, key, partition=i % partitions, on_delivery=lambda e, m: e and failed.append(e)
                )
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(TIMEOUT) == 0 and not failed


def consume_confluent(bootstrap: str, topic: str, partitions: int, expected: int) -> dict[int, list]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g"), "enable.auto.commit": False})
    got: dict[int, list] = {p: [] for p in range(partitions)}
    try:
        consumer.assign([TopicPartition(topic, p, -2) for p in range(partitions)])  # from the beginning
        count = 0
        while count < expected:
            batch = consumer.consume(min(1000, expected - count), timeout=TIMEOUT)
            assert batch, f"only {count} of {expected} records came back"
            for m in batch:
                assert m.error() is None, m.error()
                got[m.partition()].append((m.offset(), m.key(), m.value()))
                count += 1
    finally:
        consumer.close()
    return got


def consume_kafka_python(bootstrap: str, topic: str, partitions: int, expected: int) -> dict[int, list]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=TIMEOUT * 1000)
    tps = [KTopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    got: dict[int, list] = {p: [] for p in range(partitions)}
    for count, m in enumerate(consumer, 1):
        got[m.partition].append((m.offset, m.key, m.value))
        if count == expected:
            break
    consumer.close()
    return got


def expected_by_partition(msgs: list[tuple[bytes, bytes]], partitions: int, starts: dict[int, int] | None = None):
    out: dict[int, list] = {p: [] for p in range(partitions)}
    for i, (key, value) in enumerate(msgs):
        p = i % partitions
        out[p].append((len(out[p]), key, value))
    return {p: [r for r in rs if r[0] >= (starts or {}).get(p, 0)] for p, rs in out.items()}


def distinct_bytes(lists: Iterable[list]) -> int:
    """The bytes of the objects in `lists`, each object once (a partition's replicas share them)."""
    return sum(len(d) for d in {id(d): d for objects in lists for d in objects}.values())


def memory_state(cluster: EmbeddedCluster, topic: str) -> dict:
    """The store's accounting, and what each replica's segments hold (read on the Trio thread)."""

    def read() -> dict:
        model = cluster.cluster
        budget = model.store.memory
        logs = [(p.index, b, lg) for p in model.topics[topic].partitions for b, lg in p.logs.items()]
        all_logs = [lg for p in model.iter_partitions() for lg in p.logs.values()]
        return {
            "limit": budget.limit,
            "resident": budget.resident,
            "spilled": budget.spilled,
            # each object once: a partition's replicas share the bytes their leader stored
            "counted": distinct_bytes(s._data for lg in all_logs for s in lg.segments),
            "held": sum(s.resident_bytes for lg in all_logs for s in lg.segments),
            "directory": budget.directory,
            "closed": [
                [
                    (s.resident_bytes, len(s._data), [f.path for f in s.files], sum(s.lengths), s.size, len(s))
                    for s in lg.segments[:-1]
                ]
                for _, _, lg in logs
            ],
            "segments": sum(len(lg.segments) for _, _, lg in logs),
            "files": [s.path for _, _, lg in logs for s in lg.segments if s.path is not None],
            "types": {type(s) for _, _, lg in logs for s in lg.segments},
        }

    return cluster.call(read)


def assert_spilled(state: dict) -> None:
    assert state["types"] == {SpillingSegment}
    assert state["resident"] == state["counted"] <= state["limit"] == BUDGET
    assert state["spilled"] > 2 * BUDGET
    spilled_segments = 0
    for closed in state["closed"]:
        # the bytes still in memory are the newest: segments holding some form a suffix of each log
        holding = [resident > 0 for resident, *_ in closed]
        assert holding == sorted(holding)
        for resident, held, paths, spilled, size, batches in closed:
            if not resident:  # a spilled closed segment: no bytes in memory, all of them in files
                assert (held, spilled, len(paths)) == (0, size, batches)
                assert all(path.parent == state["directory"] and path.exists() for path in paths)
                spilled_segments += 1
    assert spilled_segments >= 10


@pytest.mark.kstub(config=SMALL)
def test_closed_segments_leave_memory_and_every_record_is_still_served(bootstrap, kstub_cluster):
    topic = unique()
    create(bootstrap, topic, 2)
    msgs = messages(3000)  # about 2.7 MB, ten times the budget
    produce(bootstrap, topic, msgs, 2)
    assert_spilled(memory_state(kstub_cluster, topic))
    want = expected_by_partition(msgs, 2)
    assert consume_confluent(bootstrap, topic, 2, len(msgs)) == want
    assert consume_kafka_python(bootstrap, topic, 2, len(msgs)) == want


@pytest.mark.kstub(brokers=3, config=SMALL)
def test_replicas_on_every_broker_share_one_budget(bootstrap, kstub_cluster):
    topic = unique()
    create(bootstrap, topic, 1, 3, **{"min.insync.replicas": "2"})
    msgs = messages(1500)
    produce(bootstrap, topic, msgs, 1)
    state = memory_state(kstub_cluster, topic)
    assert_spilled(state)
    # three replicas of the data, one copy of its bytes: the followers hold the objects their leader
    # stored, counted once, and each spilled byte was written to a file once
    total = sum(len(v) for _, v in msgs)
    assert total <= state["resident"] + state["spilled"] < 2 * total
    assert state["held"] > 2 * state["resident"]
    assert consume_confluent(bootstrap, topic, 1, len(msgs)) == expected_by_partition(msgs, 1)


@pytest.mark.kstub(config=SMALL)
def test_retention_delete_records_and_topic_deletion_remove_spilled_files(bootstrap, kstub_cluster):
    topic = unique()
    create(bootstrap, topic, 1)
    msgs = messages(2000)
    produce(bootstrap, topic, msgs, 1)
    before = memory_state(kstub_cluster, topic)
    assert_spilled(before)

    # DeleteRecords: the segments wholly below the new start go, files and all
    admin = AdminClient({"bootstrap.servers": bootstrap})
    cut = 700
    admin.delete_records([TopicPartition(topic, 0, cut)])[TopicPartition(topic, 0, cut)].result(TIMEOUT)
    after_delete = memory_state(kstub_cluster, topic)
    gone = set(before["files"]) - set(after_delete["files"])
    assert gone and not any(p.exists() for p in gone)
    assert after_delete["spilled"] < before["spilled"]
    assert consume_confluent(bootstrap, topic, 1, len(msgs) - cut) == expected_by_partition(msgs, 1, {0: cut})

    # retention.bytes: the oldest segments go on the next retention pass
    kept = 4 * SEGMENT
    resource = ConfigResource(
        "topic",
        topic,
        incremental_configs=[ConfigEntry("retention.bytes", str(kept), incremental_operation=AlterConfigOpType.SET)],
    )
    admin.incremental_alter_configs([resource])[resource].result(TIMEOUT)
    assert kstub_cluster.call(lambda: kstub_cluster.cluster.run_retention()) > 0
    after_retention = memory_state(kstub_cluster, topic)
    gone = set(after_delete["files"]) - set(after_retention["files"])
    assert gone and not any(p.exists() for p in gone)
    start = kstub_cluster.call(lambda: kstub_cluster.cluster.partition(topic, 0).log_start_offset)
    assert start > cut
    want = expected_by_partition(msgs, 1, {0: start})
    assert consume_confluent(bootstrap, topic, 1, len(want[0])) == want

    # deleting the topic removes the rest
    remaining = after_retention["files"]
    assert remaining and all(p.exists() for p in remaining)
    kstub_cluster.delete_topic(topic)
    assert not any(p.exists() for p in remaining)
    assert kstub_cluster.call(lambda: kstub_cluster.cluster.store.memory.spilled) == 0


def test_stopping_the_server_removes_the_spill_directory(tmp_path: Path):
    config = {**SMALL, "kstub.memory.spill.dir": str(tmp_path)}
    with EmbeddedCluster(config=config) as cluster:
        topic = unique()
        create(cluster.bootstrap_servers, topic, 1)
        produce(cluster.bootstrap_servers, topic, messages(1000), 1)
        directory = cluster.call(lambda: cluster.cluster.store.memory.directory)
        assert directory is not None and directory.parent == tmp_path and any(directory.iterdir())
    assert not directory.exists() and list(tmp_path.iterdir()) == []


def test_kstub_serve_removes_its_spill_directory_on_sigterm(tmp_path: Path):
    port = free_ports(1)
    server = subprocess.Popen(
        serve_command(
            "--port", str(port), "-c", "kstub.memory.budget.bytes=0", "-c", f"kstub.memory.spill.dir={tmp_path}"
        ),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        for line in server.stderr:
            if "kstub ready" in line:
                break
        bootstrap = f"127.0.0.1:{port}"
        topic = unique()
        create(bootstrap, topic, 1)
        msgs = messages(100)
        produce(bootstrap, topic, msgs, 1)
        [directory] = tmp_path.iterdir()
        assert len(list(directory.glob("*.log"))) == 1
        assert consume_confluent(bootstrap, topic, 1, len(msgs)) == expected_by_partition(msgs, 1)
        server.send_signal(signal.SIGTERM)
        rest = server.communicate(timeout=TIMEOUT)[1]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0 and "Traceback" not in rest
    assert list(tmp_path.iterdir()) == []
