"""A consumer group of the new protocol (KIP-848) for the console's and metrics' tests: confluent-kafka
consumers with ``group.protocol=consumer``, each polling in its own thread and committing what it read."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

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
