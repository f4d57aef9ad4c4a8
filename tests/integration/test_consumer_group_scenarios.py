"""The consumer group protocol's (KIP-848) scenarios of issue 13 with real clients: confluent-kafka and the
Java 4.x client, both with ``group.protocol=consumer``.

Four members join a 12-partition topic and each gets three partitions; a
fifth joins and partitions move to it incrementally: no member that had
partitions is left without any on the way (the others keep consuming; for
confluent-kafka its rebalance callbacks are replayed on one timeline, for the
Java client its reported assignments are followed); partitions added to the
topic are assigned. Every record is consumed at least once and no committed
offset ever goes backwards (the group's offsets sampled all along).

Also: a confluent-kafka static member restarting gets its partitions back;
a Java member killed (SIGKILL of its JVM) has its partitions moved after its
session timeout; a Java SubscriptionPattern (the broker-side regular
expression) picks up a topic created later. test_consumer_protocol_clients.py
has the others (a killed confluent-kafka member, a Java static member's
restart, a confluent-kafka regular expression subscription).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from group_members import Timeline, owners_never_overlap, wait_for
from test_consumer_group_failover import CommittedSampler
from test_consumer_protocol_clients import NewProtocolConfluentMember, produce

from clients import ConfluentClient, java_client, unique_topic
from support.raw import RawClient

PARTITIONS, GROWN = 12, 16
BROKER = {
    "group.consumer.heartbeat.interval.ms": 300,
    "group.consumer.min.heartbeat.interval.ms": 300,
    "group.consumer.session.timeout.ms": 6000,
    "group.consumer.min.session.timeout.ms": 1000,
}

pytestmark = pytest.mark.kstub(config=BROKER)


def shares(assignments: list[frozenset[int] | set[int] | None], sizes: list[int], partitions: int) -> bool:
    sets = [set(a or ()) for a in assignments]
    return sorted(map(len, sets)) == sizes and sum(map(len, sets)) == partitions == len(set().union(*sets))


def grow(bootstrap: str, topic: str, count: int) -> None:
    with RawClient(bootstrap) as c:
        body = {"topics": [{"name": topic, "count": count, "assignments": None}], "timeout_ms": 10000,
                "validate_only": False}  # fmt: skip
        assert c.request(37, 3, body).results[0].error_code == 0


def never_emptied(history: list[frozenset[int]]) -> bool:
    """Once it had partitions, the member never had none (an incremental rebalance, not a stop-the-world one)."""
    started = False
    for assignment in history:
        if assignment:
            started = True
        elif started:
            return False
    return True


def scenario(
    kc,
    topic: str,
    group: str,
    start: Callable[[str], object],
    assignment: Callable[[object], frozenset[int] | set[int] | None],
    values: Callable[[object], set[bytes]],
    check: Callable[[list[object]], None],
) -> list[object]:
    """The scenario on any client; returns the members (still running)."""
    bootstrap = kc.bootstrap_servers
    sent = set(produce(bootstrap, topic, 0, 600))
    members = [start(f"m{i}") for i in range(4)]

    def wait(condition: Callable[[], bool], what: str) -> None:
        wait_for(lambda: (check(members), condition())[1], what, timeout=60.0)

    consumed = lambda: set().union(*(values(m) for m in members))  # noqa: E731
    wait(lambda: shares([assignment(m) for m in members], [3, 3, 3, 3], PARTITIONS), "three partitions each")
    wait(lambda: consumed() >= sent, "every record")
    members.append(start("m4"))
    wait(lambda: shares([assignment(m) for m in members], [2, 2, 2, 3, 3], PARTITIONS), "the fifth member's share")
    sent |= set(produce(bootstrap, topic, 600, 300))
    wait(lambda: consumed() >= sent, "every record, with five members")
    grow(bootstrap, topic, GROWN)
    wait(lambda: shares([assignment(m) for m in members], [3, 3, 3, 3, 4], GROWN), "the added partitions assigned")
    sent |= set(produce(bootstrap, topic, 900, 600))
    wait(lambda: consumed() >= sent, "every record, the added partitions' too")
    return members


def test_confluent_four_members_a_fifth_and_added_partitions(kstub_cluster) -> None:
    bootstrap = kstub_cluster.bootstrap_servers
    topic, group, timeline = unique_topic("kip848"), unique_topic("g"), Timeline()
    ConfluentClient(bootstrap).create_topic(topic, PARTITIONS)
    sampler = CommittedSampler(kstub_cluster, group, topic).start()
    members: list[NewProtocolConfluentMember] = []

    def start(name: str) -> NewProtocolConfluentMember:
        m = NewProtocolConfluentMember(name, bootstrap, group, topic, timeline).start()
        members.append(m)
        return m

    def check(ms: list[object]) -> None:
        for m in ms:
            m.check()  # type: ignore[attr-defined]

    try:
        scenario(kstub_cluster, topic, group, start, lambda m: m.assignment, lambda m: {r.value for r in m.records},
                 check)  # fmt: skip
    finally:
        for m in members:
            if m._thread.is_alive():
                m.stop()
        sampler.stop()
    events = timeline.snapshot()
    owners_never_overlap(events)
    for m in members:
        history: list[frozenset[int]] = []
        owned: set[int] = set()
        for e in events:
            if e.member != m.name:
                continue
            if e.kind == "closing":
                break  # (closing revokes everything)
            owned = owned | e.partitions if e.kind == "assigned" else owned - e.partitions
            history.append(frozenset(owned))
        assert never_emptied(history), f"{m.name} lost every partition at once: {history}"
    assert sampler.backwards == []


def test_java_four_members_a_fifth_and_added_partitions(kstub_cluster) -> None:
    from kstub.compat.clients.driven import DrivenMember

    bootstrap = kstub_cluster.bootstrap_servers
    client = java_client(bootstrap)
    topic, group = unique_topic("kip848"), unique_topic("g")
    ConfluentClient(bootstrap).create_topic(topic, PARTITIONS)
    sampler = CommittedSampler(kstub_cluster, group, topic).start()
    members: list[DrivenMember] = []
    histories: dict[int, list[frozenset[int]]] = {}
    stop = threading.Event()

    def follow() -> None:  # each member's reported assignments, as they change
        while not stop.wait(0.005):
            for i, m in enumerate(list(members)):
                now = frozenset(m.assignment() or ())
                seen = histories.setdefault(i, [])
                if not seen or seen[-1] != now:
                    seen.append(now)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()

    def start(name: str) -> DrivenMember:
        args = client._args({"group": group, "topic": topic, "protocol": "consumer"})
        m = DrivenMember(client.driver(), dict(args), client.timeout)
        members.append(m)
        return m

    def check(ms: list[object]) -> None:
        for m in ms:
            assert m.error() is None, m.error()  # type: ignore[attr-defined]

    try:
        scenario(kstub_cluster, topic, group, start, lambda m: m.assignment(),
                 lambda m: {r.value for r in m.records()}, check)  # fmt: skip
        time.sleep(0.05)  # one more look at the assignments by the follower thread
    finally:
        stop.set()
        follower.join(5)
        for m in members:
            m.close()
        sampler.stop()
    for i, history in histories.items():
        assert never_emptied(history), f"member {i} lost every partition at once: {history}"
    assert sampler.backwards == []


def test_confluent_static_member_restarts_and_gets_its_partitions_back(kstub_cluster) -> None:
    """librdkafka leaves with epoch -2 as a static member: its partitions wait for it, and are its again."""
    bootstrap = kstub_cluster.bootstrap_servers
    topic, group, timeline = unique_topic("kip848s"), unique_topic("g"), Timeline()
    ConfluentClient(bootstrap).create_topic(topic, 6)

    def member(instance: str) -> NewProtocolConfluentMember:
        config = {"group.instance.id": instance}
        return NewProtocolConfluentMember(instance, bootstrap, group, topic, timeline, config).start()

    a, b = member("a"), member("b")
    try:
        wait_for(lambda: sorted(len(m.assignment) for m in (a, b)) == [3, 3], "three partitions each", [a, b])
        kept, others = a.assignment, b.assignment
        a.stop()
        with RawClient(bootstrap) as c:
            g = c.request(69, 1, {"group_ids": [group], "include_authorized_operations": False}).groups[0]
        assert sorted(m.member_epoch for m in g.members)[0] == -2  # a is away, its place kept
        a = member("a")
        wait_for(lambda: a.assignment == kept, "the restarted member to get its partitions back", [a, b])
        assert b.assignment == others
    finally:
        for m in (a, b):
            if m._thread.is_alive():
                m.stop()
    owners_never_overlap(timeline.snapshot())


def test_java_member_killed_its_partitions_move_after_the_session_timeout(kstub_cluster) -> None:
    """A Java member's JVM killed (SIGKILL: no leave heartbeat): its partitions move once its session expires."""
    from kstub.compat.clients.driven import DrivenMember, Driver

    bootstrap = kstub_cluster.bootstrap_servers
    client = java_client(bootstrap)
    topic, group = unique_topic("kip848k"), unique_topic("g")
    ConfluentClient(bootstrap).create_topic(topic, 6)
    args = client._args({"group": group, "topic": topic, "protocol": "consumer"})
    survivor = DrivenMember(client.driver(), dict(args), client.timeout)
    victim_jvm = Driver(client.argv(), "java-victim")  # a JVM of its own, to kill
    victim = DrivenMember(victim_jvm, dict(args), client.timeout)
    try:
        wait_for(lambda: len(survivor.assignment() or ()) == 3 and len(victim.assignment() or ()) == 3,
                 "three partitions each", timeout=60.0)  # fmt: skip
        victim_jvm.proc.kill()
        victim_jvm.proc.wait(10)
        killed = time.monotonic()
        wait_for(lambda: survivor.assignment() == frozenset(range(6)), "the survivor to take over", timeout=60.0)
        # group.consumer.session.timeout.ms is 6 s here: not before the victim's session could expire
        assert time.monotonic() - killed > 3
        assert survivor.error() is None, survivor.error()
    finally:
        survivor.close()
        if victim_jvm.proc.poll() is None:
            victim_jvm.proc.kill()


