"""Real clients as consumer-group members, each on its own thread, behind one interface.

A `Member` subscribes to a topic with a real client (kafka-python, confluent-kafka,
aiokafka), polls in a loop, records what it receives, commits synchronously
after each batch, and logs its rebalance callbacks on a shared `Timeline`. All
of a client's calls happen on the member's thread (the clients are not
thread-safe); the test only reads the recorded state (under a lock) and asks
the member to stop, which closes the client (a LeaveGroup) on that thread.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TIMEOUT = 30.0
#: client settings that make rebalances quick: frequent heartbeats, short sessions
HEARTBEAT_MS = 300
SESSION_MS = 6000


@dataclass(frozen=True)
class Event:
    seq: int
    member: str
    kind: str  # "assigned", "revoked", "closing"
    partitions: frozenset[int]


class Timeline:
    """Every member's rebalance callbacks, in the order they happened."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self.events: list[Event] = []

    def add(self, member: str, kind: str, partitions) -> None:
        with self._lock:
            self.events.append(Event(next(self._seq), member, kind, frozenset(partitions)))

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)


def owners_never_overlap(events: list[Event]) -> None:
    """Replay the callbacks: no partition is ever owned by two members at once."""
    owned: dict[str, set[int]] = {}
    for e in events:
        if e.kind == "assigned":
            for other, parts in owned.items():
                assert other == e.member or not (parts & e.partitions), f"{e} while {other} owns {parts}"
            owned.setdefault(e.member, set()).update(e.partitions)
        elif e.kind == "revoked":
            owned.get(e.member, set()).difference_update(e.partitions)
        else:  # closing: it stops fetching and leaves
            owned.pop(e.member, None)


@dataclass
class Received:
    partition: int
    offset: int
    value: bytes


@dataclass
class Member:
    """Base: the thread, the shared state, and the waiting helpers."""

    name: str
    bootstrap: str
    group: str
    topic: str
    timeline: Timeline
    config: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._assignment: set[int] = set()
        self._records: list[Received] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)

    # --- called on the member's thread ---------------------------------------

    def assigned(self, partitions) -> None:
        parts = {p for p in partitions}
        with self._lock:
            self._assignment |= parts
        self.timeline.add(self.name, "assigned", parts)

    def revoked(self, partitions) -> None:
        parts = {p for p in partitions}
        with self._lock:
            self._assignment -= parts
        self.timeline.add(self.name, "revoked", parts)

    def received(self, records: list[Received]) -> None:
        with self._lock:
            self._records.extend(records)

    def closing(self) -> None:
        with self._lock:
            self._assignment = set()
        self.timeline.add(self.name, "closing", ())

    def _main(self) -> None:
        try:
            self.run(self._stop)
        except BaseException as exc:  # reported to the test
            self.error = exc

    def run(self, stop: threading.Event) -> None:
        raise NotImplementedError

    # --- called by the test ---------------------------------------------------

    def start(self) -> Member:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive(), f"{self.name} did not stop"
        if self.error is not None:
            raise AssertionError(f"{self.name} failed") from self.error

    @property
    def assignment(self) -> set[int]:
        with self._lock:
            return set(self._assignment)

    @property
    def records(self) -> list[Received]:
        with self._lock:
            return list(self._records)

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"{self.name} failed") from self.error


