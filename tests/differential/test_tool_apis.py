"""The APIs Kafka's tools need that kstub gained for them: DescribeTopicPartitions (75) and ElectLeaders (43)."""

from __future__ import annotations

import time

from support.differential import Pair, Side


def _create(pair: Pair, topic: str, partitions: int) -> None:
    body = {"topics": [{"name": topic, "num_partitions": partitions, "replication_factor": 1}], "timeout_ms": 30000}
    for side in pair.sides:
        assert side.conn.request(19, body).topics[0].error_code == 0
        _wait_known(side, topic, partitions)


def _wait_known(side: Side, topic: str, partitions: int) -> None:
    """Until the broker asked answers the topic with its partitions (Kafka's metadata reaches brokers a bit later)."""
    deadline = time.monotonic() + 30
    while True:
        (t,) = side.admin.metadata([topic]).topics
        if t.error_code == 0 and len(t.partitions) == partitions:
            return
        assert time.monotonic() < deadline, f"{side.name} does not know {topic}"
        time.sleep(0.05)


def test_describe_topic_partitions(pair: Pair) -> None:
    topic, unknown = pair.name("dtp"), pair.name("none")
    _create(pair, topic, 3)
    pair.compare(75, {"topics": [{"name": unknown}, {"name": topic}], "response_partition_limit": 2000, "cursor": None})
    pair.compare(75, {"topics": [{"name": topic}], "response_partition_limit": 2, "cursor": None})
    pair.compare(
        75,
        {
            "topics": [{"name": topic}],
            "response_partition_limit": 2,
            "cursor": {"topic_name": topic, "partition_index": 2},
        },
    )


def test_elect_leaders(pair: Pair) -> None:
    topic = pair.name("elect")
    _create(pair, topic, 2)
    for election_type in (0, 1):  # preferred, unclean: the one leader is already there
        pair.compare(
            43,
            {
                "election_type": election_type,
                "topic_partitions": [
                    {"topic": topic, "partitions": [0, 1, 7]},
                    {"topic": pair.name("none"), "partitions": [0]},
                ],
                "timeout_ms": 30000,
            },
        )
