"""``kstub groups ...`` run as a user runs it: ``python -m kstub groups`` in a subprocess, over TCP.

The tool talks the Kafka protocol to the cluster's bootstrap address (here a
kstub_cluster), so these are the command lines of the README. Outputs are
Kafka-style tables, parsed here by column name.
"""

from __future__ import annotations

import pytest
from group_members import ConfluentMember, KafkaPythonMember, Timeline, wait_assignments, wait_for
from groups_cli import kstub_groups, tables

from clients import ConfluentClient, KafkaPythonClient, Msg, unique_topic
from support.raw import RawClient


def produce(bootstrap: str, topic: str, partitions: int, per_partition: int, base_ts: int = 1_700_000_000_000):
    msgs = []
    for p in range(partitions):
        batch = [Msg(b"k", f"{p}-{i}".encode(), timestamp=base_ts + i) for i in range(per_partition)]
        ConfluentClient(bootstrap).produce(topic, batch, partition=p)
        msgs += batch
    return msgs


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """A simple (generation -1) commit at the group's coordinator."""
    with RawClient(bootstrap) as c:
        coordinator = c.request(10, 2, {"key": group, "key_type": 0})
    with RawClient(f"{coordinator.host}:{coordinator.port}") as c:
        body = c.request(
            8,
            8,
            {
                "group_id": group,
                "generation_id_or_member_epoch": -1,
                "member_id": "",
                "topics": [
                    {
                        "name": topic,
                        "partitions": [
                            {"partition_index": p, "committed_offset": o, "committed_metadata": ""}
                            for p, o in offsets.items()
                        ],
                    }
                ],
            },
        )
    assert all(p.error_code == 0 for t in body.topics for p in t.partitions)


def offsets_of(bootstrap: str, group: str) -> dict[int, str]:
    result = kstub_groups(bootstrap, "describe", group)
    assert result.returncode == 0, result.stderr
    return {int(r["PARTITION"]): r["CURRENT-OFFSET"] for r in tables(result.stdout)[-1]}


