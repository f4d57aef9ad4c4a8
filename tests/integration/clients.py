"""Thin adapters so one test body drives kafka-python and confluent-kafka alike.

Each adapter produces a list of `Msg`s (recording the partition and offset the
broker acknowledged) and reads partitions back by assign + seek, returning what
the broker served. The tests compare the two.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

TIMEOUT = 30.0


@dataclass
class Msg:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp: int | None = None
    partition: int | None = None
    offset: int | None = None

    def content(self) -> tuple:
        return (self.key, self.value, tuple(self.headers), self.timestamp)


def make_messages(n: int, base_ts: int) -> list[Msg]:
    """Keyed messages with some null keys, null values, and headers (some null)."""
    out = []
    for i in range(n):
        key = None if i % 97 == 1 else f"key-{i % 50}".encode()
        value = None if i % 89 == 0 and key is not None else f"value-{i}-".encode() * (1 + i % 5)
        headers = [("idx", str(i).encode())] if i % 2 else []
        if i % 7 == 0:
            headers.append(("empty", b""))
        out.append(Msg(key, value, headers, base_ts + i))
    return out


def unique_topic(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class KafkaPythonClient:
    name = "kafka-python"

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def create_topic(self, topic: str, partitions: int) -> None:
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([NewTopic(topic, partitions, 1)])
        finally:
            admin.close()

    def produce(
        self,
        topic: str,
        msgs: list[Msg],
        *,
        acks: int | str = "all",
        compression: str | None = None,
        partition: int | None = None,
    ) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap, acks=acks, compression_type=compression, linger_ms=5, batch_size=64 * 1024
        )
        try:
            futures = [
                producer.send(
                    topic, key=m.key, value=m.value, headers=m.headers, timestamp_ms=m.timestamp, partition=partition
                )
                for m in msgs
            ]
            producer.flush(timeout=TIMEOUT)
            for m, fut in zip(msgs, futures, strict=True):
                meta = fut.get(timeout=TIMEOUT)
                m.partition, m.offset = meta.partition, meta.offset
        finally:
            producer.close(timeout=5)

    def consume(self, topic: str, starts: dict[int, int], expected: int) -> list[Msg]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None)
        try:
            tps = [TopicPartition(topic, p) for p in starts]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, starts[tp.partition])
            got: list[Msg] = []
            deadline = time.monotonic() + TIMEOUT
            while len(got) < expected and time.monotonic() < deadline:
                for tp, records in consumer.poll(timeout_ms=500).items():
                    for r in records:
                        headers = [(k, v) for k, v in r.headers]
                        got.append(Msg(r.key, r.value, headers, r.timestamp, tp.partition, r.offset))
            return got
        finally:
            consumer.close()

    def offsets_for_times(self, topic: str, partitions: list[int], ts: int) -> dict[int, int | None]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        try:
            found = consumer.offsets_for_times({TopicPartition(topic, p): ts for p in partitions})
            return {tp.partition: (o.offset if o is not None else None) for tp, o in found.items()}
        finally:
            consumer.close()


class ConfluentClient:
    name = "confluent-kafka"

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def create_topic(self, topic: str, partitions: int) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=10)
        futures[topic].result(timeout=TIMEOUT)

    def produce(
        self,
        topic: str,
        msgs: list[Msg],
        *,
        acks: int | str = "all",
        compression: str | None = None,
        partition: int | None = None,
    ) -> None:
        from confluent_kafka import KafkaException, Producer

        conf = {
            "bootstrap.servers": self.bootstrap,
            "acks": str(acks),
            "linger.ms": 5,
            "compression.type": compression or "none",
        }
        producer = Producer(conf)
        errors: list[object] = []

        def delivered(msg: Msg):
            def callback(err, kmsg) -> None:
                if err is not None:
                    errors.append(err)
                    return
                msg.partition, msg.offset = kmsg.partition(), kmsg.offset()

            return callback

        for m in msgs:
            kwargs = {"key": m.key, "value": m.value, "headers": m.headers or None, "on_delivery": delivered(m)}
            if m.timestamp is not None:
                kwargs["timestamp"] = m.timestamp
            if partition is not None:
                kwargs["partition"] = partition
            while True:
                try:
                    producer.produce(topic, **kwargs)
                    break
                except BufferError:
                    producer.poll(0.05)
        remaining = producer.flush(TIMEOUT)
        if errors or remaining:
            raise KafkaException(f"delivery failed: {errors[:3]}, {remaining} undelivered")

    def consume(self, topic: str, starts: dict[int, int], expected: int) -> list[Msg]:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": unique_topic("g"),
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )
        try:
            consumer.assign([TopicPartition(topic, p, off) for p, off in starts.items()])
            got: list[Msg] = []
            deadline = time.monotonic() + TIMEOUT
            while len(got) < expected and time.monotonic() < deadline:
                for m in consumer.consume(1000, timeout=0.5):
                    if m.error():
                        raise AssertionError(f"consumer error: {m.error()}")
                    headers = [(k, v) for k, v in (m.headers() or [])]
                    got.append(Msg(m.key(), m.value(), headers, m.timestamp()[1], m.partition(), m.offset()))
            return got
        finally:
            consumer.close()

    def offsets_for_times(self, topic: str, partitions: list[int], ts: int) -> dict[int, int | None]:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": unique_topic("g")})
        try:
            found = consumer.offsets_for_times([TopicPartition(topic, p, ts) for p in partitions], timeout=TIMEOUT)
            return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in found}
        finally:
            consumer.close()


CLIENTS = [KafkaPythonClient, ConfluentClient]


def java_client(bootstrap: str) -> Any:
    """The Java client's driver (kstub.compat.clients.java.Java, 30 s per call); skips the test without java or
    mvn (a failure under CI), or with the reason `Java.unavailable` gives."""
    import pytest

    from support.external import require_programs

    require_programs("java", "mvn")
    from kstub.compat.clients.java import Java

    unavailable = Java.unavailable()
    if unavailable:
        pytest.skip(unavailable)
    return Java(bootstrap, timeout=30.0)