def wait_for(condition: Callable[[], bool], what: str, members: list[Member] = (), timeout: float = TIMEOUT) -> None:
    """Wait, a bounded time, for a condition on the members' recorded state."""
    deadline = time.monotonic() + timeout
    while not condition():
        for m in members:
            m.check()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def taken_over_from_a_killed_member(survivor: Member, script: str, partitions: int, *, after_s: float) -> None:
    """Run `script` (a member of the survivor's group, in a child process) until it holds half of the
    `partitions`, kill -9 it (no leave), and wait until `survivor` owns them all: not sooner than
    `after_s` seconds after the kill (the dead member's session could not have expired before)."""
    victim = subprocess.Popen([sys.executable, "-c", script])
    try:
        wait_for(lambda: len(survivor.assignment) == partitions // 2, "the victim to get its share", [survivor])
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        killed = time.monotonic()
        wait_for(lambda: survivor.assignment == set(range(partitions)), "the survivor to take over", [survivor])
        assert time.monotonic() - killed > after_s, "not before the victim's session could expire"
    finally:
        if victim.poll() is None:
            victim.kill()
        survivor.stop()


def wait_assignments(members: list[Member], partitions: int) -> None:
    """Until the members' assignments are disjoint and cover every partition, each member having some."""

    def settled() -> bool:
        sets = [m.assignment for m in members]
        return all(sets) and sum(len(s) for s in sets) == partitions and set().union(*sets) == set(range(partitions))

    wait_for(settled, f"{[m.name for m in members]} to share {partitions} partitions", members)


class KafkaPythonMember(Member):
    client = "kafka-python"

    def settings(self) -> dict[str, Any]:
        """The consumer's configuration (a variant changes it here)."""
        return {
            "bootstrap_servers": self.bootstrap,
            "group_id": self.group,
            "client_id": self.name,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "heartbeat_interval_ms": HEARTBEAT_MS,
            "session_timeout_ms": SESSION_MS,
            **self.config,
        }

    def subscribed(self) -> Any:
        """A KafkaConsumer of `settings()` subscribed to the topic, its rebalance callbacks on the timeline."""
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        member = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                member.revoked(tp.partition for tp in revoked)

            def on_partitions_assigned(self, assigned):
                member.assigned(tp.partition for tp in assigned)

        consumer = KafkaConsumer(**self.settings())
        consumer.subscribe([self.topic], listener=Listener())
        return consumer

    def run(self, stop: threading.Event) -> None:
        consumer = self.subscribed()
        try:
            while not stop.is_set():
                # kafka-python 3.0.12 can lose the end of a JoinGroup/SyncGroup round that outlasts
                # one poll() (a client race, seen as a member that never heartbeats again): a poll
                # timeout longer than a rebalance here keeps each round inside one poll() call.
                batch = consumer.poll(timeout_ms=2000)
                got = [Received(tp.partition, r.offset, r.value) for tp, rs in batch.items() for r in rs]
                if got:
                    self.received(got)
                    consumer.commit()
        finally:
            self.closing()
            consumer.close()


class ConfluentMember(Member):
    client = "confluent-kafka"

    def settings(self) -> dict[str, Any]:
        """The consumer's configuration (a variant changes it here)."""
        return {
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group,
            "client.id": self.name,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "heartbeat.interval.ms": HEARTBEAT_MS,
            "session.timeout.ms": SESSION_MS,
            "partition.assignment.strategy": "range",
            **self.config,
        }

    def subscribed(self) -> Any:
        """A Consumer of `settings()` subscribed to the topic, its rebalance callbacks on the timeline."""
        from confluent_kafka import Consumer

        consumer = Consumer(self.settings())
        consumer.subscribe(
            [self.topic],
            on_assign=lambda c, parts: self.assigned(p.partition for p in parts),
            on_revoke=lambda c, parts: self.revoked(p.partition for p in parts),
        )
        return consumer

    def run(self, stop: threading.Event) -> None:
        consumer = self.subscribed()
        try:
            while not stop.is_set():
                msgs = consumer.consume(500, timeout=0.1)
                for m in msgs:
                    if m.error():
                        raise AssertionError(f"consumer error: {m.error()}")
                if msgs:
                    self.received([Received(m.partition(), m.offset(), m.value()) for m in msgs])
                    consumer.commit(asynchronous=False)
        finally:
            self.closing()
            consumer.close()


class AiokafkaMember(Member):
    client = "aiokafka"

    def run(self, stop: threading.Event) -> None:
        asyncio.run(self._run(stop))

    async def _run(self, stop: threading.Event) -> None:
        from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

        member = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                member.revoked(tp.partition for tp in revoked)

            def on_partitions_assigned(self, assigned):
                member.assigned(tp.partition for tp in assigned)

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            client_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            heartbeat_interval_ms=HEARTBEAT_MS,
            session_timeout_ms=SESSION_MS,
            **self.config,
        )
        await consumer.start()
        try:
            consumer.subscribe([self.topic], listener=Listener())
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100)
                got = [Received(tp.partition, r.offset, r.value) for tp, rs in batches.items() for r in rs]
                if got:
                    self.received(got)
                    await consumer.commit()
        finally:
            self.closing()
            await consumer.stop()


MEMBERS = [KafkaPythonMember, ConfluentMember, AiokafkaMember]