@pytest.mark.kstub(brokers=3)
def test_list_shows_the_groups_of_every_broker(kstub_cluster, bootstrap):
    topic = unique_topic()
    KafkaPythonClient(bootstrap).create_topic(topic, 1)
    groups = [f"group-{i}" for i in range(8)]
    for g in groups:
        commit(bootstrap, g, topic, {0: 0})
    with RawClient(bootstrap) as c:
        placed = {x.node_id for x in c.request(10, 4, {"key_type": 0, "coordinator_keys": groups}).coordinators}
    assert len(placed) > 1, "the groups live on several coordinators"
    result = kstub_groups(bootstrap, "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == groups
    states = kstub_groups(bootstrap, "list", "--state")
    assert [(r["GROUP"], r["STATE"]) for r in tables(states.stdout)[0]] == [(g, "Empty") for g in groups]
    assert kstub_groups(bootstrap, "list", "--state", "Stable").stdout.split() == ["GROUP", "STATE"]


def group_away_from(bootstrap: str, node_id: int) -> str:
    """A group name whose coordinator is not `node_id` (so the tool must find it)."""
    with RawClient(bootstrap) as c:
        while True:
            group = unique_topic("g")
            if c.request(10, 2, {"key": group, "key_type": 0}).node_id != node_id:
                return group


@pytest.mark.kstub(brokers=3)
def test_describe_shows_members_assignments_offsets_and_lag(kstub_cluster, bootstrap):
    topic, group = unique_topic(), group_away_from(bootstrap, kstub_cluster.brokers[0].node_id)
    KafkaPythonClient(bootstrap).create_topic(topic, 4)
    produce(bootstrap, topic, 4, 10)
    timeline = Timeline()
    members = [ConfluentMember(name, bootstrap, group, topic, timeline).start() for name in ("alpha", "beta")]
    try:
        wait_assignments(members, 4)
        wait_for(lambda: sum(len(m.records) for m in members) >= 40, "everything read", members)
        result = kstub_groups(bootstrap, "describe", group)
        assert result.returncode == 0, result.stderr
        state, listed, offsets = tables(result.stdout)
        assert (state[0]["STATE"], state[0]["ASSIGNMENT-STRATEGY"], state[0]["#MEMBERS"]) == ("Stable", "range", "2")
        with RawClient(bootstrap) as c:
            home = c.request(10, 2, {"key": group, "key_type": 0})
        assert state[0]["COORDINATOR"] == f"{home.host}:{home.port}({home.node_id})"
        by_client = {r["CLIENT-ID"]: r for r in listed}
        assert set(by_client) == {"alpha", "beta"}
        for m in members:
            row = by_client[m.name]
            assert row["ASSIGNMENT"] == f"{topic}({','.join(map(str, sorted(m.assignment)))})"
            assert row["#PARTITIONS"] == str(len(m.assignment)) and row["HOST"] == "/127.0.0.1"
        assert sorted(int(r["PARTITION"]) for r in offsets) == [0, 1, 2, 3]
        for r in offsets:
            assert (r["CURRENT-OFFSET"], r["LOG-END-OFFSET"], r["LAG"]) == ("10", "10", "0")
            owner = next(m for m in members if int(r["PARTITION"]) in m.assignment)
            assert r["CLIENT-ID"] == owner.name and r["CONSUMER-ID"] == by_client[owner.name]["CONSUMER-ID"]
    finally:
        for m in members:
            m.stop()
    produce(bootstrap, topic, 1, 7)  # 7 more on partition 0, nobody reading
    result = kstub_groups(bootstrap, "describe", group)
    assert f"Consumer group '{group}' has no active members." in result.stdout
    rows = {int(r["PARTITION"]): r for r in tables(result.stdout)[-1]}
    assert (rows[0]["CURRENT-OFFSET"], rows[0]["LOG-END-OFFSET"], rows[0]["LAG"], rows[0]["CONSUMER-ID"]) == (
        "10",
        "17",
        "7",
        "-",
    )
    missing = kstub_groups(bootstrap, "describe", "no-such-group")
    assert missing.returncode == 1 and "Consumer group 'no-such-group' does not exist." in missing.stderr


def test_reset_offsets(kstub_cluster, bootstrap):
    topic, group = unique_topic(), unique_topic("g")
    KafkaPythonClient(bootstrap).create_topic(topic, 2)
    base = 1_700_000_000_000
    produce(bootstrap, topic, 2, 10, base)
    commit(bootstrap, group, topic, {0: 5, 1: 5})

    def reset(*args: str) -> dict[int, int]:
        result = kstub_groups(bootstrap, "reset-offsets", group, *args)
        assert result.returncode == 0, result.stderr
        return {int(r["PARTITION"]): int(r["NEW-OFFSET"]) for r in tables(result.stdout)[0]}

    # a dry run by default: shows, changes nothing
    assert reset("--topic", topic, "--to-earliest") == {0: 0, 1: 0}
    assert offsets_of(bootstrap, group) == {0: "5", 1: "5"}
    assert reset("--topic", topic, "--to-latest", "--execute") == {0: 10, 1: 10}
    assert offsets_of(bootstrap, group) == {0: "10", 1: "10"}
    assert reset("--topic", f"{topic}:1", "--to-offset", "3", "--execute") == {1: 3}
    assert offsets_of(bootstrap, group) == {0: "10", 1: "3"}
    assert reset("--topic", topic, "--to-offset", "99") == {0: 10, 1: 10}, "clamped to the log end"
    assert reset("--all-topics", "--shift-by", "-4", "--execute") == {0: 6, 1: 0}, "clamped to the log start"
    at_4 = "2023-11-14T22:13:20.004+00:00"  # base + 4 ms
    assert reset("--topic", topic, "--to-datetime", at_4, "--execute") == {0: 4, 1: 4}
    assert reset("--topic", topic, "--to-datetime", "2099-01-01T00:00:00.000") == {0: 10, 1: 10}
    # a consumer of the group resumes where the reset put it
    member = KafkaPythonMember("resumer", bootstrap, group, topic, Timeline()).start()
    try:
        wait_for(lambda: len(member.records) >= 12, "the 12 messages after offset 4", [member])
        assert sorted((r.partition, r.offset) for r in member.records) == [(p, o) for p in (0, 1) for o in range(4, 10)]
        # and a group with members is left alone, as Kafka's tool does
        refused = kstub_groups(bootstrap, "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
        assert refused.returncode == 1
        assert (
            f"Error: Assignments can only be reset if the group '{group}' is inactive, "
            "but the current state is Stable." in refused.stderr
        )
    finally:
        member.stop()
    bad = kstub_groups(bootstrap, "reset-offsets", group, "--topic", "nope", "--to-earliest")
    assert bad.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in bad.stderr


def test_delete(kstub_cluster, bootstrap):
    topic, group = unique_topic(), unique_topic("g")
    KafkaPythonClient(bootstrap).create_topic(topic, 1)
    member = ConfluentMember("m", bootstrap, group, topic, Timeline()).start()
    try:
        wait_assignments([member], 1)
        busy = kstub_groups(bootstrap, "delete", group)
        assert busy.returncode == 1
        assert f"* Group '{group}' could not be deleted due to: NON_EMPTY_GROUP" in busy.stderr
    finally:
        member.stop()
    done = kstub_groups(bootstrap, "delete", group)
    assert done.returncode == 0, done.stderr
    assert f"Deletion of requested consumer groups ('{group}') was successful." in done.stdout
    assert kstub_groups(bootstrap, "list").stdout.split() == []
    again = kstub_groups(bootstrap, "delete", group)
    assert again.returncode == 1 and "GROUP_ID_NOT_FOUND" in again.stderr


def test_unreachable_broker_is_an_error_not_a_traceback():
    result = kstub_groups("127.0.0.1:1", "list")
    assert result.returncode == 1 and result.stderr.startswith("Error: cannot connect to 127.0.0.1:1")
