"""Consumer groups with real clients: subscribe() works, with Kafka's group semantics.

kafka-python, confluent-kafka (librdkafka) and aiokafka each run two members of
one group on a 4-partition topic: every partition owned by exactly one
member, every message consumed once, one member leaves and the other takes
over, and a restarted member resumes after the last commit. The rebalance
triggers (a member joins, leaves, dies, partitions are added) each have a
test, as does static membership, two groups reading the same data, and kcat's
balanced consumer. Rebalance callbacks are logged on one timeline, which shows
that no partition ever has two owners and that, in Kafka's eager protocol, a
member gives up everything before anyone gets a new assignment.
"""

from __future__ import annotations

import subprocess
import textwrap
import time

import pytest
from group_members import (
    MEMBERS,
    AiokafkaMember,
    ConfluentMember,
    KafkaPythonMember,
    Member,
    Timeline,
    owners_never_overlap,
    taken_over_from_a_killed_member,
    wait_assignments,
    wait_for,
)

from clients import ConfluentClient, KafkaPythonClient, Msg, unique_topic
from support.raw import RawClient

PARTITIONS = 4


@pytest.fixture(params=MEMBERS, ids=lambda m: m.client)
def member_cls(request) -> type[Member]:
    return request.param


def produce(bootstrap: str, topic: str, first: int, n: int, partition: int | None = None) -> list[Msg]:
    """Messages first..first+n-1, keyed so that they spread over the partitions."""
    msgs = [Msg(f"key-{i}".encode(), f"m{i}".encode()) for i in range(first, first + n)]
    ConfluentClient(bootstrap).produce(topic, msgs, partition=partition)
    return msgs


def values(records) -> list[bytes]:
    return sorted(r.value for r in records)


def expected(msgs: list[Msg]) -> list[bytes]:
    return sorted(m.value for m in msgs)


def new_topic(bootstrap: str, partitions: int = PARTITIONS) -> str:
    topic = unique_topic("grp")
    KafkaPythonClient(bootstrap).create_topic(topic, partitions)
    return topic


def test_two_members_share_take_over_and_resume_from_commits(bootstrap, member_cls):
    topic, group, timeline = new_topic(bootstrap), unique_topic("g"), Timeline()
    a = member_cls("a", bootstrap, group, topic, timeline).start()
    b = None
    try:
        wait_for(lambda: a.assignment == set(range(PARTITIONS)), "a to own every partition", [a])
        # a new member joins: a rebalance splits the partitions
        b = member_cls("b", bootstrap, group, topic, timeline).start()
        wait_assignments([a, b], PARTITIONS)
        first = produce(bootstrap, topic, 0, 400)
        assert {m.partition for m in first} == set(range(PARTITIONS))
        wait_for(lambda: len(a.records) + len(b.records) >= 400, "400 messages", [a, b])
        for m in (a, b):
            assert {r.partition for r in m.records} <= m.assignment, f"{m.name} read only its own partitions"
        assert values(a.records + b.records) == expected(first), "each message consumed once"
        # b leaves: a takes over everything, from where b committed
        b.stop()
        wait_for(lambda: a.assignment == set(range(PARTITIONS)), "a to take over", [a])
        second = produce(bootstrap, topic, 400, 400)
        wait_for(lambda: len(a.records) + len(b.records) >= 800, "800 messages", [a])
        assert values(a.records + b.records) == expected(first + second)
    finally:
        for m in (a, b):
            if m is not None:
                m.stop()
    # a restarted member resumes after the last commit: no gaps, no duplicates
    ends = {p: max(r.offset for r in a.records + b.records if r.partition == p) + 1 for p in range(PARTITIONS)}
    c = member_cls("c", bootstrap, group, topic, timeline).start()
    try:
        wait_for(lambda: c.assignment == set(range(PARTITIONS)), "c to own every partition", [c])
        third = produce(bootstrap, topic, 800, 200)
        wait_for(lambda: len(c.records) >= 200, "200 messages", [c])
        time.sleep(0.2)  # give a duplicate (which would come first) every chance to show up
        assert values(c.records) == expected(third)
        for p in range(PARTITIONS):
            got = sorted(r.offset for r in c.records if r.partition == p)
            assert got == list(range(ends[p], ends[p] + len(got))), f"partition {p} resumed at its commit"
    finally:
        c.stop()
    events = timeline.snapshot()
    owners_never_overlap(events)
    # eager rebalancing: when b joined, a gave up every partition before anyone got new ones
    everything = set(range(PARTITIONS))
    a_all = next(e for e in events if e.member == "a" and e.kind == "assigned" and e.partitions == everything)
    later = [e for e in events if e.seq > a_all.seq]
    a_revoke = next(e for e in later if e.member == "a" and e.kind == "revoked")
    a_next = next(e for e in later if e.member == "a" and e.kind == "assigned")
    b_first = next(e for e in later if e.member == "b" and e.kind == "assigned" and e.partitions)
    assert a_revoke.partitions == everything and a_revoke.seq < min(b_first.seq, a_next.seq)


def test_a_member_that_dies_is_removed_after_its_session_timeout(kstub_cluster, bootstrap):
    """kill -9 sends no LeaveGroup: the coordinator notices the missing heartbeats."""
    topic, group, timeline = new_topic(bootstrap), unique_topic("g"), Timeline()
    survivor = KafkaPythonMember("survivor", bootstrap, group, topic, timeline).start()
    script = textwrap.dedent(
        f"""
        from kafka import KafkaConsumer
        c = KafkaConsumer({topic!r}, bootstrap_servers={bootstrap!r}, group_id={group!r}, session_timeout_ms=6000,
                          heartbeat_interval_ms=300, enable_auto_commit=False)
        while True:
            c.poll(timeout_ms=100)
        """
    )
    taken_over_from_a_killed_member(survivor, script, PARTITIONS, after_s=3)
    owners_never_overlap(timeline.snapshot())


