"""A consumer group of the new protocol (KIP-848) for the console's and metrics' tests: confluent-kafka
consumers with ``group.protocol=consumer``, each polling in its own thread and committing what it read."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kstub.embedded import EmbeddedCluster

#: the broker drives the timing in this protocol: short heartbeats make the assignment quick
BROKER_CONFIG = {
    "group.consumer.heartbeat.interval.ms": "300",
    "group.consumer.min.heartbeat.interval.ms": "300",
    "group.consumer.session.timeout.ms": "6000",
    "group.consumer.min.session.timeout.ms": "1000",
}


class ModernMember(threading.Thread):
    def __init__(self, bootstrap: str, group: str, topic: str, client_id: str) -> None:
        from confluent_kafka import Consumer

        super().__init__(daemon=True)
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "client.id": client_id,
                "group.protocol": "consumer",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.subscribe([topic])
        self.commit = True
        self.running = True
        self.read = 0

    def run(self) -> None:
        while self.running:
            msg = self.consumer.poll(0.1)
            if msg is None or msg.error():
                continue
            self.read += 1
            if self.commit:
                try:
                    self.consumer.commit(message=msg, asynchronous=False)
                except Exception:  # a reassignment under way: a later message commits
                    pass
        self.consumer.close()


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def stop(members: list[ModernMember]) -> None:
    for m in members:
        m.running = False
    for m in members:
        m.join(30)


@contextmanager
def settled_group(kc: EmbeddedCluster) -> Iterator[Any]:
    """Topic ``flows`` (4 partitions, replication factor 3) with 2 records in each partition and a stable
    group ``modern`` of two members that committed them all, then commit no more; yields a producer to
    ``flows``; the members stop on exit."""
    from confluent_kafka import Producer

    from multibroker import create_topic

    create_topic(kc, "flows", 4, 3)
    producer = Producer({"bootstrap.servers": kc.bootstrap_servers, "acks": "all"})
    for i in range(8):
        producer.produce("flows", b"%d" % i, partition=i % 4)
    producer.flush(30)
    members = [ModernMember(kc.bootstrap_servers, "modern", "flows", f"modern-{i}") for i in (1, 2)]
    for m in members:
        m.start()
    try:

        def settled() -> bool:
            cgroup = kc.cluster.groups.consumer.groups.get("modern")
            keeper = kc.cluster.groups.groups.get("modern")
            return (
                cgroup is not None
                and cgroup.state.value == "Stable"
                and len(cgroup.members) == 2
                and keeper is not None
                and sum(o.offset for o in keeper.offsets.values()) == 8
            )

        wait_for(lambda: kc.call(settled), 60, "a stable two-member consumer group that committed all 8 records")
        for m in members:
            m.commit = False
        yield producer
    finally:
        stop(members)
