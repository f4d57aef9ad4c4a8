"""AlterPartitionReassignments (45) and ListPartitionReassignments (46) against real Kafka.

With one broker per side no move can be in progress, so these pin the error
paths and the answers of List: a no-op reassignment, an empty or duplicate
replica list, an unregistered broker, unknown topics and partitions, a
cancellation with nothing to cancel, v1's replication factor flag, and List
with everything, with topics named, with unknown ones. The moves themselves
are tested in tests/broker/test_reassignments.py and with
kafka-reassign-partitions in tests/tools/.
"""

from __future__ import annotations

from typing import Any

import pytest

from support.differential import Pair, Side


def _create(pair: Pair, topic: str, partitions: int) -> None:
    body = {"topics": [{"name": topic, "num_partitions": partitions, "replication_factor": 1}], "timeout_ms": 30000}
    for side in pair.sides:
        assert side.conn.request(19, body).topics[0].error_code == 0


def _node(side: Side) -> int:
    return min(side.nodes)


@pytest.mark.parametrize("version", [0, 1])
def test_alter_errors(pair: Pair, version: int) -> None:
    topic, other, unknown = pair.name("move"), pair.name("move2"), pair.name("none")
    _create(pair, topic, 2)
    _create(pair, other, 1)

    def body(side: Side) -> dict[str, Any]:
        me = _node(side)
        partitions = [
            {"partition_index": 0, "replicas": [me]},  # where it is: nothing to do
            {"partition_index": 1, "replicas": []},
            {"partition_index": 2, "replicas": [me]},  # no such partition
            {"partition_index": 3, "replicas": None},
        ]
        return {
            "timeout_ms": 30000,
            "allow_replication_factor_change": True,
            "topics": [
                {"name": topic, "partitions": partitions},
                {"name": other, "partitions": [{"partition_index": 0, "replicas": None}]},  # nothing to cancel
                {"name": unknown, "partitions": [{"partition_index": 0, "replicas": [me]}]},
            ],
        }

    pair.compare(45, body, version=version)

    def invalid(side: Side) -> dict[str, Any]:
        me = _node(side)
        partitions = [
            {"partition_index": 0, "replicas": [me, me]},
            {"partition_index": 1, "replicas": [me, me + 1000]},  # not a registered broker
        ]
        return {
            "timeout_ms": 30000,
            "allow_replication_factor_change": False,
            "topics": [{"name": topic, "partitions": partitions}],
        }

    pair.compare(45, invalid, version=version)


def test_replication_factor_kept(pair: Pair) -> None:
    topic = pair.name("move")
    _create(pair, topic, 1)

    def body(side: Side) -> dict[str, Any]:
        partitions = [{"partition_index": 0, "replicas": [_node(side)]}]
        return {
            "timeout_ms": 30000,
            "allow_replication_factor_change": False,
            "topics": [{"name": topic, "partitions": partitions}],
        }

    pair.compare(45, body, version=1)


def test_list(pair: Pair) -> None:
    topic, unknown = pair.name("move"), pair.name("none")
    _create(pair, topic, 2)
    pair.compare(46, {"timeout_ms": 30000, "topics": None})
    pair.compare(
        46,
        {
            "timeout_ms": 30000,
            "topics": [{"name": topic, "partition_indexes": [0, 1, 5]}, {"name": unknown, "partition_indexes": [0]}],
        },
    )
    pair.compare(46, {"timeout_ms": 30000, "topics": []})
