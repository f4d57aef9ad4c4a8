"""Reassignments in progress, kstub (3 brokers) against a real 3-node Kafka: the same moves, the same
ListPartitionReassignments answers, the same refusals, the same cancellation.

A move to a broker that is down (stopped on kstub, its process killed on Kafka: still registered, fenced)
cannot complete, so both brokers hold it in progress while the test looks. Node ids are compared by rank.
"""

from __future__ import annotations

import time
from typing import Any

from kstub.compat.realkafka import RealKafka
from kstub.embedded import EmbeddedCluster

from support.differential import Pair, Side


def _ids(side: Side, ranks: list[int]) -> list[int]:
    nodes = sorted(side.nodes)
    return [nodes[r] for r in ranks]


def _ranks(side: Side, ids: Any) -> list[int]:
    return [side.nodes[i] for i in ids]


def _alter(pair: Pair, topic: str, moves: dict[int, list[int] | None], **extra: Any) -> None:
    def body(side: Side) -> dict[str, Any]:
        partitions = [
            {"partition_index": i, "replicas": None if r is None else _ids(side, r)} for i, r in moves.items()
        ]
        return {"timeout_ms": 30000, "topics": [{"name": topic, "partitions": partitions}], **extra}

    pair.compare(45, body, version=1)


def _listed(pair: Pair, topic: str, topics: list | None) -> list[tuple[int, list[int], list[int], list[int]]]:
    """ListPartitionReassignments on both, this test's topic only, node ids as ranks."""
    answers = []
    for side in pair.sides:
        answer = side.conn.request(46, {"timeout_ms": 30000, "topics": topics}, version=0)
        assert answer.error_code == 0
        answers.append(
            [
                (
                    p.partition_index,
                    _ranks(side, p.replicas),
                    _ranks(side, p.adding_replicas),
                    _ranks(side, p.removing_replicas),
                )
                for t in answer.topics
                if t.name == topic
                for p in t.partitions
            ]
        )
    pair.judge("ListPartitionReassignments", answers[0], answers[1])
    return answers[0]


def _replicas(side: Side, topic: str) -> dict[int, list[int]]:
    md = side.conn.request(3, {"topics": [{"name": topic}], "allow_auto_topic_creation": False}, version=12)
    return {p.partition_index: _ranks(side, p.replica_nodes) for p in md.topics[0].partitions}


def _until(what: str, condition: Any) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_moves_in_progress_as_kafka() -> None:
    with RealKafka(brokers=3) as kafka, EmbeddedCluster(brokers=3) as kstub:
        pair = Pair(kstub.bootstrap_servers, kafka.bootstrap_servers)
        try:
            topic = pair.name("moving")

            def create(side: Side) -> dict[str, Any]:
                assignments = [{"partition_index": i, "broker_ids": _ids(side, [0])} for i in range(2)]
                return {
                    "topics": [{"name": topic, "num_partitions": -1, "replication_factor": -1,
                                "assignments": assignments, "configs": []}],
                    "timeout_ms": 30000, "validate_only": False,
                }  # fmt: skip

            pair.compare(19, create)
            for side in pair.sides:
                _until(f"{side.name} knows {topic}", lambda s=side: len(_replicas(s, topic)) == 2)
            # the third broker goes down: moves to it cannot complete
            kstub.control.stop_broker(2)
            kafka.processes[2].kill()
            kafka.processes[2].wait()

            _alter(pair, topic, {0: [2]})  # replace the only replica
            _alter(pair, topic, {1: [0, 2]})  # add one
            assert _listed(pair, topic, None) == [(0, [2, 0], [2], [0]), (1, [0, 2], [2], [])]
            _listed(pair, topic, [{"name": topic, "partition_indexes": [1, 0, 7]}])
            # v1's check counts the replicas the move heads to (1 for partition 0), not those it holds now
            _alter(pair, topic, {0: [2, 1]}, allow_replication_factor_change=False)
            _alter(pair, topic, {0: [2]}, allow_replication_factor_change=False)
            _alter(pair, topic, {0: None, 1: None})  # cancel both
            _alter(pair, topic, {0: None})  # nothing left to cancel: NO_REASSIGNMENT_IN_PROGRESS
            assert _listed(pair, topic, None) == []
            pair.judge("replicas after the cancellation", _replicas(pair.kstub, topic), _replicas(pair.kafka, topic))
            assert _replicas(pair.kstub, topic) == {0: [0], 1: [0]}
        finally:
            pair.close()
