"""Transactions with real clients over TCP on 3 brokers (RF=3): the coordinator's side.

confluent-kafka's transactional producer commits and aborts across 3
partitions, is fenced by a second instance with the same transactional.id,
commits consumed offsets with send_offsets_to_transaction, and carries on when
its coordinator's broker stops or is killed; aiokafka's, kafka-python's and
kafkajs's commit and abort too (the Java client: test_transactions_java.py). Asserted here:
what the coordinator does (DescribeTransactions states, markers written to
every partition, pending offsets visible only after the commit) and what a
read_uncommitted consumer sees. What read_committed consumers see needs the
log side (LSO, aborted transactions): tests/integration/test_transactions_read_committed.py.
"""

from __future__ import annotations

import os
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from kstub.kafka_client import Connection
from kstub.protocol.records import RecordBatch
from kstub.protocol.records.control import read_marker

from multibroker import create_topic, wait_until

THREE = {"replica.lag.time.max.ms": "5000"}


def _producer(bootstrap: str, tid: str, **extra: str) -> Producer:
    conf = {"bootstrap.servers": bootstrap, "transactional.id": tid, "transaction.timeout.ms": 60000}
    conf.update(extra)
    return Producer(conf)


def _describe(kc, tid: str):
    """DescribeTransactions at the coordinator (FindCoordinator key type 1)."""
    broker = kc.call(lambda: kc.cluster.transactions.coordinator_for(tid))
    with Connection((broker.advertised_host, broker.port)) as conn:
        (state,) = conn.request(65, 0, {"transactional_ids": [tid]}).transaction_states
    return state


def _markers(kc, topic: str) -> dict[int, list]:
    """The transaction markers every replica of each partition holds: {partition: {broker: [Marker, ...]}}."""

    def read() -> dict[int, dict[int, list]]:
        out: dict[int, dict[int, list]] = {}
        for p in kc.cluster.topics[topic].partitions:
            out[p.index] = {
                broker: [m for c in lg.read(0) if (m := read_marker(RecordBatch(c.data))) is not None]
                for broker, lg in p.logs.items()
            }
        return out

    return kc.call(read)


def _consume_all(bootstrap: str, topic: str, expected: int, isolation: str = "read_uncommitted") -> list[bytes]:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    c.subscribe([topic])
    got: list[bytes] = []
    try:
        for _ in range(200):
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m.value())
            if len(got) >= expected:
                break
    finally:
        c.close()
    return got


@pytest.mark.kstub(brokers=3, config=THREE)
def test_commit_and_abort_across_three_partitions(kstub_cluster):
    kc = kstub_cluster
    bootstrap = kc.bootstrap_servers
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    create_topic(kc, topic, partitions=3, rf=3)
    tid = f"tid-{uuid.uuid4().hex[:8]}"
    p = _producer(bootstrap, tid)
    p.init_transactions(30)
    assert _describe(kc, tid).transaction_state == "Empty"

    p.begin_transaction()
    for i in range(9):
        p.produce(topic, f"c{i}".encode(), partition=i % 3)
    p.flush(30)
    ongoing = _describe(kc, tid)
    assert ongoing.transaction_state == "Ongoing"
    assert [(t.topic, sorted(t.partitions)) for t in ongoing.topics] == [(topic, [0, 1, 2])]
    p.commit_transaction(30)
    wait_until(kc, lambda: kc.cluster.transactions.get(tid).state.value == "CompleteCommit", what="commit")

    p.begin_transaction()
    for i in range(6):
        p.produce(topic, f"a{i}".encode(), partition=i % 3)
    p.flush(30)
    p.abort_transaction(30)
    wait_until(kc, lambda: kc.cluster.transactions.get(tid).state.value == "CompleteAbort", what="abort")
    done = _describe(kc, tid)
    assert done.transaction_state == "CompleteAbort" and list(done.topics) == []

    # a commit marker then an abort marker on every replica of every partition, with the producer's id
    markers = _markers(kc, topic)
    for partition, by_broker in markers.items():
        assert len(by_broker) == 3, partition
        for broker, found in by_broker.items():
            assert [m.commit for m in found] == [True, False], (partition, broker, found)
            assert {m.producer_id for m in found} == {done.producer_id}
    # read_uncommitted sees both transactions' records, never the markers
    got = _consume_all(bootstrap, topic, 15)
    assert sorted(got) == sorted([f"c{i}".encode() for i in range(9)] + [f"a{i}".encode() for i in range(6)])


