"""Fetch: offsets in and out of range, byte limits, unknown partitions, isolation, watermarks and log start."""

from __future__ import annotations

import pytest

from support.batches import batch
from support.diff_requests import create, fetch_body, produce
from support.differential import Pair


def topic_with_data(pair: Pair, partitions: int = 1, batches: int = 3) -> str:
    name = create(pair, partitions=partitions)
    for p in range(partitions):
        for i in range(batches):
            produce(pair, name, batch(2 + i, ts=1_700_000_000_000 + 1000 * i, value_size=50), partition=p)
    return name


@pytest.mark.parametrize("version", [4, 5, 7, 11, 12])
def test_fetch_versions(pair: Pair, version: int) -> None:
    name = topic_with_data(pair)
    pair.compare(1, fetch_body(name, 0), version=version)
    pair.compare(1, fetch_body(name, 2), version=version)


@pytest.mark.parametrize("offset", [0, 1, 2, 5, 9, 10, 11, 100, -1, -2])
def test_fetch_offsets(pair: Pair, offset: int) -> None:
    name = topic_with_data(pair)  # offsets 0-8, high watermark 9
    pair.compare(1, fetch_body(name, offset))


@pytest.mark.parametrize("partition_max_bytes", [1, 100, 200, 300, 1 << 20])
def test_partition_max_bytes(pair: Pair, partition_max_bytes: int) -> None:
    name = topic_with_data(pair, partitions=2)
    body = fetch_body(name, 0, partition_max_bytes=partition_max_bytes)
    body["topics"][0]["partitions"].append({**body["topics"][0]["partitions"][0], "partition": 1})
    pair.compare(1, body)


@pytest.mark.parametrize("max_bytes", [0, 1, 150, 400, 1 << 20])
def test_response_max_bytes(pair: Pair, max_bytes: int) -> None:
    name = topic_with_data(pair, partitions=2)
    body = fetch_body(name, 0, max_bytes=max_bytes)
    body["topics"][0]["partitions"].append({**body["topics"][0]["partitions"][0], "partition": 1})
    pair.compare(1, body)


def test_unknown_topic_and_partitions(pair: Pair) -> None:
    name = topic_with_data(pair, batches=1)
    pair.compare(1, fetch_body(pair.name(), 0))
    pair.compare(1, fetch_body(name, 0, partition=1))
    pair.compare(1, fetch_body(name, 0, partition=-1))
    body = fetch_body(name, 0)
    body["topics"][0]["partitions"].append({**body["topics"][0]["partitions"][0], "partition": 3})
    pair.compare(1, body)


@pytest.mark.parametrize("isolation_level", [0, 1])
def test_isolation_levels(pair: Pair, isolation_level: int) -> None:
    name = topic_with_data(pair)
    pair.compare(1, fetch_body(name, 0, isolation_level=isolation_level))


@pytest.mark.parametrize("epoch", [-1, 0, 1, 7])
def test_current_leader_epoch(pair: Pair, epoch: int) -> None:
    name = topic_with_data(pair, batches=1)
    pair.compare(1, fetch_body(name, 0, current_leader_epoch=epoch))


def test_log_start_after_delete_records(pair: Pair) -> None:
    name = topic_with_data(pair)
    body = {"topics": [{"name": name, "partitions": [{"partition_index": 0, "offset": 4}]}], "timeout_ms": 10000}
    pair.compare(21, body)
    pair.compare(1, fetch_body(name, 0))  # below the log start: out of range
    pair.compare(1, fetch_body(name, 3))
    pair.compare(1, fetch_body(name, 4))
    pair.compare(1, fetch_body(name, 5))


def test_empty_partition(pair: Pair) -> None:
    name = create(pair)
    pair.compare(1, fetch_body(name, 0))
    pair.compare(1, fetch_body(name, 1))


@pytest.mark.parametrize("min_bytes", [1, 10_000])
def test_long_poll_ends_at_max_wait(pair: Pair, min_bytes: int) -> None:
    name = topic_with_data(pair, batches=1)
    pair.compare(1, fetch_body(name, 2, min_bytes=min_bytes, max_wait_ms=200))  # at the end: nothing comes
    pair.compare(1, fetch_body(name, 0, min_bytes=min_bytes, max_wait_ms=200))  # less than min_bytes: all there is


def _record_bytes(partition: object) -> int:
    records = partition.records  # type: ignore[attr-defined]
    if records is None:
        return 0
    return len(records) if isinstance(records, (bytes, bytearray, memoryview)) else sum(len(r) for r in records)


@pytest.mark.parametrize(("partition_max_bytes", "max_bytes"), [(100, 1 << 20), (200, 1 << 20), (300, 250), (1, 1)])
def test_a_limit_inside_a_batch_cuts_it_as_kafka_does(pair: Pair, partition_max_bytes: int, max_bytes: int) -> None:
    """Kafka answers a byte range, so a limit that falls inside a batch ends the records with the first bytes
    of that batch (the client drops them); the decoded comparison above cannot see them, the byte counts can."""
    name = topic_with_data(pair, partitions=2)
    body = fetch_body(name, 0, partition_max_bytes=partition_max_bytes, max_bytes=max_bytes)
    body["topics"][0]["partitions"].append({**body["topics"][0]["partitions"][0], "partition": 1})
    kstub, kafka = pair.send(1, body)
    sizes = [[_record_bytes(p) for t in answer.responses for p in t.partitions] for answer in (kstub, kafka)]
    assert sizes[0] == sizes[1], f"record bytes per partition: kstub {sizes[0]}, Kafka {sizes[1]}"
