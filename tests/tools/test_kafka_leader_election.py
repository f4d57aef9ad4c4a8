"""kafka-leader-election against kstub, which serves ElectLeaders (43): preferred and unclean elections.

The tool's verdicts are Kafka's: a preferred leader moved back, "Valid replica
already elected" where no election is needed (checked against real Kafka too),
and PreferredLeaderNotAvailable while the preferred replica is down.
"""

from __future__ import annotations

import time

import pytest

from kstub.compat.realkafka import RealKafka
from kstub.embedded import EmbeddedCluster

from support.kafka_tools import normalise, tool, unique


def _leaders(cluster: EmbeddedCluster, topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
    return {p["partition"]: (p["leader"], p["replicas"], p["isr"]) for p in cluster.control.describe_partitions(topic)}


def _elect(bootstrap: str, *args: str, check: bool = True) -> str:
    result = tool("kafka-leader-election", "--bootstrap-server", bootstrap, *args, check=check)
    return result.stdout + result.stderr


@pytest.mark.kstub(brokers=3)
def test_preferred_election_moves_leaders_back(kstub_cluster: EmbeddedCluster) -> None:
    bootstrap, control = kstub_cluster.bootstrap_servers, kstub_cluster.control
    topic = unique("elect")
    tool("kafka-topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic, "--partitions", "2",
         "--replication-factor", "3")  # fmt: skip
    before = _leaders(kstub_cluster, topic)
    assert all(leader == replicas[0] for leader, replicas, _ in before.values())
    preferred, other = before[0][1][0], before[0][1][1]
    control.move_leader(topic, 0, other)
    assert _leaders(kstub_cluster, topic)[0][0] == other

    printed = _elect(bootstrap, "--election-type", "preferred", "--all-topic-partitions")
    assert f"Successfully completed leader election (PREFERRED) for partitions {topic}-0" in printed
    assert f"{topic}-1" not in printed  # not needed: Kafka leaves such partitions out of an election of all
    assert _leaders(kstub_cluster, topic)[0][0] == preferred

    printed = _elect(bootstrap, "--election-type", "unclean", "--topic", topic, "--partition", "1")
    assert f"Valid replica already elected for partitions {topic}-1" in printed

    control.stop_broker(preferred)  # the leader moves away; the preferred replica cannot take it back
    assert _leaders(kstub_cluster, topic)[0][0] != preferred
    result = tool("kafka-leader-election", "--bootstrap-server", bootstrap, "--election-type", "preferred",
                  "--topic", topic, "--partition", "0", check=False)  # fmt: skip
    assert result.returncode == 1
    assert (
        f"Error completing leader election (PREFERRED) for partition: {topic}-0: "
        "org.apache.kafka.common.errors.PreferredLeaderNotAvailableException" in result.stdout + result.stderr
    )
    control.start_broker(preferred)
    deadline = time.monotonic() + 30
    while preferred not in _leaders(kstub_cluster, topic)[0][2]:  # back in the ISR once it caught up
        assert time.monotonic() < deadline, "the restarted broker did not rejoin the ISR"
        time.sleep(0.1)
    printed = _elect(bootstrap, "--election-type", "preferred", "--topic", topic, "--partition", "0")
    assert f"Successfully completed leader election (PREFERRED) for partitions {topic}-0" in printed
    assert _leaders(kstub_cluster, topic)[0][0] == preferred


def test_election_not_needed_as_kafka_says_it(bootstrap: str, real_kafka: RealKafka) -> None:
    topic = unique("elect")
    outputs = []
    for servers in (bootstrap, real_kafka.bootstrap_servers):
        tool("kafka-topics", "--bootstrap-server", servers, "--create", "--topic", topic, "--partitions", "1")
        printed = _elect(servers, "--election-type", "preferred", "--topic", topic, "--partition", "0")
        outputs.append(normalise(printed))
    assert outputs[0] == outputs[1]
    assert f"Valid replica already elected for partitions {topic}-0" in outputs[0]
