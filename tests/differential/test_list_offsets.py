"""ListOffsets and OffsetForLeaderEpoch: earliest, latest, max timestamp, by timestamp; epochs."""

from __future__ import annotations

import pytest

from support.batches import batch
from support.diff_requests import create, list_offsets_body, produce
from support.differential import Pair

T = 1_700_000_000_000


def topic_with_times(pair: Pair) -> str:
    """Offsets 0-1 at T, T+1; 2-4 with no timestamps (-1); 5-7 at T+50, T+20, T+50; 8 at T+10."""
    name = create(pair)
    produce(pair, name, batch(2, ts=T))
    produce(pair, name, batch(3, ts=[-1, -1, -1]))
    produce(pair, name, batch(3, ts=[T + 50, T + 20, T + 50]))
    produce(pair, name, batch(1, ts=[T + 10]))
    return name


@pytest.mark.parametrize(
    "timestamp",
    [-1, -2, -3, 0, T - 1, T, T + 1, T + 2, T + 10, T + 11, T + 20, T + 21, T + 50, T + 51, 2**62],
)
def test_by_timestamp(pair: Pair, timestamp: int) -> None:
    name = topic_with_times(pair)
    pair.compare(2, list_offsets_body(name, timestamp))


@pytest.mark.parametrize("version", [1, 2, 4, 5, 6, 7])
@pytest.mark.parametrize("timestamp", [-1, -2, -3, T + 15])
def test_versions(pair: Pair, version: int, timestamp: int) -> None:
    name = topic_with_times(pair)
    pair.compare(2, list_offsets_body(name, timestamp), version=version)


@pytest.mark.parametrize("timestamp", [-4, -5, -6, -7, -100])
def test_other_negative_timestamps(pair: Pair, timestamp: int) -> None:
    name = topic_with_times(pair)
    pair.compare(2, list_offsets_body(name, timestamp))


def test_only_records_without_timestamps(pair: Pair) -> None:
    name = create(pair)
    produce(pair, name, batch(3, ts=[-1, -1, -1]))
    for timestamp in (-3, -1, -2, 0, T):
        pair.compare(2, list_offsets_body(name, timestamp))


@pytest.mark.parametrize("timestamp", [-1, -2, -3, T])
def test_empty_partition(pair: Pair, timestamp: int) -> None:
    name = create(pair)
    pair.compare(2, list_offsets_body(name, timestamp))


def test_unknown_topic_and_partition(pair: Pair) -> None:
    name = create(pair)
    pair.compare(2, list_offsets_body(pair.name(), -1))
    pair.compare(2, list_offsets_body(name, -1, partition=2))
    pair.compare(2, list_offsets_body(name, -1, partition=-1))


@pytest.mark.parametrize("epoch", [0, 1, 5])
def test_current_leader_epoch(pair: Pair, epoch: int) -> None:
    name = topic_with_times(pair)
    pair.compare(2, list_offsets_body(name, -1, current_leader_epoch=epoch))


@pytest.mark.parametrize("isolation_level", [0, 1])
def test_isolation_levels(pair: Pair, isolation_level: int) -> None:
    name = topic_with_times(pair)
    pair.compare(2, list_offsets_body(name, -1, isolation_level=isolation_level))


def test_after_delete_records(pair: Pair) -> None:
    name = topic_with_times(pair)
    body = {"topics": [{"name": name, "partitions": [{"partition_index": 0, "offset": 3}]}], "timeout_ms": 10000}
    pair.compare(21, body)
    for timestamp in (-2, -1, -3, T):
        pair.compare(2, list_offsets_body(name, timestamp))


# --- OffsetForLeaderEpoch ----------------------------------------------------------------


def epoch_body(topic: str, leader_epoch: int, *, partition: int = 0, current: int = -1, replica: int = -1) -> dict:
    return {
        "replica_id": replica,
        "topics": [
            {
                "topic": topic,
                "partitions": [{"partition": partition, "current_leader_epoch": current, "leader_epoch": leader_epoch}],
            }
        ],
    }


@pytest.mark.parametrize("leader_epoch", [-1, 0, 1, 3])
@pytest.mark.parametrize("version", [2, 3, 4])
def test_offset_for_leader_epoch(pair: Pair, leader_epoch: int, version: int) -> None:
    name = topic_with_times(pair)
    pair.compare(23, epoch_body(name, leader_epoch), version=version)


def test_offset_for_leader_epoch_errors(pair: Pair) -> None:
    name = topic_with_times(pair)
    pair.compare(23, epoch_body(pair.name(), 0))
    pair.compare(23, epoch_body(name, 0, partition=4))
    pair.compare(23, epoch_body(name, 0, current=2))
    pair.compare(23, epoch_body(name, 0, current=0))
    pair.compare(23, epoch_body(name, 0, replica=-2))


def test_offset_for_leader_epoch_empty_log(pair: Pair) -> None:
    name = create(pair)
    pair.compare(23, epoch_body(name, 0))