@pytest.mark.kstub(brokers=3, config=THREE)
def test_a_second_instance_fences_the_first(kstub_cluster):
    kc = kstub_cluster
    bootstrap = kc.bootstrap_servers
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    create_topic(kc, topic, partitions=3, rf=3)
    tid = f"tid-{uuid.uuid4().hex[:8]}"
    first = _producer(bootstrap, tid)
    first.init_transactions(30)
    first.begin_transaction()
    first.produce(topic, b"zombie", partition=0)
    first.flush(30)
    epoch_before = _describe(kc, tid).producer_epoch

    second = _producer(bootstrap, tid)
    second.init_transactions(30)  # aborts the first one's open transaction and bumps the epoch
    state = _describe(kc, tid)
    assert state.transaction_state in ("Empty", "CompleteAbort")
    assert state.producer_epoch >= epoch_before + 2  # the fencing abort, then the new instance's own
    first.produce(topic, b"late", partition=1)
    with pytest.raises(KafkaException) as exc:
        first.commit_transaction(10)
    assert exc.value.args[0].fatal() or "fenced" in str(exc.value).lower()

    second.begin_transaction()
    second.produce(topic, b"fresh", partition=0)
    second.commit_transaction(30)
    wait_until(kc, lambda: kc.cluster.transactions.get(tid).state.value == "CompleteCommit", what="commit")
    assert [m.commit for m in _markers(kc, topic)[0][kc.cluster.topics[topic].partitions[0].leader]] == [False, True]


@pytest.mark.kstub(brokers=3, config=THREE)
def test_send_offsets_to_transaction_commits_offsets_with_the_transaction(kstub_cluster):
    kc = kstub_cluster
    bootstrap = kc.bootstrap_servers
    source, sink = f"in-{uuid.uuid4().hex[:8]}", f"out-{uuid.uuid4().hex[:8]}"
    create_topic(kc, source, partitions=3, rf=3)
    create_topic(kc, sink, partitions=3, rf=3)
    plain = Producer({"bootstrap.servers": bootstrap})
    for i in range(6):
        plain.produce(source, f"m{i}".encode(), partition=i % 3)
    plain.flush(30)

    group = f"ctp-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([source])
    tid = f"tid-{uuid.uuid4().hex[:8]}"
    p = _producer(bootstrap, tid)
    p.init_transactions(30)
    seen = []
    for _ in range(200):
        m = consumer.poll(0.2)
        if m is not None and not m.error():
            seen.append(m)
        if len(seen) == 6:
            break
    assert len(seen) == 6
    p.begin_transaction()
    for m in seen:
        p.produce(sink, m.value().upper(), partition=m.partition())
    offsets = [TopicPartition(source, k, 2) for k in range(3)]
    p.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
    # pending: the group has no committed offset yet, and require_stable says so
    assert kc.call(lambda: kc.cluster.groups.committed(group)) == {}
    partition = kc.call(lambda: kc.cluster.transactions.offsets_partition(group))
    described = _describe(kc, tid)
    assert ("__consumer_offsets", [partition[1]]) in [(t.topic, list(t.partitions)) for t in described.topics]
    p.commit_transaction(30)
    wait_until(kc, lambda: kc.cluster.transactions.get(tid).state.value == "CompleteCommit", what="commit")
    committed = consumer.committed([TopicPartition(source, k) for k in range(3)], 10)
    assert [(tp.partition, tp.offset) for tp in committed] == [(0, 2), (1, 2), (2, 2)]
    consumer.close()


@pytest.mark.kstub(brokers=3, config={"replica.lag.time.max.ms": "2000", "broker.session.timeout.ms": "1500"})
@pytest.mark.parametrize("how", ["stop", "kill"])
def test_the_coordinators_broker_fails_while_a_transaction_is_open(kstub_cluster, how):
    """The coordinator's broker stops (or is killed: replaced after its session times out) mid-transaction:
    the producer finds the new coordinator and commits; every partition gets its marker."""
    kc = kstub_cluster
    bootstrap = kc.bootstrap_servers
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    create_topic(kc, topic, partitions=3, rf=3)
    tid = f"tid-{uuid.uuid4().hex[:8]}"
    p = _producer(bootstrap, tid)
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(6):
        p.produce(topic, f"v{i}".encode(), partition=i % 3)
    assert p.flush(30) == 0
    old = kc.call(lambda: kc.cluster.transactions.coordinator_for(tid).node_id)
    getattr(kc.control, f"{how}_broker")(old)
    wait_until(kc, lambda: kc.cluster.transactions.coordinator_for(tid).node_id != old, what="a new coordinator")
    p.commit_transaction(60)
    wait_until(kc, lambda: kc.cluster.transactions.get(tid).state.value == "CompleteCommit", what="commit")
    state = _describe(kc, tid)
    assert state.transaction_state == "CompleteCommit"
    for partition, by_broker in _markers(kc, topic).items():
        live = {b: found for b, found in by_broker.items() if b != old}
        assert all([m.commit for m in found] == [True] for found in live.values()), (partition, by_broker)
    got = _consume_all(bootstrap, topic, 6)
    assert sorted(got) == sorted(f"v{i}".encode() for i in range(6))


