"""The consumer group protocol (KIP-848) with real clients over TCP: confluent-kafka (librdkafka) and the
Java 4.x client, both with ``group.protocol=consumer``.

Three members share a 6-partition topic: every partition is assigned to one
member, each gets two (the uniform assignor); every record is consumed once;
a member leaves and the two others take its partitions over, resuming from
its committed offsets with no record consumed twice. For librdkafka the
rebalance callbacks (incremental, as the protocol is) are replayed on one
timeline: no partition ever has two owners.
"""

from __future__ import annotations

import textwrap
import time
from collections import Counter
from typing import Any

import pytest
from group_members import (
    ConfluentMember,
    Timeline,
    owners_never_overlap,
    taken_over_from_a_killed_member,
    wait_for,
)

from clients import ConfluentClient, Msg, java_client, unique_topic
from support.raw import RawClient

PARTITIONS = 6
#: the broker drives the timing in this protocol: a short heartbeat interval makes reassignment quick
BROKER = {
    "group.consumer.heartbeat.interval.ms": 300,
    "group.consumer.min.heartbeat.interval.ms": 300,
    "group.consumer.session.timeout.ms": 4000,
    "group.consumer.min.session.timeout.ms": 1000,
}

pytestmark = pytest.mark.kstub(config=BROKER)


class NewProtocolConfluentMember(ConfluentMember):
    """confluent-kafka with group.protocol=consumer (the session and heartbeat times are the broker's)."""

    def settings(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group,
            "client.id": self.name,
            "group.protocol": "consumer",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **self.config,
        }


def produce(bootstrap: str, topic: str, first: int, n: int) -> list[bytes]:
    msgs = [Msg(f"key-{i}".encode(), f"m{i}".encode()) for i in range(first, first + n)]
    ConfluentClient(bootstrap).produce(topic, msgs)
    return [m.value for m in msgs]


def new_topic(bootstrap: str) -> str:
    topic = unique_topic("kip848")
    ConfluentClient(bootstrap).create_topic(topic, PARTITIONS)
    return topic


def described(bootstrap: str, group: str) -> tuple[str, int]:
    """The group as ConsumerGroupDescribe shows it: its state and how many consumer-protocol members it has."""
    with RawClient(bootstrap) as c:
        g = c.request(69, 1, {"group_ids": [group], "include_authorized_operations": False}).groups[0]
    assert g.error_code == 0, g
    return g.group_state, sum(1 for m in g.members if m.member_type == 1)


def shares(assignments: list[set[int] | frozenset[int] | None], each: int) -> bool:
    sets = [set(a or ()) for a in assignments]
    return all(len(s) == each for s in sets) and set().union(*sets) == set(range(PARTITIONS))


def test_confluent_three_members_share_then_one_leaves(bootstrap: str) -> None:
    topic, group, timeline = new_topic(bootstrap), unique_topic("g"), Timeline()
    sent = produce(bootstrap, topic, 0, 300)
    members = [NewProtocolConfluentMember(f"c{i}", bootstrap, group, topic, timeline).start() for i in range(3)]
    try:
        wait_for(lambda: shares([m.assignment for m in members], 2), "two partitions each", members)
        assert described(bootstrap, group)[1] == 3  # a consumer group: the new protocol, no fallback
        received = lambda ms: Counter(r.value for m in ms for r in m.records)  # noqa: E731
        wait_for(lambda: set(received(members)) >= set(sent), "every record", members)
        members[0].stop()
        wait_for(lambda: shares([m.assignment for m in members[1:]], 3), "three partitions each", members[1:])
        sent += produce(bootstrap, topic, 300, 300)
        wait_for(lambda: set(received(members)) >= set(sent), "every record, after the rebalance", members[1:])
        counts = received(members)
        assert sorted(counts) == sorted(sent)
        assert [v for v, n in counts.items() if n > 1] == []  # committed offsets: nothing read twice
    finally:
        for m in members:
            if m._thread.is_alive():
                m.stop()
    owners_never_overlap(timeline.snapshot())


