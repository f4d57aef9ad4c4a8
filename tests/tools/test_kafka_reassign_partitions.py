"""kafka-reassign-partitions against kstub (AlterPartitionReassignments 45, ListPartitionReassignments 46).

--execute starts the moves, --verify reports a partition still in progress while
a new replica cannot catch up (its replica fetcher paused) and completed once it
did, --cancel goes back to the original replicas; the records are all on the
new replicas afterwards.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kstub.embedded import EmbeddedCluster

from support.kafka_tools import tool, unique

RECORDS = [f"record-{i}" for i in range(50)]


def _reassign(bootstrap: str, plan: Path, action: str) -> str:
    result = tool("kafka-reassign-partitions", "--bootstrap-server", bootstrap, "--reassignment-json-file",
                  str(plan), action)  # fmt: skip
    return result.stdout + result.stderr


def _plan(tmp_path: Path, topic: str, moves: dict[int, list[int]]) -> Path:
    partitions = [{"topic": topic, "partition": p, "replicas": r} for p, r in moves.items()]
    path = tmp_path / f"plan-{topic}.json"
    path.write_text(json.dumps({"version": 1, "partitions": partitions}))
    return path


def _partition(cluster: EmbeddedCluster, topic: str, index: int) -> dict:
    return next(p for p in cluster.control.describe_partitions(topic) if p["partition"] == index)


def _until_no_reassignment(cluster: EmbeddedCluster) -> None:
    deadline = time.monotonic() + 30
    while cluster.control.describe_reassignments():
        assert time.monotonic() < deadline, "the reassignment did not complete"
        time.sleep(0.05)


@pytest.mark.kstub(brokers=3)
def test_execute_and_verify(kstub_cluster: EmbeddedCluster, tmp_path: Path) -> None:
    bootstrap, control = kstub_cluster.bootstrap_servers, kstub_cluster.control
    topic = unique("reassign")
    tool("kafka-topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic,
         "--replica-assignment", "0:1,1:2")  # fmt: skip
    tool("kafka-console-producer", "--bootstrap-server", bootstrap, "--topic", topic,
         "--producer-property", "partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner",
         input="\n".join(RECORDS) + "\n")  # fmt: skip
    control.pause_replication(2)  # broker 2 cannot catch up: partition 0's move waits for it
    plan = _plan(tmp_path, topic, {0: [2, 1], 1: [0, 1]})
    printed = _reassign(bootstrap, plan, "--execute")
    assert "Current partition replica assignment" in printed
    assert f"Successfully started partition reassignments for {topic}-0,{topic}-1" in printed

    printed = _reassign(bootstrap, plan, "--verify")
    assert f"Reassignment of partition {topic}-0 is still in progress." in printed
    assert f"Reassignment of partition {topic}-1 is completed." in printed  # broker 0 was in sync already
    p0 = _partition(kstub_cluster, topic, 0)
    assert p0["replicas"] == [2, 1, 0] and p0["leader"] == 0 and 2 not in p0["isr"]

    control.resume_replication(2)
    _until_no_reassignment(kstub_cluster)
    printed = _reassign(bootstrap, plan, "--verify")
    assert f"Reassignment of partition {topic}-0 is completed." in printed
    described = tool("kafka-topics", "--bootstrap-server", bootstrap, "--describe", "--topic", topic).stdout
    assert "Partition: 0\tLeader: 2\tReplicas: 2,1" in described
    assert "Partition: 1\tLeader: 1\tReplicas: 0,1" in described

    consumed = tool(
        "kafka-console-consumer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        str(len(RECORDS)),
        "--timeout-ms",
        "30000",
    ).stdout
    assert sorted(consumed.split()) == sorted(RECORDS)  # fmt: skip
    ends = {(p["partition"], r["broker"]): r["log_end_offset"] for p in control.describe_partitions(topic)
            for r in p["replica_logs"]}  # fmt: skip
    assert set(ends) == {(0, 2), (0, 1), (1, 0), (1, 1)}  # the new replica sets
    assert ends[(0, 2)] == ends[(0, 1)] and ends[(1, 0)] == ends[(1, 1)]
    assert ends[(0, 1)] + ends[(1, 1)] == len(RECORDS)


@pytest.mark.kstub(brokers=3)
def test_cancel(kstub_cluster: EmbeddedCluster, tmp_path: Path) -> None:
    bootstrap, control = kstub_cluster.bootstrap_servers, kstub_cluster.control
    topic = unique("reassign")
    tool("kafka-topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic, "--replica-assignment", "0")
    control.pause_replication(1)
    plan = _plan(tmp_path, topic, {0: [1]})
    _reassign(bootstrap, plan, "--execute")
    assert [r["partition"] for r in control.describe_reassignments()] == [0]
    printed = _reassign(bootstrap, plan, "--cancel")
    assert f"Successfully cancelled partition reassignment for: {topic}-0" in printed
    assert "None of the specified partition moves are active." in printed  # listed again after the cancel
    assert control.describe_reassignments() == []
    assert _partition(kstub_cluster, topic, 0)["replicas"] == [0]
