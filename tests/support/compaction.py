"""The compaction workload of the tests: many updates over a few keys, tombstones for some, and a
consumer that reads the whole partition from offset 0 into a key → value map.

Run the same way against kstub (tests/integration/test_compaction.py) and real Kafka
(tests/differential/test_log_compaction.py).
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

UPDATES = 100_000
KEYS = 1_000
TOMBSTONES = 100
#: the topic settings both brokers get (1 MiB is the smallest segment.bytes Kafka 4 accepts)
TOPIC_CONFIGS = {
    "cleanup.policy": "compact",
    "segment.bytes": str(1024 * 1024),
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
}


def key_of(i: int) -> str:
    return f"key-{i:04d}"


def create_topic(bootstrap: str, topic: str, configs: dict[str, str], replication_factor: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, 1, replication_factor, config=configs)])
    futures[topic].result(30)


def produce_workload(bootstrap: str, topic: str) -> dict[str, str]:
    """UPDATES updates over KEYS keys, then tombstones for the first TOMBSTONES keys; returns the expected map."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"})
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(err)

    def send(key: str, value: str | None) -> None:
        while True:
            try:
                producer.produce(topic, key=key.encode(), value=value and value.encode(), on_delivery=delivered)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.1)

    expected: dict[str, str] = {}
    for i in range(UPDATES):
        key = key_of((i * 7919) % KEYS)
        value = f"{key}={i:06d}:" + "x" * 40
        expected[key] = value
        send(key, value)
        if i % 1000 == 0:
            producer.poll(0)
    for k in range(TOMBSTONES):
        key = key_of(k)
        send(key, None)
        expected.pop(key, None)
    assert producer.flush(60) == 0, "messages left undelivered"
    assert not errors, errors[:3]
    return expected


def read_all(bootstrap: str, topic: str, timeout_s: float = 60) -> tuple[dict[str, str], int, list[tuple[int, str]]]:
    """Read the partition from offset 0 to its end: (the final map, records read, (offset, key) of each)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        consumer.assign([TopicPartition(topic, 0, 0)])
        state: dict[str, str] = {}
        seen: list[tuple[int, str]] = []
        deadline = time.monotonic() + timeout_s
        done = high == 0
        while not done:
            assert time.monotonic() < deadline, f"read {len(seen)} records, not at offset {high} yet"
            for msg in consumer.consume(1000, timeout=1.0):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        done = msg.offset() >= high
                        continue
                    raise KafkaException(err)
                key = msg.key().decode()
                seen.append((msg.offset(), key))
                if msg.value() is None:
                    state.pop(key, None)
                else:
                    state[key] = msg.value().decode()
        return state, len(seen), seen
    finally:
        consumer.close()
