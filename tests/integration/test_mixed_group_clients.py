"""A mixed group with real clients: kafka-python members (the classic protocol) and a confluent-kafka member
with ``group.protocol=consumer`` in one group, as Kafka 4.x runs an online migration.

Two kafka-python members share a 6-partition topic in a classic group; a
confluent-kafka member of the new protocol joins and the group becomes a
consumer group (ListGroups says so, ConsumerGroupDescribe shows two classic
members and one of the new protocol), the three sharing the partitions; the
confluent-kafka member leaves and the group is a classic one again, the two
kafka-python members sharing every partition. Every record is consumed, and
no partition ever has two owners (the rebalance callbacks replayed on one
timeline).
"""

from __future__ import annotations

from collections import Counter

import pytest
from group_members import KafkaPythonMember, Member, Timeline, owners_never_overlap, wait_assignments, wait_for
from test_consumer_protocol_clients import NewProtocolConfluentMember, produce

from clients import ConfluentClient, unique_topic
from support.raw import RawClient

PARTITIONS = 6
BROKER = {
    "group.consumer.heartbeat.interval.ms": 300,
    "group.consumer.min.heartbeat.interval.ms": 300,
    "group.consumer.session.timeout.ms": 4000,
    "group.consumer.min.session.timeout.ms": 1000,
    "group.initial.rebalance.delay.ms": 0,
}

pytestmark = pytest.mark.kstub(config=BROKER)


def group_type(bootstrap: str, group: str) -> tuple[str, str]:
    with RawClient(bootstrap) as c:
        groups = c.request(16, 5, {"states_filter": [], "types_filter": []}).groups
    return next((g.group_type, g.group_state) for g in groups if g.group_id == group)


def member_types(bootstrap: str, group: str) -> list[int]:
    with RawClient(bootstrap) as c:
        g = c.request(69, 1, {"group_ids": [group], "include_authorized_operations": False}).groups[0]
    assert g.error_code == 0, g
    return sorted(m.member_type for m in g.members)


def check_tool(bootstrap: str, group: str, kind: str, members: dict[str, Member]) -> None:
    """`kstub groups list --type --state` and `kstub groups describe` show the group's type, and for a consumer
    group its epochs and each member's type, epoch, current and target assignment."""
    from test_groups_tool import kstub_groups, tables

    listed = kstub_groups(bootstrap, "list", "--type", "--state")
    assert listed.returncode == 0, listed.stderr
    assert {r["GROUP"]: (r["TYPE"], r["STATE"]) for r in tables(listed.stdout)[0]}[group] == (kind, "Stable")
    only = kstub_groups(bootstrap, "list", "--type", "Consumer")
    assert (group in only.stdout.split()) == (kind == "consumer")
    result = kstub_groups(bootstrap, "describe", group)
    assert result.returncode == 0, result.stderr
    state, listed_members, _offsets = tables(result.stdout)
    assert (state[0]["TYPE"], state[0]["STATE"], state[0]["#MEMBERS"]) == (kind, "Stable", str(len(members)))
    by_client = {r["CLIENT-ID"]: r for r in listed_members}
    assert set(by_client) == set(members)
    if kind == "classic":
        return
    epochs = next(line for line in result.stdout.splitlines() if line.startswith("GROUP-EPOCH")).split()
    assert epochs[1] == epochs[3]  # Stable: the target assignment is the group epoch's
    for name, m in members.items():
        row = by_client[name]
        expected = f"{m.topic}({','.join(map(str, sorted(m.assignment)))})"
        assert (row["ASSIGNMENT"], row["TARGET-ASSIGNMENT"], row["EPOCH"]) == (expected, expected, epochs[1])
        assert row["MEMBER-TYPE"] == ("consumer" if m.client == "confluent-kafka" else "classic")


def test_kafka_python_classic_members_and_a_confluent_new_protocol_member_in_one_group(bootstrap: str) -> None:
    topic, group, timeline = unique_topic("mixed"), unique_topic("g"), Timeline()
    ConfluentClient(bootstrap).create_topic(topic, PARTITIONS)
    sent = produce(bootstrap, topic, 0, 300)
    # a short max.poll.interval.ms: the rebalance timeout a classic rebalance waits for members
    classic = [
        KafkaPythonMember(f"kp{i}", bootstrap, group, topic, timeline, {"max_poll_interval_ms": 20000}).start()
        for i in range(2)
    ]
    members = list(classic)
    received = lambda: Counter(r.value for m in members for r in m.records)  # noqa: E731
    try:
        wait_assignments(classic, PARTITIONS)
        assert group_type(bootstrap, group) == ("classic", "Stable")

        new = NewProtocolConfluentMember("cf", bootstrap, group, topic, timeline).start()
        members.append(new)
        wait_for(lambda: group_type(bootstrap, group)[0] == "consumer", "the upgrade to a consumer group", members)
        wait_for(lambda: sorted(len(m.assignment) for m in members) == [2, 2, 2], "two partitions each", members)
        wait_assignments(members, PARTITIONS)
        assert member_types(bootstrap, group) == [0, 0, 1]  # two classic members, one of the new protocol
        wait_for(lambda: group_type(bootstrap, group) == ("consumer", "Stable"), "a stable consumer group", members)
        check_tool(bootstrap, group, "consumer", {m.name: m for m in members})
        sent += produce(bootstrap, topic, 300, 300)
        wait_for(lambda: set(received()) >= set(sent), "every record, in the consumer group", members)

        new.stop()
        wait_for(lambda: group_type(bootstrap, group)[0] == "classic", "the downgrade to a classic group", classic)
        wait_for(lambda: sorted(len(m.assignment) for m in classic) == [3, 3], "three partitions each", classic)
        wait_assignments(classic, PARTITIONS)
        wait_for(lambda: group_type(bootstrap, group) == ("classic", "Stable"), "a stable classic group", classic)
        check_tool(bootstrap, group, "classic", {m.name: m for m in classic})
        sent += produce(bootstrap, topic, 600, 300)
        wait_for(lambda: set(received()) >= set(sent), "every record, back in a classic group", classic)
    finally:
        for m in members:
            if m._thread.is_alive():
                m.stop()
    owners_never_overlap(timeline.snapshot())
