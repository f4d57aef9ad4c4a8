"""The group coordinator moves when brokers fail; real consumer groups carry on.

Three brokers, a 4-partition topic with replication factor 3, a producer that
keeps sending, and two members of one group (kafka-python, or confluent-kafka)
that consume and commit after every batch. A group's coordinator is the
leader of its __consumer_offsets partition, so the tests pick group ids that
hash onto the broker they want to fail, then:

- stop the coordinator: FindCoordinator names another broker at once, the
  stopped one is gone, other brokers answer NOT_COORDINATOR, the offsets
  committed before are still there, and the members carry on with their
  member ids and generation (no rebalance, so no message is consumed twice).
  When the broker returns the group stays where it is; preferred leader
  election moves it back, and then the broker it left answers NOT_COORDINATOR;
- stop the controller (coordinating nothing of this group): a new controller
  is elected, the group does not notice;
- kill the coordinator (also the controller): FindCoordinator names the dead
  broker until its session expires (broker.session.timeout.ms), then the group
  moves and the members recover.

Each ends the same way: every acknowledged message was consumed at least
once, the group committed up to the end of every partition, and a restarted
member of the group reads exactly the messages produced afterwards: nothing
again, nothing skipped.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from typing import Any

import group_members
import pytest
from group_members import Member, Received, Timeline, owners_never_overlap, wait_for

from kstub.protocol import ErrorCode

from clients import unique_topic
from multibroker import bootstrap_of, create_topic, wait_until
from support.groups_raw import heartbeat, join, join_body, join_new, sync, sync_body, wait_state
from support.raw import RawClient

PARTITIONS = 4
BROKER_SESSION_MS = 1500
CONFIG = {"broker.session.timeout.ms": str(BROKER_SESSION_MS), "replica.lag.time.max.ms": "10000"}
TIMEOUT = 20.0


# --- members that treat a failed commit as at-least-once consumers do: retry with the next one ------------


class KafkaPythonMember(group_members.KafkaPythonMember):
    """group_members' kafka-python member that keeps the commits refused during a failover."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.commit_errors: list[str] = []

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "retry_backoff_ms": 50, "metadata_max_age_ms": 3000}

    def run(self, stop: threading.Event) -> None:
        from kafka.errors import KafkaError

        consumer = self.subscribed()
        dirty = False
        try:
            while not stop.is_set():
                # a poll longer than a rebalance round (see group_members.KafkaPythonMember)
                batch = consumer.poll(timeout_ms=1000)
                got = [Received(tp.partition, r.offset, r.value) for tp, rs in batch.items() for r in rs]
                if got:
                    self.received(got)
                    dirty = True
                if dirty:
                    try:
                        consumer.commit(timeout_ms=10_000)
                        dirty = False
                    except KafkaError as exc:
                        self.commit_errors.append(repr(exc))
        finally:
            self.closing()
            consumer.close()


