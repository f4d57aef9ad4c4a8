"""kafka-consumer-groups against kstub: --list, --describe, --delete and every --reset-offsets mode.

The reset sequence runs against kstub and against real Kafka, on the same data
(records with the same timestamps, the same committed offsets), and what the
tool prints must be the same byte for byte once the coordinator's address is
replaced.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kstub.compat.realkafka import RealKafka

from support.kafka_tools import normalise, table, tool, unique

MINUTE = 60_000
RETRIED = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE)


def _commit(consumer: Consumer, topic: str, offsets: tuple[int, ...]) -> None:
    """Commit `offsets` (by partition), retrying while a new coordinator loads (real Kafka's first group)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in enumerate(offsets)], asynchronous=False)
            return
        except KafkaException as exc:
            if (not exc.args[0].retriable() and exc.args[0].code() not in RETRIED) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _setup(bootstrap: str, topic: str, group: str, base_ts: int) -> None:
    """Topic with partitions 0 and 1 holding 10 records each (one every 20 minutes) and 2 empty;
    `group` has committed 5, 3 and 0."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for partition in (0, 1):
        for i in range(10):
            producer.produce(
                topic, f"v{i}".encode(), f"k{i}".encode(), partition=partition, timestamp=base_ts + i * 20 * MINUTE
            )
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        _commit(consumer, topic, (5, 3, 0))
    finally:
        consumer.close()


def _reset_sequence(bootstrap: str, topic: str, group: str, datetime_arg: str) -> list[str]:
    """Every reset mode, dry runs and executions, with a describe before and after; the tool's outputs."""
    common = ["--bootstrap-server", bootstrap, "--group", group]
    reset = [*common, "--reset-offsets"]
    runs = [
        [*common, "--describe"],
        [*reset, "--to-earliest", "--all-topics", "--dry-run"],
        [*reset, "--to-latest", "--topic", topic, "--execute"],
        [*reset, "--to-offset", "15", "--topic", f"{topic}:0,1", "--dry-run"],
        [*reset, "--to-offset", "4", "--topic", f"{topic}:0", "--execute"],
        [*reset, "--shift-by", "-3", "--topic", topic, "--execute"],
        [*reset, "--shift-by", "-100", "--topic", topic, "--dry-run"],
        [*reset, "--to-datetime", datetime_arg, "--topic", topic, "--dry-run"],
        [*reset, "--by-duration", "PT1H", "--topic", topic, "--execute"],
        [*common, "--describe", "--offsets"],
        ["--bootstrap-server", bootstrap, "--group", f"{group}-missing", "--describe"],
    ]
    outputs = []
    for args in runs:
        result = tool("kafka-consumer-groups", *args, check=False)
        outputs.append(
            f"$ {' '.join(args[2:])} (exit {result.returncode})\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return outputs


def test_reset_offsets_prints_what_kafka_prints(bootstrap: str, real_kafka: RealKafka) -> None:
    topic, group = unique("reset"), unique("reset-group")
    now = int(time.time() * 1000)
    # records at -201, -181, ... -21 minutes: PT1H finds the one at -41 (offset 8) whenever the tool runs
    # within 19 minutes of now (the Kafka run comes after the kstub one, its tools slow on a loaded machine)
    base_ts = now - 201 * MINUTE
    # the 4th record's timestamp, in ISO form with an offset (the tool's other accepted form is local time)
    at = datetime.fromtimestamp((base_ts + 3 * 20 * MINUTE) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    outputs = {}
    for name, servers in (("kstub", bootstrap), ("kafka", real_kafka.bootstrap_servers)):
        _setup(servers, topic, group, base_ts)
        outputs[name] = [normalise(o, [(servers, "<bootstrap>")]) for o in _reset_sequence(servers, topic, group, at)]
    for ours, theirs in zip(outputs["kstub"], outputs["kafka"], strict=True):
        assert ours == theirs
    # and the outcome is the one intended: offsets moved as each step says
    by_step = [{r["PARTITION"]: r for r in table(o.split("--- stderr")[0])} for o in outputs["kstub"][:10]]
    assert {p: r["CURRENT-OFFSET"] for p, r in by_step[0].items()} == {"0": "5", "1": "3", "2": "0"}
    assert {p: r["NEW-OFFSET"] for p, r in by_step[1].items()} == {"0": "0", "1": "0", "2": "0"}
    assert {p: r["NEW-OFFSET"] for p, r in by_step[2].items()} == {"0": "10", "1": "10", "2": "0"}
    assert {p: r["NEW-OFFSET"] for p, r in by_step[3].items()} == {"0": "10", "1": "10"}  # beyond the end: clamped
    assert {p: r["NEW-OFFSET"] for p, r in by_step[5].items()} == {"0": "1", "1": "7", "2": "0"}
    assert {p: r["NEW-OFFSET"] for p, r in by_step[6].items()} == {"0": "0", "1": "0", "2": "0"}
    assert {p: r["NEW-OFFSET"] for p, r in by_step[7].items()} == {"0": "3", "1": "3", "2": "0"}
    assert {p: r["NEW-OFFSET"] for p, r in by_step[8].items()} == {"0": "8", "1": "8", "2": "0"}
    assert all("(exit 0)" in o for o in outputs["kstub"][:10])
    assert f"GroupIdNotFoundException: Group {group}-missing not found." in outputs["kstub"][10]
    final = by_step[9]
    assert {p: (r["CURRENT-OFFSET"], r["LOG-END-OFFSET"], r["LAG"]) for p, r in final.items()} == {
        "0": ("8", "10", "2"),
        "1": ("8", "10", "2"),
        "2": ("0", "0", "0"),
    }


def _active_member(bootstrap: str, topic: str, group: str) -> Consumer:
    """A consumer of `group` holding every partition of `topic`, having committed 7, 2 and 0."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": "tools-test",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 30000,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + 60
    while not consumer.assignment():
        assert time.monotonic() < deadline, "no assignment within 60 s"
        consumer.poll(0.2)
    _commit(consumer, topic, (7, 2, 0))
    return consumer


def _member_views(bootstrap: str, topic: str, group: str) -> tuple[list[str], str]:
    """What the tool prints about a group with one active member, and that member's id."""
    common = ["--bootstrap-server", bootstrap, "--group", group]
    runs = [
        [*common, "--describe"],
        [*common, "--describe", "--members", "--verbose"],
        [*common, "--describe", "--state"],
        [*common, "--reset-offsets", "--to-earliest", "--topic", topic, "--execute"],  # refused: group active
    ]
    outputs = []
    for args in runs:
        result = tool("kafka-consumer-groups", *args, check=False)
        outputs.append(
            f"$ {' '.join(args[2:])} (exit {result.returncode})\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return outputs, table(outputs[0])[0]["CONSUMER-ID"]


def test_describe_members_and_refused_reset_as_kafka(bootstrap: str, real_kafka: RealKafka) -> None:
    topic, group = unique("members"), unique("members-group")
    base_ts = int(time.time() * 1000) - 205 * MINUTE  # in the past: Kafka refuses records over 1 h ahead
    outputs = {}
    for name, servers in (("kstub", bootstrap), ("kafka", real_kafka.bootstrap_servers)):
        _setup(servers, topic, unique("other"), base_ts)
        consumer = _active_member(servers, topic, group)
        try:
            printed, member_id = _member_views(servers, topic, group)
        finally:
            consumer.close()
        assert member_id.startswith("tools-test-")
        outputs[name] = [normalise(o, [(servers, "<bootstrap>"), (member_id, "<member>")]) for o in printed]
    for ours, theirs in zip(outputs["kstub"], outputs["kafka"], strict=True):
        assert ours == theirs
    offsets = table(outputs["kstub"][0])
    assert [
        (r["PARTITION"], r["CURRENT-OFFSET"], r["LOG-END-OFFSET"], r["LAG"], r["CONSUMER-ID"]) for r in offsets
    ] == [
        ("0", "7", "10", "3", "<member>"),
        ("1", "2", "10", "8", "<member>"),
        ("2", "0", "0", "0", "<member>"),
    ]
    assert "(exit 1)" in outputs["kstub"][3] or "(exit 0)" in outputs["kstub"][3]
    assert "inactive" in outputs["kstub"][3]


def _kstub_groups(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "kstub", "groups", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _tables(text: str) -> list[list[dict[str, str]]]:
    """Every table of `text` headed by GROUP (Kafka's tool and kstub groups print one per section)."""
    out, lines = [], [line for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.split()[0] == "GROUP":
            out.append(table("\n".join(lines[i:])))
    return out


def _assigned(text: str) -> set[tuple[str, int]]:
    """A member's assignment as either tool prints it: "t:0,1;u:2" (Kafka 4.x) or "t(0,1),u(2)"."""
    out = set()
    for topic, partitions in re.findall(r"([^:;(),]+)[:(]([\d,]+)\)?", text):
        out |= {(topic, int(p)) for p in partitions.split(",") if p}
    return out


@pytest.mark.kstub(brokers=3)
def test_list_describe_delete_and_kstub_groups_agree(bootstrap: str) -> None:
    topic, active, idle = unique("groups"), unique("active"), unique("idle")
    _setup(bootstrap, topic, idle, int(time.time() * 1000) - 205 * MINUTE)
    consumer = _active_member(bootstrap, topic, active)
    try:
        listed = tool("kafka-consumer-groups", "--bootstrap-server", bootstrap, "--list").stdout.split()
        assert sorted(listed) == sorted([active, idle])
        assert sorted(_kstub_groups("list", "--bootstrap-server", bootstrap).split()) == sorted(listed)

        common = ["--bootstrap-server", bootstrap, "--group", active, "--describe"]
        (offsets,) = _tables(tool("kafka-consumer-groups", *common).stdout)
        (members,) = _tables(tool("kafka-consumer-groups", *common, "--members", "--verbose").stdout)
        (state,) = _tables(tool("kafka-consumer-groups", *common, "--state").stdout)
        ours_state, ours_members, ours_offsets = _tables(
            _kstub_groups("describe", "--bootstrap-server", bootstrap, active)
        )

        member_id = members[0]["CONSUMER-ID"]
        assert [
            (r["PARTITION"], r["CURRENT-OFFSET"], r["LOG-END-OFFSET"], r["LAG"], r["CONSUMER-ID"]) for r in offsets
        ] == [
            ("0", "7", "10", "3", member_id),
            ("1", "2", "10", "8", member_id),
            ("2", "0", "0", "0", member_id),
        ]
        columns = ("TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID")
        assert [[r[c] for c in columns] for r in ours_offsets] == [[r[c] for c in columns] for r in offsets]
        # Kafka 4.4 prints a classic member's assignment as CURRENT-ASSIGNMENT "t:0,1,2", kstub groups as "t(0,1,2)"
        columns = ("CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS")
        assert [[r[c] for c in columns] + [_assigned(r["ASSIGNMENT"])] for r in ours_members] == [
            [r[c] for c in columns] + [_assigned(r["CURRENT-ASSIGNMENT"])] for r in members
        ]
        assert members[0]["#PARTITIONS"] == "3" and _assigned(members[0]["CURRENT-ASSIGNMENT"]) == {
            (topic, p) for p in range(3)
        }
        columns = ("COORDINATOR", "(ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS")
        assert [[r[c] for c in columns] for r in ours_state] == [[r[c] for c in columns] for r in state]
        assert state[0]["STATE"] == "Stable" and state[0]["#MEMBERS"] == "1"

        refused = tool(
            "kafka-consumer-groups", "--bootstrap-server", bootstrap, "--delete", "--group", active, check=False
        )
        assert "NON_EMPTY_GROUP" in refused.stdout + refused.stderr or "not empty" in refused.stdout + refused.stderr
    finally:
        consumer.close()
    deleted = tool(
        "kafka-consumer-groups", "--bootstrap-server", bootstrap, "--delete", "--group", idle, "--group", active
    )
    assert f"Deletion of requested consumer groups ('{idle}', '{active}') was successful." in deleted.stdout or (
        f"Deletion of requested consumer groups ('{active}', '{idle}') was successful." in deleted.stdout
    )
    assert tool("kafka-consumer-groups", "--bootstrap-server", bootstrap, "--list").stdout.split() == []
    assert _kstub_groups("list", "--bootstrap-server", bootstrap).split() == []
