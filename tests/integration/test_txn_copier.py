"""The confluent-kafka copier of tests/integration/test_transactions_eos.py (txn_copier.py) when its group
coordinator's broker is killed between two transactions.

librdkafka (confluentinc/librdkafka#5511 and #5456, 2.16 still) caches each group's coordinator; once the
broker is fenced it leaves the Metadata (as in Kafka, which lists only unfenced brokers), the producer drops
it, and a send_offsets_to_transaction asking the cached coordinator then waits for that dropped broker
forever, past its timeout: the copier hung so in a CI run of the EOS test, its transaction aborted by the
coordinator's timeout a minute later and nothing copied after. Here the race is made certain: the group is
coordinated by broker 0, the transactional id and every partition leader are elsewhere, the copier commits
one transaction (the group's coordinator cached), broker 0 is killed, and once the group has moved the
producer reads the Metadata without broker 0. The copier must carry on and copy each record exactly once.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from txn_copier import Copier

from multibroker import wait_until

FAILOVER = {"replica.lag.time.max.ms": "2000", "broker.session.timeout.ms": "1500"}
RECORDS = 12


def _read_committed(bootstrap: str, topic: str, count: int, timeout: float = 60.0) -> list[tuple[str, bytes]]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex[:8]}", "isolation.level": "read_committed"}
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            got += [(m.key().decode(), m.value()) for m in consumer.consume(100, 0.2) if not m.error()]
        # anything more (a duplicate) shows once the reader has caught up with the end
        got += [(m.key().decode(), m.value()) for m in consumer.consume(100, 1.0) if not m.error()]
    finally:
        consumer.close()
    return got


@pytest.mark.kstub(brokers=3, config=FAILOVER)
def test_copier_carries_on_when_its_group_coordinator_dies_and_leaves_the_metadata(kstub_cluster):
    kc = kstub_cluster
    bootstrap = kc.bootstrap_servers
    name = uuid.uuid4().hex[:8]
    source, sink = f"in-{name}", f"out-{name}"

    def coordinated_by(node: int, prefix: str, which) -> str:
        return next(
            k for k in (f"{prefix}-{i}" for i in range(10_000)) if kc.call(lambda k=k: which(k).node_id) == node
        )

    group = coordinated_by(0, f"g-{name}", lambda g: kc.cluster.groups.coordinator_for(g))
    tid = coordinated_by(1, f"t-{name}", lambda t: kc.cluster.transactions.coordinator_for(t))
    for topic in (source, sink):  # led by brokers 1 and 2 only: killing 0 moves the group and nothing else
        kc.call(lambda t=topic: kc.cluster.create_topic(t, configs={}, assignments={0: [1, 2]}))
    plain = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(RECORDS):
        plain.produce(source, f"m{i}".encode(), partition=0)
    assert plain.flush(30) == 0

    copier = Copier(bootstrap, source, sink, group, tid, send_offsets_timeout=2.0)
    copied = threading.Event()
    failure: list[BaseException] = []

    def copy_the_rest() -> None:
        try:
            while copier.done < RECORDS:
                copier.copy(copier.next_batch())
            copied.set()
        except BaseException as exc:
            failure.append(exc)
            copied.set()

    # one transaction: the producer has asked (and cached) the group's coordinator, broker 0
    while not copier.copy(batch := copier.next_batch()):
        pass
    first = len(batch)
    kc.control.kill_broker(0)
    wait_until(kc, lambda: kc.cluster.groups.coordinator_for(group).node_id != 0, what="the group's new coordinator")
    listed = {b.id for b in copier.producer.list_topics(timeout=10).brokers.values()}
    assert listed == {1, 2}  # the fenced broker is out of the Metadata: the producer drops it

    worker = threading.Thread(target=copy_the_rest, daemon=True)
    worker.start()
    assert copied.wait(120), f"the copier is stuck after {copier.done} records"
    assert not failure, failure
    got = _read_committed(bootstrap, sink, RECORDS)
    assert sorted(got) == sorted((f"0:{i}", f"M{i}".encode()) for i in range(RECORDS)), got
    assert first < RECORDS