class ConfluentMember(group_members.ConfluentMember):
    """group_members' confluent-kafka member that keeps the commits refused during a failover."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.commit_errors: list[str] = []

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "topic.metadata.refresh.interval.ms": 3000, "retry.backoff.ms": 50}

    def run(self, stop: threading.Event) -> None:
        from confluent_kafka import KafkaError, KafkaException

        consumer = self.subscribed()
        dirty = False
        try:
            while not stop.is_set():
                msgs = consumer.consume(500, timeout=0.1)
                for m in msgs:
                    if m.error():
                        raise AssertionError(f"consumer error: {m.error()}")
                if msgs:
                    self.received([Received(m.partition(), m.offset(), m.value()) for m in msgs])
                    dirty = True
                if dirty:
                    try:
                        consumer.commit(asynchronous=False)
                        dirty = False
                    except KafkaException as exc:
                        if exc.args[0].code() == KafkaError._NO_OFFSET:
                            dirty = False  # the failed commit had gone through after all
                        else:
                            self.commit_errors.append(repr(exc))
        finally:
            self.closing()
            consumer.close()


MEMBERS = [KafkaPythonMember, ConfluentMember]


# --- a producer that keeps sending ----------------------------------------------------------------------


class Producing:
    """A confluent-kafka producer (acks=all, idempotent) sending until stopped; what was acknowledged, when."""

    def __init__(self, bootstrap: str, topic: str, prefix: str = "v") -> None:
        self.bootstrap, self.topic, self.prefix = bootstrap, topic, prefix
        self.lock = threading.Lock()
        self.acked: dict[bytes, tuple[int, int, float]] = {}
        self.failed: list[object] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from confluent_kafka import Producer

        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "retry.backoff.ms": 50,
                "topic.metadata.refresh.interval.ms": 3000,
            }
        )

        def delivered(err, msg) -> None:
            if err is not None:
                self.failed.append((msg.value(), err))
            else:
                with self.lock:
                    self.acked[msg.value()] = (msg.partition(), msg.offset(), time.monotonic())

        i = 0
        while not self._stop.is_set():
            producer.produce(
                self.topic, key=f"k{i}".encode(), value=f"{self.prefix}-{i}".encode(), on_delivery=delivered
            )
            producer.poll(0)
            i += 1
            time.sleep(0.01)
        assert producer.flush(30) == 0, "the producer could not deliver everything"

    def start(self) -> Producing:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(40)
        assert not self._thread.is_alive(), "the producer did not finish"
        assert not self.failed, self.failed[:3]

    def acked_after(self, when: float) -> set[bytes]:
        with self.lock:
            return {v for v, (_, _, t) in self.acked.items() if t > when}

    def values(self) -> set[bytes]:
        with self.lock:
            return set(self.acked)


# --- the wire view -------------------------------------------------------------------------------------


def live_addresses(kc) -> dict[int, str]:
    """The brokers that answer: registered, and their process up (a killed one stays registered a while)."""
    return kc.call(lambda: {b.node_id: f"{b.advertised_host}:{b.port}" for b in kc.cluster.live_brokers() if b.running})


def find_coordinator(kc, group: str) -> int:
    """FindCoordinator v4 asked of every live broker: they must agree."""
    answers = set()
    for address in live_addresses(kc).values():
        with RawClient(address) as c:
            (answer,) = c.request(10, 4, {"key_type": 0, "coordinator_keys": [group]}).coordinators
            assert answer.error_code == ErrorCode.NONE
            answers.add(answer.node_id)
    assert len(answers) == 1, f"brokers disagree on the coordinator of {group}: {answers}"
    return answers.pop()


def controller_id(kc) -> int:
    (address, *_) = live_addresses(kc).values()
    with RawClient(address) as c:
        return c.request(3, 12, {"topics": []}).controller_id


def offset_fetch(kc, broker_id: int, group: str, topic: str) -> tuple[ErrorCode, dict[int, int]]:
    """OffsetFetch v8 sent to `broker_id`: the group's error and committed offsets."""
    with RawClient(bootstrap_of(kc, broker_id)) as c:
        body = c.request(
            9,
            8,
            {
                "groups": [
                    {"group_id": group, "topics": [{"name": topic, "partition_indexes": list(range(PARTITIONS))}]}
                ]
            },
        )
    (g,) = body.groups
    offsets = {p.partition_index: p.committed_offset for t in g.topics for p in t.partitions}
    return ErrorCode(g.error_code), offsets


def group_on(kc, broker_id: int) -> str:
    """A fresh group id whose coordinator is `broker_id` (its offsets partition's leader)."""
    while True:
        group = f"g-{uuid.uuid4().hex[:8]}"
        if kc.call(lambda g=group: kc.cluster.groups.coordinator_for(g).node_id) == broker_id:
            return group


def membership(kc, group: str) -> tuple[int, list[str]]:
    def snap():
        g = kc.cluster.groups.groups[group]
        return g.generation_id, sorted(g.members)

    return kc.call(snap)


