"""A consumer group of the new protocol (KIP-848) survives its coordinator's crash in the middle of a
reconciliation.

Three brokers, a 6-partition topic with replication factor 3, a producer that
keeps sending, and confluent-kafka members with ``group.protocol=consumer``
that commit after every batch. Two members share the partitions; a third
joins, and while the group reconciles (members revoking partitions for it)
the coordinator's broker is killed. Once the controller fences it the group
moves to another broker with its members, epochs and assignments: the three
members end up with two partitions each, every acknowledged message is
consumed, and no committed offset ever goes backwards (sampled all along, and
fetched from the new coordinator).
"""

from __future__ import annotations

import threading
import time

import pytest
from group_members import Member, Received, Timeline, owners_never_overlap, wait_for
from test_coordinator_failover import Producing, find_coordinator, group_on

from kstub.cluster.consumer_group import ConsumerGroupState
from kstub.protocol import ErrorCode

from clients import unique_topic
from multibroker import bootstrap_of, create_topic, wait_until
from support.raw import RawClient

PARTITIONS = 6
CONFIG = {
    "broker.session.timeout.ms": "1500",
    "replica.lag.time.max.ms": "10000",
    "group.consumer.heartbeat.interval.ms": 300,
    "group.consumer.min.heartbeat.interval.ms": 300,
    "group.consumer.session.timeout.ms": 6000,
    "group.consumer.min.session.timeout.ms": 1000,
}


class NewProtocolMember(Member):
    """confluent-kafka, group.protocol=consumer; a commit that fails while the coordinator moves is retried
    with the next batch (at-least-once)."""

    client = "confluent-kafka"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.commit_errors: list[str] = []

    def run(self, stop: threading.Event) -> None:
        from confluent_kafka import Consumer, KafkaError, KafkaException

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": self.group,
                "client.id": self.name,
                "group.protocol": "consumer",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "topic.metadata.refresh.interval.ms": 3000,
                "retry.backoff.ms": 50,
            }
        )
        consumer.subscribe(
            [self.topic],
            on_assign=lambda c, parts: self.assigned(p.partition for p in parts),
            on_revoke=lambda c, parts: self.revoked(p.partition for p in parts),
            on_lost=lambda c, parts: self.revoked(p.partition for p in parts),
        )
        dirty = False
        try:
            while not stop.is_set():
                msgs = consumer.consume(500, timeout=0.1)
                good = [m for m in msgs if not m.error()]
                if good:
                    self.received([Received(m.partition(), m.offset(), m.value()) for m in good])
                    dirty = True
                if dirty:
                    try:
                        consumer.commit(asynchronous=False)
                        dirty = False
                    except KafkaException as exc:
                        if exc.args[0].code() == KafkaError._NO_OFFSET:
                            dirty = False
                        else:
                            self.commit_errors.append(repr(exc))
        finally:
            self.closing()
            consumer.close()


class CommittedSampler:
    """Reads the group's committed offsets from the model until stopped; records any that went backwards."""

    def __init__(self, kc, group: str, topic: str) -> None:
        self.kc, self.group, self.topic = kc, group, topic
        self.highest: dict[int, int] = {}
        self.backwards: list[tuple[int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _snapshot(self) -> dict[int, int]:
        committed = self.kc.cluster.groups.committed(self.group)
        return {p: o.offset for (t, p), o in committed.items() if t == self.topic}

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for p, offset in self.kc.call(self._snapshot).items():
                if offset < self.highest.get(p, -1):
                    self.backwards.append((p, self.highest[p], offset))
                self.highest[p] = max(offset, self.highest.get(p, -1))

    def start(self) -> CommittedSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def offset_fetch(kc, broker_id: int, group: str, topic: str) -> tuple[ErrorCode, dict[int, int]]:
    """OffsetFetch v8 sent to `broker_id`: the group's error and committed offsets."""
    wanted = [{"group_id": group, "topics": [{"name": topic, "partition_indexes": list(range(PARTITIONS))}]}]
    with RawClient(bootstrap_of(kc, broker_id)) as c:
        (g,) = c.request(9, 8, {"groups": wanted}).groups
    return ErrorCode(g.error_code), {p.partition_index: p.committed_offset for t in g.topics for p in t.partitions}


def state(kc, group: str) -> ConsumerGroupState | None:
    g = kc.cluster.groups.consumer.groups.get(group)
    return None if g is None else g.state


@pytest.mark.kstub(brokers=3, config=CONFIG)
def test_the_coordinator_is_killed_mid_reconciliation_and_the_group_recovers(kstub_cluster) -> None:
    kc = kstub_cluster
    topic = unique_topic("cgfail")
    create_topic(kc, topic, PARTITIONS, 3, min_insync_replicas="2")
    group = group_on(kc, 1)  # not the controller (0)
    timeline = Timeline()
    producer = Producing(kc.bootstrap_servers, topic).start()
    sampler = CommittedSampler(kc, group, topic).start()
    members = [NewProtocolMember(f"m{i}", kc.bootstrap_servers, group, topic, timeline).start() for i in range(2)]
    try:
        wait_for(lambda: sorted(len(m.assignment) for m in members) == [3, 3], "three partitions each", members)
        wait_for(lambda: len(sampler.highest) == PARTITIONS, "commits on every partition", members)
        error, before = offset_fetch(kc, 1, group, topic)
        assert error == ErrorCode.NONE

        members.append(NewProtocolMember("m2", kc.bootstrap_servers, group, topic, timeline).start())
        reconciling = (ConsumerGroupState.ASSIGNING, ConsumerGroupState.RECONCILING)

        async def kill_while_reconciling() -> bool:
            # the state seen and the kill in one step of the cluster's thread: the kill is mid-reconciliation
            if state(kc, group) not in reconciling:
                return False
            await kc.cluster.control.kill_broker(1)
            return True

        wait_for(lambda: kc.call_async(kill_while_reconciling), "the group to reconcile for its new member", members)
        killed_at = time.monotonic()
        wait_until(kc, lambda: not kc.cluster.brokers[1].alive, what="the dead broker's session to expire")
        new = find_coordinator(kc, group)
        assert new in (0, 2)
        error, after = offset_fetch(kc, new, group, topic)
        assert error == ErrorCode.NONE and all(after[p] >= before[p] for p in range(PARTITIONS))

        wait_for(lambda: sorted(len(m.assignment) for m in members) == [2, 2, 2], "two partitions each", members)
        wait_for(lambda: kc.call(state, kc, group) is ConsumerGroupState.STABLE, "a stable group", members)
        wait_for(lambda: len(producer.acked_after(killed_at)) >= 50, "messages acknowledged after the kill", members)
        producer.stop()
        sent = producer.values()
        consumed = lambda: {r.value for m in members for r in m.records}  # noqa: E731
        wait_for(lambda: sent <= consumed(), "every acknowledged message consumed", members)
        ends = kc.call(lambda: [kc.cluster.partition(topic, p).high_watermark for p in range(PARTITIONS)])
        wait_for(
            lambda: [sampler.highest.get(p) for p in range(PARTITIONS)] == ends,
            "the group to commit the end of every partition",
            members,
        )
        error, fetched = offset_fetch(kc, new, group, topic)
        assert error == ErrorCode.NONE and [fetched[p] for p in range(PARTITIONS)] == ends
    finally:
        for m in members:
            if m._thread.is_alive():
                m.stop()
        sampler.stop()
    assert sampler.backwards == []
    owners_never_overlap(timeline.snapshot())
