"""Real consumers reading transactional data: read_committed skips aborted records and stops at the LSO.

The log is written as a transactional producer and its coordinator would
write it, on three brokers with RF=3: plain records, two transactions
interleaved (one aborted, one committed, markers written with `write_marker`)
and a third left open. librdkafka (confluent-kafka), kafka-python, aiokafka
and Kafka's Java console consumer then read it: with read_committed, exactly the
plain and committed records, in offset order, none of the open transaction's,
no control record; with read_uncommitted, every data record.
"""

from __future__ import annotations

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder

from kstub.cluster.txn_markers import write_marker
from kstub.embedded import EmbeddedCluster
from kstub.kafka_client import BrokerConnection
from kstub.protocol.records.control import Marker

from clients import unique_topic

T0 = 1_700_000_000_000
P1, P2, P3 = 7001, 7002, 7003

#: (producer id or -1, transactional, values) of each produced batch, in log order
BATCHES = [
    (-1, False, ["a0", "a1"]),  # 0-1
    (P1, True, ["p1-0", "p1-1", "p1-2"]),  # 2-4, aborted at 7
    (P2, True, ["p2-0", "p2-1"]),  # 5-6, committed at 10
    (-1, False, ["b0", "b1"]),  # 8-9
    (P3, True, ["p3-0"]),  # 11, left open
]
COMMITTED = ["a0", "a1", "p2-0", "p2-1", "b0", "b1"]
EVERYTHING = ["a0", "a1", "p1-0", "p1-1", "p1-2", "p2-0", "p2-1", "b0", "b1", "p3-0"]


def _batch(pid: int, transactional: bool, values: list[str]) -> bytes:
    b = DefaultRecordBatchBuilder(2, 0, transactional, pid, 0 if pid >= 0 else -1, 0 if pid >= 0 else -1, 1 << 20)
    for i, value in enumerate(values):
        b.append(i, T0 + i, f"k{i}".encode(), value.encode(), [])
    return bytes(b.build())


def _produce(conn: BrokerConnection, topic: str, pid: int, transactional: bool, values: list[str]) -> int:
    body = {
        "transactional_id": "tx" if transactional else None,
        "acks": -1,
        "timeout_ms": 10000,
        "topic_data": [
            {"name": topic, "partition_data": [{"index": 0, "records": _batch(pid, transactional, values)}]}
        ],
    }
    # v11: a v12 produce would add the partition to a transaction of the coordinator's (transactions v2)
    answer = conn.request(0, body, version=11).responses[0].partition_responses[0]
    assert answer.error_code == 0, answer
    return answer.base_offset


@pytest.fixture(scope="module")
def written() -> tuple[EmbeddedCluster, str]:
    # no transaction coordinator writes this log (the batches and markers are written by hand), so the
    # leaders do not verify transactional batches with one (KIP-890's transaction.partition.verification.enable)
    with EmbeddedCluster(brokers=3, config={"transaction.partition.verification.enable": False}) as cluster:
        topic = unique_topic("read-committed")
        cluster.call(lambda: cluster.state.create_topic(topic, 1, 3))
        leader = cluster.call(lambda: cluster.state.partition(topic, 0).leader)
        host, port = next(
            (b.host, b.port) for b in cluster.call(lambda: list(cluster.state.brokers.values())) if b.node_id == leader
        )
        conn = BrokerConnection(host, port, "writer", 10.0)
        try:
            offsets = [_produce(conn, topic, *b) for b in BATCHES[:3]]
            end = cluster.call_async(write_marker, cluster.state, topic, 0, Marker(P1, 0, False, 0))
            offsets.append(_produce(conn, topic, *BATCHES[3]))
            end2 = cluster.call_async(write_marker, cluster.state, topic, 0, Marker(P2, 0, True, 0))
            offsets.append(_produce(conn, topic, *BATCHES[4]))
        finally:
            conn.close()
        assert (offsets, end, end2) == ([0, 2, 5, 8, 11], 7, 10)
        yield cluster, topic


def _confluent(bootstrap: str, topic: str, isolation: str, expected: int) -> list[str]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_topic("g"),
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[str] = []
    try:
        for _ in range(200):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == -191 and len(values) >= expected:  # _PARTITION_EOF
                    break
                continue
            values.append(msg.value().decode())
    finally:
        consumer.close()
    return values


def _kafka_python(bootstrap: str, topic: str, isolation: str, expected: int) -> list[str]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation, enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    values: list[str] = []
    try:
        for _ in range(40):
            for records in consumer.poll(500).values():
                values += [r.value.decode() for r in records]
            if len(values) >= expected:
                for records in consumer.poll(500).values():  # nothing more may come
                    values += [r.value.decode() for r in records]
                break
    finally:
        consumer.close()
    return values


def _aiokafka(bootstrap: str, topic: str, isolation: str, expected: int) -> list[str]:
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def main() -> list[str]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation, enable_auto_commit=False)
        await consumer.start()
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        values: list[str] = []
        try:
            for _ in range(40):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    values += [r.value.decode() for r in records]
                if len(values) >= expected:
                    for records in (await consumer.getmany(timeout_ms=500)).values():  # nothing more may come
                        values += [r.value.decode() for r in records]
                    break
        finally:
            await consumer.stop()
        return values

    return asyncio.run(main())


@pytest.mark.parametrize(
    "client", [_confluent, _kafka_python, _aiokafka], ids=["confluent-kafka", "kafka-python", "aiokafka"]
)
@pytest.mark.parametrize(
    ("isolation", "expected"), [("read_committed", COMMITTED), ("read_uncommitted", EVERYTHING)]
)  # fmt: skip
def test_python_clients(written, client, isolation: str, expected: list[str]) -> None:
    cluster, topic = written
    assert client(cluster.bootstrap_servers, topic, isolation, len(expected)) == expected


@pytest.mark.parametrize(("isolation", "expected"), [("read_committed", COMMITTED), ("read_uncommitted", EVERYTHING)])
def test_java_console_consumer(written, isolation: str, expected: list[str]) -> None:
    from support.kafka_tools import require_kafka_tools, tool

    require_kafka_tools()
    cluster, topic = written
    out = tool(
        "kafka-console-consumer", "--bootstrap-server", cluster.bootstrap_servers, "--topic", topic,
        "--partition", "0", "--offset", "earliest", "--isolation-level", isolation, "--timeout-ms", "5000",
        check=False,
    )  # fmt: skip
    assert out.stdout.split() == expected, out.stderr
