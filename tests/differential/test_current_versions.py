"""The newer versions of ListOffsets and Metadata (Kafka 4.x): tiered-storage timestamps, the top-level error."""

from __future__ import annotations

import pytest

from support.batches import batch
from support.diff_requests import create, list_offsets_body, produce
from support.differential import Pair

#: earliest local, latest tiered, earliest pending upload: understood from v8, v9 and v11
TIERED = (-4, -5, -6)


@pytest.mark.parametrize("version", [7, 8, 9, 10, 11])
def test_tiered_storage_timestamps_without_tiered_storage(pair: Pair, version: int) -> None:
    name = create(pair, partitions=1)
    produce(pair, name, batch(3), partition=0)
    produce(pair, name, batch(2), partition=0)
    body = {"topics": [{"name": name, "partitions": [{"partition_index": 0, "offset": 2}]}], "timeout_ms": 10000}
    pair.compare(21, body)  # the log starts at 2 now
    for ts in (*TIERED, -1, -2, -3):
        answer, _ = pair.compare(2, {**list_offsets_body(name, ts), "timeout_ms": 5000}, version=version)
        error = answer["topics"][0]["partitions"][0]["error_code"]
        understood = {-4: 8, -5: 9, -6: 11}.get(ts, 7) <= version
        assert error == (0 if understood else 35), (ts, answer)


def test_metadata_v13_top_level_error(pair: Pair) -> None:
    name = create(pair, partitions=2)
    answer, _ = pair.compare(3, {"topics": [{"name": name}], "allow_auto_topic_creation": False}, version=13)
    assert answer["error_code"] == 0
    pair.compare(3, {"topics": [{"name": pair.name()}], "allow_auto_topic_creation": False}, version=13)


@pytest.mark.parametrize("include_fenced", [False, True])
def test_describe_cluster_v2(pair: Pair, include_fenced: bool) -> None:
    body = {
        "include_cluster_authorized_operations": False,
        "endpoint_type": 1,
        "include_fenced_brokers": include_fenced,
    }
    answer, _ = pair.compare(60, body, version=2)
    assert [b["is_fenced"] for b in answer["brokers"]] == [False]


def test_describe_log_dirs_v5(pair: Pair) -> None:
    name = create(pair, partitions=2)
    produce(pair, name, batch(3), partition=1)
    body = {"topics": [{"topic": name, "partitions": [0, 1]}]}
    answer, _ = pair.compare(35, body, version=5, ignore=("log_dir", "total_bytes", "usable_bytes", "partition_size"))
    assert [r["is_cordoned"] for r in answer["results"]] == [False]