def refused(kc, broker_id: int) -> bool:
    try:
        socket.create_connection(tuple(bootstrap_of(kc, broker_id).rsplit(":", 1)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


# --- one group's run -----------------------------------------------------------------------------------


class GroupRun:
    """A producer and two members of `group`, and the checks every test ends with."""

    def __init__(self, kc, member_cls: type[Member], topic: str, group: str) -> None:
        self.kc, self.member_cls, self.topic, self.group = kc, member_cls, topic, group
        self.timeline = Timeline()
        self.producer = Producing(kc.bootstrap_servers, topic)
        self.members = [
            member_cls(f"{member_cls.client}-{i}", kc.bootstrap_servers, group, topic, self.timeline) for i in range(2)
        ]

    def start(self) -> None:
        self.producer.start()
        for m in self.members:
            m.start()

        def settled() -> bool:
            sets = [m.assignment for m in self.members]
            return all(sets) and sorted(p for s in sets for p in s) == list(range(PARTITIONS))

        wait_for(settled, "both members to share the partitions", self.members)
        wait_for(lambda: all(self.committed_in_model()), "commits on every partition", self.members)
        self.settled_events = len(self.timeline.snapshot())
        self.membership = membership(self.kc, self.group)

    def consumed(self) -> list[Received]:
        return [r for m in self.members for r in m.records]

    def committed_in_model(self) -> list[int]:
        def snap():
            committed = self.kc.cluster.groups.committed(self.group)
            return [committed[(self.topic, p)].offset if (self.topic, p) in committed else 0 for p in range(PARTITIONS)]

        return self.kc.call(snap)

    def wait_consumed_after(self, when: float, what: str) -> None:
        """Until messages acknowledged after `when` have been consumed (some of them, then all of a snapshot)."""
        wait_for(lambda: len(self.producer.acked_after(when)) >= 20, f"messages acknowledged {what}", self.members)
        wanted = self.producer.acked_after(when)
        wait_for(
            lambda: wanted <= {r.value for r in self.consumed()}, f"messages acknowledged {what} consumed", self.members
        )

    def wait_commits_advance(self, what: str) -> None:
        before = self.committed_in_model()
        wait_for(
            lambda: all(a > b for a, b in zip(self.committed_in_model(), before, strict=True)),
            f"commits on every partition {what}",
            self.members,
        )

    def finish(self) -> None:
        """Stop producing; every acknowledged message consumed and committed; then the restart check."""
        self.producer.stop()
        sent = self.producer.values()
        wait_for(
            lambda: sent <= {r.value for r in self.consumed()}, "every acknowledged message consumed", self.members
        )

        def all_committed() -> bool:
            ends = self.kc.call(
                lambda: [self.kc.cluster.partition(self.topic, p).high_watermark for p in range(PARTITIONS)]
            )
            return self.committed_in_model() == ends

        wait_for(all_committed, "the group to commit the end of every partition", self.members)
        # No rebalance happened: the same members in the same generation, the same assignment all along,
        # hence no message consumed twice.
        assert membership(self.kc, self.group) == self.membership
        events = self.timeline.snapshot()
        assert len(events) == self.settled_events, f"a rebalance: {events[self.settled_events :]}"
        values = [r.value for r in self.consumed()]
        assert len(values) == len(set(values)), "messages consumed twice without a rebalance"
        for m in self.members:
            m.stop()
        owners_never_overlap(self.timeline.snapshot())
        committed = self.committed_in_model()
        error, fetched = offset_fetch(self.kc, find_coordinator(self.kc, self.group), self.group, self.topic)
        assert error == ErrorCode.NONE and [fetched[p] for p in range(PARTITIONS)] == committed

        # A restarted member resumes exactly at the committed offsets.
        extra = Producing(self.kc.bootstrap_servers, self.topic, prefix="extra").start()
        wait_until(self.kc, lambda: len(extra.values()) >= 30, timeout=TIMEOUT, what="extra messages")
        extra.stop()
        again = self.member_cls(
            f"{self.member_cls.client}-again", self.kc.bootstrap_servers, self.group, self.topic, Timeline()
        )
        again.start()
        try:
            wanted = extra.values()
            wait_for(
                lambda: wanted <= {r.value for r in again.records},
                "the restarted member to read the extra messages",
                [again],
            )
            got = again.records
            assert sorted(r.value for r in got) == sorted(wanted), "the restarted member read older messages again"
            for p in range(PARTITIONS):
                offsets = sorted(r.offset for r in got if r.partition == p)
                if offsets:
                    assert offsets[0] == committed[p], (
                        f"partition {p}: resumed at {offsets[0]}, committed {committed[p]}"
                    )
                    assert offsets == list(range(committed[p], committed[p] + len(offsets))), f"partition {p}: a gap"
        finally:
            again.stop()


# --- the tests -----------------------------------------------------------------------------------------


@pytest.fixture
def topic(kstub_cluster) -> str:
    name = unique_topic("coordmove")
    create_topic(kstub_cluster, name, PARTITIONS, 3, min_insync_replicas="2")
    return name


@pytest.mark.kstub(brokers=3, config=CONFIG)
@pytest.mark.parametrize("member_cls", MEMBERS, ids=lambda m: m.client)
def test_the_coordinator_moves_when_its_broker_stops(kstub_cluster, topic, member_cls):
    kc = kstub_cluster
    group = group_on(kc, 1)  # not the controller (0): only the coordinator moves
    assert find_coordinator(kc, group) == 1
    run = GroupRun(kc, member_cls, topic, group)
    run.start()
    error, before = offset_fetch(kc, 1, group, topic)
    assert error == ErrorCode.NONE and all(before[p] > 0 for p in range(PARTITIONS))

    kc.control.stop_broker(1)
    stopped_at = time.monotonic()
    new = find_coordinator(kc, group)
    assert new in (0, 2)
    assert refused(kc, 1), "the stopped broker still accepts connections"
    (other,) = {0, 2} - {new}
    assert offset_fetch(kc, other, group, topic)[0] == ErrorCode.NOT_COORDINATOR
    error, after = offset_fetch(kc, new, group, topic)
    assert error == ErrorCode.NONE and all(after[p] >= before[p] for p in range(PARTITIONS))
    run.wait_consumed_after(stopped_at, "after the stop")
    run.wait_commits_advance("after the stop")

    # The broker returns: the group stays where it moved (Kafka's offsets partition leadership does).
    kc.control.start_broker(1)
    assert find_coordinator(kc, group) == new
    # Preferred leader election gives broker 1 its partitions back, and the group with them.
    kc.control.elect_preferred_leaders()
    assert find_coordinator(kc, group) == 1
    generation, members = membership(kc, group)
    with RawClient(bootstrap_of(kc, new)) as c:
        answer = c.request(
            12, 4, {"group_id": group, "generation_id": generation, "member_id": members[0], "group_instance_id": None}
        )
    assert answer.error_code == ErrorCode.NOT_COORDINATOR
    elected_at = time.monotonic()
    run.wait_consumed_after(elected_at, "after the election")
    run.wait_commits_advance("after the election")
    run.finish()


@pytest.mark.kstub(brokers=3, config=CONFIG)
@pytest.mark.parametrize("member_cls", MEMBERS, ids=lambda m: m.client)
def test_a_new_controller_takes_over_while_a_group_consumes(kstub_cluster, topic, member_cls):
    kc = kstub_cluster
    group = group_on(kc, 2)
    assert controller_id(kc) == 0
    run = GroupRun(kc, member_cls, topic, group)
    run.start()

    kc.control.stop_broker(0)
    stopped_at = time.monotonic()
    new_controller = wait_until(kc, lambda: kc.cluster.controller_id not in (0, -1) and kc.cluster.controller_id)
    assert controller_id(kc) == new_controller
    assert find_coordinator(kc, group) == 2  # the group's coordinator was not the controller: it stays
    run.wait_consumed_after(stopped_at, "after the controller stopped")
    run.wait_commits_advance("after the controller stopped")
    run.finish()


@pytest.mark.kstub(brokers=3, config=CONFIG)
@pytest.mark.parametrize("member_cls", MEMBERS, ids=lambda m: m.client)
def test_a_killed_coordinator_is_replaced_after_its_session_timeout(kstub_cluster, topic, member_cls):
    kc = kstub_cluster
    group = group_on(kc, 0)  # the controller, too
    run = GroupRun(kc, member_cls, topic, group)
    run.start()
    error, before = offset_fetch(kc, 0, group, topic)
    assert error == ErrorCode.NONE

    killed_at = time.monotonic()
    kc.control.kill_broker(0)
    # Until its session expires the dead broker is still registered: FindCoordinator names it.
    assert refused(kc, 0)
    assert find_coordinator(kc, group) == 0
    wait_until(kc, lambda: not kc.cluster.brokers[0].alive, what="the dead broker's session to expire")
    assert time.monotonic() - killed_at >= BROKER_SESSION_MS / 1000
    new = find_coordinator(kc, group)
    assert new in (1, 2) and controller_id(kc) in (1, 2)
    error, after = offset_fetch(kc, new, group, topic)
    assert error == ErrorCode.NONE and all(after[p] >= before[p] for p in range(PARTITIONS))
    run.wait_consumed_after(time.monotonic(), "after the group moved")
    run.wait_commits_advance("after the group moved")
    run.finish()


@pytest.mark.kstub(brokers=3, config=CONFIG)
def test_requests_parked_at_a_stopping_coordinator_are_answered_not_coordinator(kstub_cluster):
    """Kafka's onGroupUnloaded: the JoinGroup and SyncGroup the old coordinator holds get NOT_COORDINATOR
    (they are answered, not dropped with the connection), and the members carry on at the new one."""
    kc = kstub_cluster
    group = group_on(kc, 1)
    with RawClient(bootstrap_of(kc, 1)) as a, RawClient(bootstrap_of(kc, 1)) as b:
        a_id = join_new(a, group)
        assert join(a, group, a_id).generation_id == 1
        assert sync(a, group, 1, a_id, {a_id: b"a1"}).assignment == b"a1"
        b_id = join_new(b, group)
        b.send(11, 7, join_body(group, b_id))  # parked: the group waits for a to rejoin
        wait_state(a, group, "PreparingRebalance")
        kc.control.stop_broker(1)
        assert b.receive().error_code == ErrorCode.NOT_COORDINATOR
    new = find_coordinator(kc, group)
    with RawClient(bootstrap_of(kc, new)) as a, RawClient(bootstrap_of(kc, new)) as b:
        # The rebalance carries on at the new coordinator: both rejoin with their member ids.
        assert heartbeat(a, group, 1, a_id) == ErrorCode.REBALANCE_IN_PROGRESS
        b.send(11, 7, join_body(group, b_id))
        leader = join(a, group, a_id)
        follower = b.receive()
        assert (leader.error_code, follower.error_code) == (ErrorCode.NONE, ErrorCode.NONE)
        assert leader.generation_id == follower.generation_id == 2 and leader.leader == a_id
        b.send(14, 5, sync_body(group, 2, b_id))  # parked until the leader's assignment
        wait_state(a, group, "CompletingRebalance")
        # Preferred leader election moves the group back to broker 1 (restarted): the parked SyncGroup is answered.
        kc.control.start_broker(1)
        kc.control.elect_preferred_leaders()
        assert b.receive().error_code == ErrorCode.NOT_COORDINATOR
        assert sync(a, group, 2, a_id, {a_id: b"a2", b_id: b"b2"}).error_code == ErrorCode.NOT_COORDINATOR
    with RawClient(bootstrap_of(kc, 1)) as a, RawClient(bootstrap_of(kc, 1)) as b:
        b.send(14, 5, sync_body(group, 2, b_id))
        assert sync(a, group, 2, a_id, {a_id: b"a2", b_id: b"b2"}).assignment == b"a2"
        assert b.receive().assignment == b"b2"
        assert heartbeat(a, group, 2, a_id) == heartbeat(b, group, 2, b_id) == ErrorCode.NONE