FAST_METADATA = {
    KafkaPythonMember: {"metadata_max_age_ms": 300},
    ConfluentMember: {"topic.metadata.refresh.interval.ms": 300},
    AiokafkaMember: {"metadata_max_age_ms": 300},
}


def test_added_partitions_are_noticed_and_consumed(kstub_cluster, bootstrap, member_cls):
    topic, group, timeline = new_topic(bootstrap, 2), unique_topic("g"), Timeline()
    config = FAST_METADATA[member_cls]
    members = [member_cls(n, bootstrap, group, topic, timeline, config).start() for n in ("a", "b")]
    try:
        wait_assignments(members, 2)
        kstub_cluster.call(kstub_cluster.cluster.add_partitions, topic, 4)
        wait_assignments(members, 4)  # the leader saw the new partitions in Metadata and rejoined
        msgs = produce(bootstrap, topic, 0, 20, partition=3)
        wait_for(lambda: sum(len(m.records) for m in members) >= 20, "the new partition's messages", members)
        got = [r for m in members for r in m.records]
        assert {r.partition for r in got} == {3} and values(got) == expected(msgs)
    finally:
        for m in members:
            m.stop()
    owners_never_overlap(timeline.snapshot())


STATIC = {
    KafkaPythonMember: lambda name: {"group_instance_id": name},
    ConfluentMember: lambda name: {"group.instance.id": name},
}


@pytest.mark.parametrize("member_cls", list(STATIC), ids=lambda m: m.client)
def test_a_static_member_restarting_within_its_session_timeout_causes_no_rebalance(bootstrap, member_cls):
    topic, group, timeline = new_topic(bootstrap), unique_topic("g"), Timeline()
    a = member_cls("a", bootstrap, group, topic, timeline, STATIC[member_cls]("instance-a")).start()
    b = member_cls("b", bootstrap, group, topic, timeline, STATIC[member_cls]("instance-b")).start()
    b2 = None
    try:
        wait_assignments([a, b], PARTITIONS)
        before = [e for e in timeline.snapshot() if e.member == "a"]
        owned_by_b = b.assignment
        b.stop()  # a static member does not send LeaveGroup
        b2 = member_cls("b2", bootstrap, group, topic, timeline, STATIC[member_cls]("instance-b")).start()
        wait_for(lambda: b2.assignment == owned_by_b, "b2 to get b's partitions back", [a, b2])
        msgs = produce(bootstrap, topic, 0, 100)
        wait_for(lambda: len(a.records) + len(b2.records) >= 100, "100 messages", [a, b2])
        assert values(a.records + b2.records) == expected(msgs)
        assert [e for e in timeline.snapshot() if e.member == "a"] == before, "a saw no rebalance"
    finally:
        for m in (a, b2):
            if m is not None:
                m.stop()


def test_two_groups_consume_the_same_data_independently(bootstrap):
    topic, timeline = new_topic(bootstrap), Timeline()
    msgs = produce(bootstrap, topic, 0, 100)
    x = ConfluentMember("x", bootstrap, "group-x", topic, timeline).start()
    try:
        wait_for(lambda: len(x.records) >= 100, "group x to read everything", [x])
    finally:
        x.stop()
    # a new group with auto.offset.reset=earliest reads the topic from offset 0
    y = KafkaPythonMember("y", bootstrap, "group-y", topic, timeline).start()
    # group x, already at the end, reads nothing old: the first thing it sees is what comes next
    x2 = ConfluentMember("x2", bootstrap, "group-x", topic, timeline).start()
    try:
        wait_for(lambda: len(y.records) >= 100, "group y to read everything", [y])
        assert values(y.records) == expected(msgs)
        assert {r.offset for r in y.records if r.partition == 0} >= {0}
        wait_for(lambda: x2.assignment == set(range(PARTITIONS)), "x2's assignment", [x2])
        marker = produce(bootstrap, topic, 100, 1)
        wait_for(lambda: len(x2.records) >= 1, "the marker", [x2])
        assert values(x2.records) == expected(marker)
    finally:
        x2.stop()
        y.stop()


def test_kcat_balanced_consumer(bootstrap, kcat):
    topic, group = new_topic(bootstrap, 2), unique_topic("kcat")
    first = produce(bootstrap, topic, 0, 100)

    def run_kcat(count: int) -> list[str]:
        cmd = [kcat, "-b", bootstrap, "-G", group, "-X", "auto.offset.reset=earliest", "-c", str(count),
               "-f", "%p %o %s\n", topic]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()

    lines = run_kcat(100)
    assert sorted(line.split()[2].encode() for line in lines) == expected(first)
    # kcat committed on the way out: the group's offsets are at the end of each partition
    ends = {p: sum(1 for m in first if m.partition == p) for p in (0, 1)}
    with RawClient(bootstrap) as c:
        coordinator = c.request(10, 2, {"key": group, "key_type": 0})
    with RawClient(f"{coordinator.host}:{coordinator.port}") as c:
        body = c.request(9, 8, {"groups": [{"group_id": group, "topics": None}]})
    assert {p.partition_index: p.committed_offset for t in body.groups[0].topics for p in t.partitions} == ends
    # a second run resumes there
    second = produce(bootstrap, topic, 100, 30)
    assert sorted(line.split()[2].encode() for line in run_kcat(30)) == expected(second)
