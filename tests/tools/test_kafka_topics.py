"""kafka-topics against kstub: --create, --describe, --alter --partitions, --list, --delete, and its refusals."""

from __future__ import annotations

import re

import pytest

from kstub.compat.realkafka import RealKafka
from kstub.embedded import EmbeddedCluster

from support.kafka_tools import tool, unique


def _described(text: str) -> tuple[dict[str, str], dict[int, dict[str, str]]]:
    """kafka-topics --describe of one topic: its summary line, and each partition's line, as fields."""
    summary: dict[str, str] = {}
    partitions: dict[int, dict[str, str]] = {}
    for line in text.splitlines():
        fields = dict(re.findall(r"(\w+): ?(\S*)", line))
        if "PartitionCount" in fields:
            summary = fields
        elif "Partition" in fields:
            partitions[int(fields["Partition"])] = fields
    return summary, partitions


@pytest.mark.kstub(brokers=3)
def test_topic_lifecycle(kstub_cluster: EmbeddedCluster) -> None:
    bootstrap = kstub_cluster.bootstrap_servers
    topic, other = unique("topics"), unique("topics")
    common = ["--bootstrap-server", bootstrap]
    created = tool("kafka-topics", *common, "--create", "--topic", topic, "--partitions", "3",
                   "--replication-factor", "3", "--config", "retention.ms=3600000")  # fmt: skip
    assert created.stdout.strip() == f"Created topic {topic}."
    tool("kafka-topics", *common, "--create", "--topic", other, "--replica-assignment", "2:1,0:2")

    summary, partitions = _described(tool("kafka-topics", *common, "--describe", "--topic", topic).stdout)
    assert (summary["Topic"], summary["PartitionCount"], summary["ReplicationFactor"]) == (topic, "3", "3")
    assert "retention.ms=3600000" in summary["Configs"]
    truth = {p["partition"]: p for p in kstub_cluster.control.describe_partitions(topic)}
    assert sorted(partitions) == [0, 1, 2]
    for index, fields in partitions.items():
        p = truth[index]
        assert int(fields["Leader"]) == p["leader"]
        assert [int(r) for r in fields["Replicas"].split(",")] == p["replicas"]
        assert [int(r) for r in fields["Isr"].split(",")] == p["isr"]
    _, manual = _described(tool("kafka-topics", *common, "--describe", "--topic", other).stdout)
    assert {i: fields["Replicas"] for i, fields in manual.items()} == {0: "2,1", 1: "0,2"}

    tool("kafka-topics", *common, "--alter", "--topic", topic, "--partitions", "5")
    assert len(kstub_cluster.control.describe_partitions(topic)) == 5
    shrink = tool("kafka-topics", *common, "--alter", "--topic", topic, "--partitions", "2", check=False)
    assert shrink.returncode == 1
    assert "InvalidPartitionsException" in shrink.stdout + shrink.stderr

    again = tool("kafka-topics", *common, "--create", "--topic", topic, "--partitions", "1", check=False)
    assert again.returncode == 1
    assert f"Topic '{topic}' already exists." in again.stdout + again.stderr
    too_many = tool("kafka-topics", *common, "--create", "--topic", unique("rf"), "--replication-factor", "4",
                    check=False)  # fmt: skip
    assert too_many.returncode == 1
    assert "InvalidReplicationFactorException" in too_many.stdout + too_many.stderr

    assert set(tool("kafka-topics", *common, "--list").stdout.split()) == {topic, other}
    tool("kafka-topics", *common, "--delete", "--topic", topic)
    assert tool("kafka-topics", *common, "--list").stdout.split() == [other]


def _comparable(text: str) -> list[str]:
    """--describe output with the topic id and node ids (kstub counts from 0, Kafka's node here is 1) replaced."""
    text = re.sub(r"TopicId: \S+", "TopicId: <id>", text)
    text = re.sub(r"(Leader|Replicas|Isr): [\d,]+", r"\1: <node>", text)
    return text.splitlines()


def test_describe_prints_what_kafka_prints(bootstrap: str, real_kafka: RealKafka) -> None:
    topic = unique("describe")
    printed = []
    for servers in (bootstrap, real_kafka.bootstrap_servers):
        tool("kafka-topics", "--bootstrap-server", servers, "--create", "--topic", topic, "--partitions", "3",
             "--config", "retention.ms=3600000")  # fmt: skip
        printed.append(
            _comparable(tool("kafka-topics", "--bootstrap-server", servers, "--describe", "--topic", topic).stdout)
        )
    ours, theirs = printed
    assert ours == theirs  # the configs of the summary line, and the ELR columns (DescribeTopicPartitions)
    assert (
        ours[1]
        == f"\tTopic: {topic}\tPartition: 0\tLeader: <node>\tReplicas: <node>\tIsr: <node>\tElr: \tLastKnownElr: "
    )
    assert "retention.ms=3600000" in ours[0].split("Configs:")[1].strip().split(",")
