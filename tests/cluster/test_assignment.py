"""Replica assignment as Kafka's AdminUtils.assignReplicasToBrokers (rack-unaware)."""

from __future__ import annotations

from kstub.cluster.config import BrokerConfig
from kstub.cluster.model import ClusterState, assign_replicas


def test_kafkas_own_expected_assignment():
    """The table of Kafka's AdminZkClientTest: 5 brokers, 10 partitions, RF 3, fixed start index 0."""
    expected = [
        [0, 1, 2],
        [1, 2, 3],
        [2, 3, 4],
        [3, 4, 0],
        [4, 0, 1],
        [0, 2, 3],
        [1, 3, 4],
        [2, 4, 0],
        [3, 0, 1],
        [4, 1, 2],
    ]
    assert assign_replicas([0, 1, 2, 3, 4], 10, 3, start=0, shift=0) == expected


def test_each_new_topic_starts_elsewhere_over_the_live_brokers():
    cluster = ClusterState(BrokerConfig())
    for i in range(3):
        cluster.add_broker(i, "h", 9092 + i)
    leaders = [cluster.create_topic(f"t{i}", 1, 2).partitions[0].leader for i in range(3)]
    assert leaders == [0, 1, 2], "a rotating start spreads single-partition topics"
    cluster.brokers[1].alive = False
    replicas = cluster.create_topic("without-1", 4, 2).partitions
    assert all(1 not in p.replicas for p in replicas)
    assert {p.leader for p in replicas} == {0, 2}