def test_java_three_members_share_then_one_leaves(bootstrap: str) -> None:
    from kstub.compat.clients.driven import DrivenMember

    client = java_client(bootstrap)
    topic, group = new_topic(bootstrap), unique_topic("g")
    sent = produce(bootstrap, topic, 0, 300)
    args = client._args({"group": group, "topic": topic, "protocol": "consumer"})
    members = [DrivenMember(client.driver(), dict(args), client.timeout) for _ in range(3)]

    def check() -> None:
        for m in members:
            assert m.error() is None, m.error()

    def wait(condition, what: str, timeout: float = 60.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not condition():
            check()
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def received(ms: list[DrivenMember]) -> Counter[bytes]:
        return Counter(r.value for m in ms for r in m.records())

    try:
        wait(lambda: shares([m.assignment() for m in members], 2), "two partitions each")
        assert described(bootstrap, group)[1] == 3  # a consumer group: the new protocol, no fallback
        wait(lambda: set(received(members)) >= set(sent), "every record")
        members[0].close()
        wait(lambda: shares([m.assignment() for m in members[1:]], 3), "three partitions each")
        sent += produce(bootstrap, topic, 300, 300)
        wait(lambda: set(received(members)) >= set(sent), "every record, after the rebalance")
        counts = received(members)
        assert sorted(counts) == sorted(sent)
        assert [v for v, n in counts.items() if n > 1] == []
    finally:
        for m in members[1:]:
            m.close()


def test_confluent_member_killed_its_partitions_move_after_the_session_timeout(bootstrap: str) -> None:
    """kill -9 sends no leave heartbeat: the coordinator fences the member when its session expires."""
    topic, group, timeline = new_topic(bootstrap), unique_topic("g"), Timeline()
    survivor = NewProtocolConfluentMember("survivor", bootstrap, group, topic, timeline).start()
    script = textwrap.dedent(
        f"""
        from confluent_kafka import Consumer
        c = Consumer({{"bootstrap.servers": {bootstrap!r}, "group.id": {group!r}, "group.protocol": "consumer",
                      "enable.auto.commit": False}})
        c.subscribe([{topic!r}])
        while True:
            c.poll(0.1)
        """
    )
    taken_over_from_a_killed_member(survivor, script, PARTITIONS, after_s=2)
    owners_never_overlap(timeline.snapshot())


def test_confluent_regex_subscription_picks_up_a_topic_created_later(bootstrap: str) -> None:
    """librdkafka sends a "^..." subscription as the broker-side regular expression (KIP-848)."""
    prefix = unique_topic("kip848re")
    first = f"{prefix}-a"
    ConfluentClient(bootstrap).create_topic(first, 2)
    timeline = Timeline()
    member = NewProtocolConfluentMember("re", bootstrap, unique_topic("g"), f"^{prefix}-.*", timeline).start()
    try:
        sent = produce(bootstrap, first, 0, 20)
        wait_for(lambda: {r.value for r in member.records} >= set(sent), "the first topic's records", [member])
        with RawClient(bootstrap) as c:
            g = c.request(69, 1, {"group_ids": [member.group], "include_authorized_operations": False}).groups[0]
        # librdkafka joins its regexes as "(r1)|(r2)": the broker evaluates them
        assert [m.subscribed_topic_regex for m in g.members] == [f"(^{prefix}-.*)"]
        later = f"{prefix}-b"
        ConfluentClient(bootstrap).create_topic(later, 2)
        sent += produce(bootstrap, later, 20, 20)
        wait_for(lambda: {r.value for r in member.records} >= set(sent), "the later topic's records", [member])
        assert sorted(r.value for r in member.records) == sorted(sent)
    finally:
        member.stop()


def test_kstub_groups_describes_a_consumer_group(bootstrap: str) -> None:
    from groups_cli import kstub_groups, tables

    topic, group, timeline = new_topic(bootstrap), unique_topic("g"), Timeline()
    produce(bootstrap, topic, 0, 60)
    members = [NewProtocolConfluentMember(f"c{i}", bootstrap, group, topic, timeline).start() for i in range(2)]
    try:
        wait_for(lambda: shares([m.assignment for m in members], 3), "three partitions each", members)
        wait_for(lambda: sum(len(m.records) for m in members) >= 60, "everything read", members)
        result = kstub_groups(bootstrap, "describe", group)
        assert result.returncode == 0, result.stderr
        state, listed, offsets = tables(result.stdout)
        assert (state[0]["STATE"], state[0]["ASSIGNMENT-STRATEGY"], state[0]["#MEMBERS"]) == ("Stable", "uniform", "2")
        epochs = next(line for line in result.stdout.splitlines() if line.startswith("GROUP-EPOCH"))
        group_epoch = epochs.split()[1]
        by_client = {r["CLIENT-ID"]: r for r in listed}
        for m in members:
            row = by_client[m.name]
            expected = f"{topic}({','.join(map(str, sorted(m.assignment)))})"
            assert (row["ASSIGNMENT"], row["TARGET-ASSIGNMENT"], row["EPOCH"]) == (expected, expected, group_epoch)
        assert sorted(int(r["PARTITION"]) for r in offsets) == list(range(PARTITIONS))
        assert {r["LAG"] for r in offsets} == {"0"}
        listed_groups = kstub_groups(bootstrap, "list")
        assert group in listed_groups.stdout.split()
    finally:
        for m in members:
            m.stop()


def test_java_static_member_restarts_and_gets_its_partitions_back(bootstrap: str) -> None:
    from kstub.compat.clients.driven import DrivenMember

    client = java_client(bootstrap)
    topic, group = new_topic(bootstrap), unique_topic("g")

    def member(instance: str) -> DrivenMember:
        args = client._args({"group": group, "topic": topic, "protocol": "consumer", "instance": instance})
        return DrivenMember(client.driver(), args, client.timeout)

    def wait(condition, what: str, members: list[DrivenMember], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            for m in members:
                assert m.error() is None, m.error()
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    a, b = member("a"), member("b")
    try:
        wait(lambda: shares([a.assignment(), b.assignment()], 3), "three partitions each", [a, b])
        kept, others = a.assignment(), b.assignment()
        a.close()  # a static member leaves for a while (epoch -2): its partitions wait for it
        with RawClient(bootstrap) as c:
            g = c.request(69, 1, {"group_ids": [group], "include_authorized_operations": False}).groups[0]
        assert sorted(m.member_epoch for m in g.members)[0] == -2
        a = member("a")
        wait(lambda: a.assignment() == kept, "the restarted member to get its partitions back", [a, b])
        assert b.assignment() == others
    finally:
        a.close()
        b.close()


def test_kafka_consumer_groups_tool_describes_the_members(bootstrap: str) -> None:
    """Kafka's own kafka-consumer-groups asks ConsumerGroupDescribe first: members' epochs and assignments."""
    from support.kafka_tools import require_kafka_tools, table, tool

    require_kafka_tools()
    topic, group = new_topic(bootstrap), unique_topic("g")
    produce(bootstrap, topic, 0, 30)
    members = [NewProtocolConfluentMember(f"c{i}", bootstrap, group, topic, Timeline()).start() for i in range(2)]
    try:
        wait_for(lambda: shares([m.assignment for m in members], 3), "three partitions each", members)
        out = tool("kafka-consumer-groups", "--bootstrap-server", bootstrap, "--describe", "--group", group,
                   "--members", "--verbose").stdout  # fmt: skip
        rows = {r["CLIENT-ID"]: r for r in table(out)}
        assert set(rows) == {"c0", "c1"}
        for m in members:
            row = rows[m.name]
            expected = f"{topic}:{','.join(map(str, sorted(m.assignment)))}"
            assert (row["CURRENT-ASSIGNMENT"], row["TARGET-ASSIGNMENT"]) == (expected, expected)
            assert row["CURRENT-EPOCH"] == row["TARGET-EPOCH"]
    finally:
        for m in members:
            m.stop()