@pytest.mark.kstub(brokers=3, config=THREE)
def test_aiokafka_transactions(kstub_cluster):
    """aiokafka's transactional producer: a commit, an abort, send_offsets_to_transaction."""
    import asyncio

    from aiokafka import AIOKafkaProducer
    from aiokafka.structs import TopicPartition as AioPartition

    kc = kstub_cluster
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    create_topic(kc, topic, partitions=3, rf=3)
    tid = f"aio-{uuid.uuid4().hex[:8]}"

    async def run() -> None:
        p = AIOKafkaProducer(bootstrap_servers=kc.bootstrap_servers, transactional_id=tid)
        await p.start()
        try:
            async with p.transaction():
                for i in range(6):
                    await p.send_and_wait(topic, f"c{i}".encode(), partition=i % 3)
                await p.send_offsets_to_transaction({AioPartition(topic, 0): 1}, "aio-group")
            await p.begin_transaction()
            for i in range(3):
                await p.send_and_wait(topic, f"a{i}".encode(), partition=i)
            await p.abort_transaction()
        finally:
            await p.stop()

    asyncio.run(run())
    wait_until(kc, lambda: kc.cluster.transactions.get(tid).state.value == "CompleteAbort", what="abort")
    for by_broker in _markers(kc, topic).values():
        assert all([m.commit for m in found] == [True, False] for found in by_broker.values()), by_broker
    assert {tp: o.offset for tp, o in kc.call(lambda: kc.cluster.groups.committed("aio-group")).items()} == {
        (topic, 0): 1
    }


@pytest.mark.kstub(brokers=3, config=THREE)
def test_kafka_python_transactions(kstub_cluster):
    """kafka-python's transactional producer: a commit and an abort across 3 partitions."""
    from kafka import KafkaProducer

    kc = kstub_cluster
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    create_topic(kc, topic, partitions=3, rf=3)
    tid = f"kp-{uuid.uuid4().hex[:8]}"
    p = KafkaProducer(bootstrap_servers=kc.bootstrap_servers, transactional_id=tid)
    try:
        p.init_transactions()
        p.begin_transaction()
        for i in range(6):
            p.send(topic, f"c{i}".encode(), partition=i % 3)
        p.commit_transaction()
        p.begin_transaction()
        for i in range(3):
            p.send(topic, f"a{i}".encode(), partition=i)
        p.flush()
        p.abort_transaction()
    finally:
        p.close()
    wait_until(kc, lambda: kc.cluster.transactions.get(tid).state.value == "CompleteAbort", what="abort")
    for by_broker in _markers(kc, topic).values():
        assert all([m.commit for m in found] == [True, False] for found in by_broker.values()), by_broker


@pytest.mark.kstub(brokers=3, config=THREE)
def test_kafkajs_transactions(kstub_cluster):
    """kafkajs's transactional producer: a commit with sendOffsets, then an abort (skips without node or
    kafkajs: `npm ci --prefix compat/js`; fails under CI)."""
    import subprocess
    from pathlib import Path

    from kstub.compat.clients.kafkajs import JS_DIR

    from support.external import require_programs, unavailable

    require_programs("node")
    if not (JS_DIR / "node_modules" / "kafkajs").exists():
        unavailable(f"kafkajs is not installed (npm ci --prefix {JS_DIR})")
    kc = kstub_cluster
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    create_topic(kc, topic, partitions=3, rf=3)
    tid, group = f"js-{uuid.uuid4().hex[:8]}", f"jsg-{uuid.uuid4().hex[:8]}"
    script = Path(__file__).parent / "js" / "txn.js"
    result = subprocess.run(
        ["node", str(script), kc.bootstrap_servers, topic, tid, group],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(JS_DIR / "node_modules")},
    )
    assert result.returncode == 0 and result.stdout.strip() == "done", result.stderr[-3000:]
    wait_until(kc, lambda: kc.cluster.transactions.get(tid).state.value == "CompleteAbort", what="abort")
    for by_broker in _markers(kc, topic).values():
        assert all([m.commit for m in found] == [True, False] for found in by_broker.values()), by_broker
    assert {tp: o.offset for tp, o in kc.call(lambda: kc.cluster.groups.committed(group)).items()} == {(topic, 0): 1}
