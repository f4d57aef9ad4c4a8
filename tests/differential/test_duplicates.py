"""The same partition (or topic) twice in one request, across the APIs that take partition lists."""

from __future__ import annotations

from support.batches import batch
from support.diff_requests import create, fetch_body, list_offsets_body, produce, produce_body
from support.differential import Pair


def _twice(body: dict, topics_key: str, parts_key: str) -> dict:
    entry = body[topics_key][0]
    entry[parts_key] = entry[parts_key] * 2
    return body


def test_list_offsets_same_partition_twice(pair: Pair) -> None:
    name = create(pair)
    produce(pair, name, batch(2))
    pair.compare(2, _twice(list_offsets_body(name, -1), "topics", "partitions"))


def test_list_offsets_same_topic_twice(pair: Pair) -> None:
    name = create(pair)
    body = list_offsets_body(name, -1)
    body["topics"] *= 2
    pair.compare(2, body)


def test_fetch_same_partition_twice(pair: Pair) -> None:
    name = create(pair)
    produce(pair, name, batch(2))
    pair.compare(1, _twice(fetch_body(name, 0), "topics", "partitions"))


def test_produce_same_partition_twice(pair: Pair) -> None:
    name = create(pair)
    pair.compare(0, _twice(produce_body(name, batch(2)), "topic_data", "partition_data"))


def test_delete_records_same_partition_twice(pair: Pair) -> None:
    name = create(pair)
    produce(pair, name, batch(3))
    body = {"topics": [{"name": name, "partitions": [{"partition_index": 0, "offset": 1}] * 2}], "timeout_ms": 10000}
    pair.compare(21, body)


def test_offset_for_leader_epoch_same_partition_twice(pair: Pair) -> None:
    name = create(pair)
    produce(pair, name, batch(3))
    part = {"partition": 0, "current_leader_epoch": -1, "leader_epoch": 0}
    pair.compare(23, {"replica_id": -1, "topics": [{"topic": name, "partitions": [part, part]}]})


def test_create_partitions_and_delete_topics_same_topic_twice(pair: Pair) -> None:
    name = create(pair)
    pair.compare(20, {"topics": [{"name": name}, {"name": name}], "timeout_ms": 10000})


def test_produce_same_partition_twice_different_data(pair: Pair) -> None:
    name = create(pair)
    body = produce_body(name, batch(2))
    body["topic_data"][0]["partition_data"].append({"index": 0, "records": batch(3, ts=1_700_000_500_000)})
    pair.compare(0, body)
    pair.compare(1, fetch_body(name, 0))


def test_fetch_same_partition_twice_different_offsets(pair: Pair) -> None:
    name = create(pair)
    produce(pair, name, batch(2))
    produce(pair, name, batch(3))
    body = fetch_body(name, 0)
    body["topics"][0]["partitions"].append({**body["topics"][0]["partitions"][0], "fetch_offset": 2})
    pair.compare(1, body)


def test_fetch_topic_split_around_another(pair: Pair) -> None:
    a, b = create(pair, partitions=2), create(pair)
    first, other = fetch_body(a, 0), fetch_body(b, 0)
    second = fetch_body(a, 0, partition=1)
    pair.compare(1, {**first, "topics": first["topics"] + other["topics"] + second["topics"]})


def test_delete_topics_same_topic_twice_then_other(pair: Pair) -> None:
    name, other = create(pair), create(pair)
    body = {"topics": [{"name": name}, {"name": other}, {"name": name}], "timeout_ms": 10000}
    pair.compare(20, body, unordered=("responses",))  # Kafka's order of the two answers varies
    pair.compare(3, {"topics": [{"name": name}], "allow_auto_topic_creation": False})
