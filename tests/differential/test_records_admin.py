"""DeleteRecords, DescribeLogDirs and DescribeCluster."""

from __future__ import annotations

import pytest

from support.batches import batch
from support.diff_requests import create, list_offsets_body, produce
from support.differential import Pair


def delete_body(topic: str, offset: int, partition: int = 0) -> dict:
    return {
        "topics": [{"name": topic, "partitions": [{"partition_index": partition, "offset": offset}]}],
        "timeout_ms": 10000,
    }


def topic_with_data(pair: Pair, partitions: int = 1) -> str:
    name = create(pair, partitions=partitions)
    for p in range(partitions):
        produce(pair, name, batch(3), partition=p)
        produce(pair, name, batch(2, ts=1_700_000_100_000), partition=p)
    return name  # offsets 0-4, high watermark 5


@pytest.mark.parametrize("offset", [0, 2, 3, 5, 6, 100, -1, -2])
def test_delete_records(pair: Pair, offset: int) -> None:
    name = topic_with_data(pair)
    pair.compare(21, delete_body(name, offset))
    pair.compare(2, list_offsets_body(name, -2))


def test_delete_records_backwards(pair: Pair) -> None:
    name = topic_with_data(pair)
    pair.compare(21, delete_body(name, 4))
    pair.compare(21, delete_body(name, 2))
    pair.compare(21, delete_body(name, 4))


def test_delete_records_unknown(pair: Pair) -> None:
    name = topic_with_data(pair)
    pair.compare(21, delete_body(name, 1, partition=3))
    pair.compare(21, delete_body(pair.name(), 1))
    pair.compare(21, delete_body("bad name", 1))


def test_delete_records_several_partitions(pair: Pair) -> None:
    name = topic_with_data(pair, partitions=2)
    body = delete_body(name, 2)
    body["topics"][0]["partitions"] += [{"partition_index": 1, "offset": 9}, {"partition_index": 7, "offset": 0}]
    pair.compare(21, body, unordered=("partitions",))  # Kafka answers in hash order


def test_delete_records_compacted_topic(pair: Pair) -> None:
    name = create(pair, configs={"cleanup.policy": "compact"})
    produce(pair, name, batch(3))
    pair.compare(21, delete_body(name, 1))


def test_delete_records_empty_topic(pair: Pair) -> None:
    name = create(pair)
    pair.compare(21, delete_body(name, 0))
    pair.compare(21, delete_body(name, -1))
    pair.compare(21, delete_body(name, 1))


# --- DescribeLogDirs ---------------------------------------------------------------------


def _log_dirs(pair: Pair, body: dict, version: int | None = None) -> None:
    """Compare DescribeLogDirs, the directory's path and volume sizes aside (each machine's own), and
    partitions in any order (Kafka lists a topic's partitions in hash order)."""
    ignore = ("log_dir", "total_bytes", "usable_bytes")
    pair.compare(35, body, version=version, ignore=ignore, unordered=("partitions",))


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_describe_log_dirs(pair: Pair, version: int) -> None:
    name = create(pair, partitions=2)
    produce(pair, name, batch(3))
    _log_dirs(pair, {"topics": [{"topic": name, "partitions": [0, 1]}]}, version)


def test_describe_log_dirs_unknown(pair: Pair) -> None:
    name = create(pair)
    _log_dirs(pair, {"topics": [{"topic": name, "partitions": [0, 5]}]})
    _log_dirs(pair, {"topics": [{"topic": pair.name(), "partitions": [0]}]})
    _log_dirs(pair, {"topics": []})


def test_describe_log_dirs_every_topic_lists_ours(pair: Pair) -> None:
    name = create(pair)
    kstub, kafka = pair.send(35, {"topics": None})
    for answer in (kstub, kafka):
        assert answer.error_code == 0 and len(answer.results) == 1
        assert name in [t.name for t in answer.results[0].topics]


# --- DescribeCluster ---------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("operations", [False, True])
def test_describe_cluster(pair: Pair, version: int, operations: bool) -> None:
    pair.compare(60, {"include_cluster_authorized_operations": operations, "endpoint_type": 1}, version=version)


@pytest.mark.parametrize("endpoint_type", [2, 0, 3])
@pytest.mark.parametrize("version", [0, 1])
def test_describe_cluster_endpoint_types(pair: Pair, endpoint_type: int, version: int) -> None:
    pair.compare(60, {"include_cluster_authorized_operations": False, "endpoint_type": endpoint_type}, version=version)
