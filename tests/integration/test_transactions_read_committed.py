"""read_committed consumers against transactions (needs the log side: LSO, aborted transactions in Fetch).

Written on the coordinator's branch, to run once the log side is merged: a
transactional producer commits and aborts across 3 partitions on 3 brokers
(RF=3); a read_committed consumer sees exactly the committed records, in
order, and no control record; read_uncommitted sees both; a fenced zombie's
records never become visible; consume-transform-produce with
send_offsets_to_transaction yields each input once.

On the coordinator's branch alone the first two fail (aborted and zombie
records reach read_committed consumers: the log side is missing); that is
what they are for.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from multibroker import create_topic

THREE = {"replica.lag.time.max.ms": "5000"}


def _consume(bootstrap: str, topic: str, isolation: str, expected: int, *, polls: int = 100) -> list[tuple[int, bytes]]:
    """(partition, value) in each partition's order, until `expected` records (or `polls` empty polls)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"rc-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    c.subscribe([topic])
    got: list[tuple[int, bytes]] = []
    empty = 0
    try:
        while len(got) < expected and empty < polls:
            m = c.poll(0.2)
            if m is None or m.error():
                empty += 1
                continue
            got.append((m.partition(), m.value()))
        # a little longer: nothing more may arrive
        for _ in range(10):
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append((m.partition(), m.value()))
    finally:
        c.close()
    return got


def _by_partition(records: list[tuple[int, bytes]]) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for partition, value in records:
        out.setdefault(partition, []).append(value)
    return out


@pytest.mark.kstub(brokers=3, config=THREE)
def test_read_committed_sees_exactly_the_committed_records(kstub_cluster):
    bootstrap = kstub_cluster.bootstrap_servers
    topic = f"rc-{uuid.uuid4().hex[:8]}"
    create_topic(kstub_cluster, topic, partitions=3, rf=3)
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"rc-{uuid.uuid4().hex[:8]}"})
    p.init_transactions(30)
    expected_committed: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    for round_ in range(3):
        for commit in (True, False):
            p.begin_transaction()
            for i in range(6):
                value = f"{'c' if commit else 'a'}{round_}-{i}".encode()
                p.produce(topic, value, partition=i % 3)
                if commit:
                    expected_committed[i % 3].append(value)
            if commit:
                p.commit_transaction(30)
            else:
                p.flush(30)
                p.abort_transaction(30)
    committed = _consume(bootstrap, topic, "read_committed", 18)
    assert _by_partition(committed) == expected_committed
    everything = _consume(bootstrap, topic, "read_uncommitted", 36)
    assert len(everything) == 36


@pytest.mark.kstub(brokers=3, config=THREE)
def test_a_fenced_zombies_records_stay_invisible(kstub_cluster):
    bootstrap = kstub_cluster.bootstrap_servers
    topic = f"rc-{uuid.uuid4().hex[:8]}"
    create_topic(kstub_cluster, topic, partitions=3, rf=3)
    tid = f"rc-{uuid.uuid4().hex[:8]}"
    zombie = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
    zombie.init_transactions(30)
    zombie.begin_transaction()
    for i in range(3):
        zombie.produce(topic, b"zombie", partition=i)
    zombie.flush(30)
    fresh = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
    fresh.init_transactions(30)
    fresh.begin_transaction()
    for i in range(3):
        fresh.produce(topic, b"fresh", partition=i)
    fresh.commit_transaction(30)
    with pytest.raises(KafkaException):
        zombie.commit_transaction(10)
    got = _consume(bootstrap, topic, "read_committed", 3)
    assert sorted(v for _, v in got) == [b"fresh"] * 3


@pytest.mark.kstub(brokers=3, config=THREE)
def test_consume_transform_produce_yields_each_input_once(kstub_cluster):
    bootstrap = kstub_cluster.bootstrap_servers
    source, sink = f"src-{uuid.uuid4().hex[:8]}", f"dst-{uuid.uuid4().hex[:8]}"
    create_topic(kstub_cluster, source, partitions=3, rf=3)
    create_topic(kstub_cluster, sink, partitions=3, rf=3)
    plain = Producer({"bootstrap.servers": bootstrap})
    for i in range(30):
        plain.produce(source, f"m{i}".encode(), partition=i % 3)
    plain.flush(30)
    group = f"ctp-{uuid.uuid4().hex[:8]}"
    tid = f"ctp-{uuid.uuid4().hex[:8]}"

    def run(limit: int, commit_last: bool) -> int:
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
        producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
        producer.init_transactions(30)
        done = 0
        empty = 0
        try:
            while done < limit and empty < 25:
                batch = consumer.consume(5, 0.2)
                batch = [m for m in batch if not m.error()]
                if not batch:
                    empty += 1
                    continue
                producer.begin_transaction()
                for m in batch:
                    producer.produce(sink, m.value().upper(), partition=m.partition())
                positions = consumer.position(consumer.assignment())
                producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
                done += len(batch)
                if done >= limit and not commit_last:
                    producer.flush(30)
                    return done  # "crash": the transaction stays open, the next instance fences it
                producer.commit_transaction(30)
        finally:
            consumer.close()
        return done

    run(12, commit_last=False)
    run(100, commit_last=True)
    out = _consume(bootstrap, sink, "read_committed", 30)
    assert sorted(v for _, v in out) == sorted(f"M{i}".encode() for i in range(30))
    committed = Consumer({"bootstrap.servers": bootstrap, "group.id": group}).committed(
        [TopicPartition(source, k) for k in range(3)], 10
    )
    assert [tp.offset for tp in committed] == [10, 10, 10]