def test_java_regex_subscription_picks_up_a_topic_created_later(kstub_cluster) -> None:
    """The Java client's SubscriptionPattern is the broker-side regular expression (KIP-848, RE2/J syntax)."""
    from kstub.compat.clients.driven import DrivenMember

    bootstrap = kstub_cluster.bootstrap_servers
    client = java_client(bootstrap)
    prefix, group = unique_topic("kip848jre"), unique_topic("g")
    ConfluentClient(bootstrap).create_topic(f"{prefix}-a", 2)
    args = client._args({"group": group, "topic": "", "pattern": f"{prefix}-.*", "protocol": "consumer"})
    member = DrivenMember(client.driver(), args, client.timeout)
    values = lambda: {r.value for r in member.records()}  # noqa: E731
    try:
        sent = set(produce(bootstrap, f"{prefix}-a", 0, 20))
        wait_for(lambda: (member.error() is None) and values() >= sent, "the first topic's records", timeout=60.0)
        with RawClient(bootstrap) as c:
            g = c.request(69, 1, {"group_ids": [group], "include_authorized_operations": False}).groups[0]
        assert [m.subscribed_topic_regex for m in g.members] == [f"{prefix}-.*"]
        ConfluentClient(bootstrap).create_topic(f"{prefix}-b", 2)
        sent |= set(produce(bootstrap, f"{prefix}-b", 20, 20))
        wait_for(lambda: (member.error() is None) and values() >= sent, "the later topic's records", timeout=60.0)
        assert member.error() is None, member.error()
    finally:
        member.close()
