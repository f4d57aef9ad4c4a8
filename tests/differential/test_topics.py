"""CreateTopics, DeleteTopics and CreatePartitions: names, counts, replication, configs, assignments."""

from __future__ import annotations

import uuid

import pytest

from support.diff_requests import create, create_body, wait_for_leaders
from support.differential import Pair, Side


def node(side: Side, rank: int = 0) -> int:
    """The node id of the broker of this rank on `side` (bodies naming brokers are side-specific)."""
    return sorted(side.nodes)[rank] if rank < len(side.nodes) else 1000 + rank


@pytest.mark.parametrize("version", [2, 3, 4, 5, 6, 7])
def test_create(pair: Pair, version: int) -> None:
    name = pair.name()
    pair.compare(19, create_body(name, 2), version=version)
    wait_for_leaders(pair, name, 2)


@pytest.mark.parametrize(
    "name", ["", ".", "..", "has space", "slash/name", "x" * 250, "ünicode", "tab\t"], ids=lambda n: repr(n)[:12]
)
def test_invalid_names(pair: Pair, name: str) -> None:
    pair.compare(19, create_body(name))


def test_longest_name(pair: Pair) -> None:
    name = (pair.name() + "x" * 249)[:249]
    pair.compare(19, create_body(name))


def test_dot_underscore_collision(pair: Pair) -> None:
    base = pair.name()
    create(pair, f"{base}.a_b")
    pair.compare(19, create_body(f"{base}_a.b"))
    pair.compare(19, create_body(f"{base}_a.b", validate_only=True))


def test_existing_topic(pair: Pair) -> None:
    name = create(pair)
    pair.compare(19, create_body(name))
    pair.compare(19, create_body(name, validate_only=True))


def test_duplicate_names_in_one_request(pair: Pair) -> None:
    name = pair.name()
    one = create_body(name)["topics"][0]
    other = create_body(pair.name())["topics"][0]
    pair.compare(19, {"topics": [one, one], "timeout_ms": 5000, "validate_only": True})
    pair.compare(19, {"topics": [other, one, one], "timeout_ms": 5000, "validate_only": True})


@pytest.mark.parametrize("rf", [2, 3, 0, -2, 32767])
def test_replication_factor(pair: Pair, rf: int) -> None:
    pair.compare(19, create_body(pair.name(), 1, rf))


@pytest.mark.parametrize("partitions", [0, -2, -100])
def test_partition_counts_not_positive(pair: Pair, partitions: int) -> None:
    pair.compare(19, create_body(pair.name(), partitions))


def test_default_partitions_and_replication(pair: Pair) -> None:
    name = pair.name()
    pair.compare(19, create_body(name, -1, -1))
    wait_for_leaders(pair, name, 1)


@pytest.mark.parametrize("partitions", [2**31 - 1, 10**6])
def test_absurd_partition_counts(pair: Pair, partitions: int) -> None:
    pair.compare(19, create_body(pair.name(), partitions, validate_only=True))
    pair.compare(19, create_body(pair.name(), partitions))


@pytest.mark.parametrize("validate_only", [True, False])
def test_validate_only(pair: Pair, validate_only: bool) -> None:
    name = pair.name()
    pair.compare(19, create_body(name, 3, configs={"retention.ms": "1000"}, validate_only=validate_only))
    if validate_only:
        pair.compare(3, {"topics": [{"name": name}], "allow_auto_topic_creation": False})
    else:
        wait_for_leaders(pair, name, 3)


@pytest.mark.parametrize(
    "configs",
    [
        {"no.such.config": "1"},
        {"retention.ms": "abc"},
        {"retention.ms": "-5"},
        {"cleanup.policy": "bogus"},
        {"min.insync.replicas": "0"},
        {"max.message.bytes": "-1"},
        {"compression.type": "brotli"},
        {"retention.ms": None},
        {"segment.bytes": "1"},
        {"message.timestamp.type": "Sometime"},
        {"unclean.leader.election.enable": "maybe"},
        {"broker.id": "3"},
    ],
    ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()),
)
def test_bad_configs(pair: Pair, configs: dict) -> None:
    pair.compare(19, create_body(pair.name(), configs=configs, validate_only=True))


def test_duplicate_config_names(pair: Pair) -> None:
    body = create_body(pair.name(), validate_only=True)
    body["topics"][0]["configs"] = [{"name": "retention.ms", "value": "1000"}, {"name": "retention.ms", "value": "2"}]
    pair.compare(19, body)


def test_good_configs_are_echoed(pair: Pair) -> None:
    configs = {"cleanup.policy": "compact,delete", "retention.ms": "60000", "compression.type": "zstd"}
    pair.compare(19, create_body(pair.name(), configs=configs, validate_only=True))


def _assigned(name: str, assignments: dict[int, list[int]], **kw) -> callable:
    def build(side: Side) -> dict:
        return create_body(
            name, -1, -1, assignments={p: [node(side, r) for r in rs] for p, rs in assignments.items()}, **kw
        )

    return build


def test_assignment(pair: Pair) -> None:
    name = pair.name()
    pair.compare(19, _assigned(name, {0: [0], 1: [0]}))
    wait_for_leaders(pair, name, 2)


@pytest.mark.parametrize(
    "assignments",
    [{0: [5]}, {0: [0, 0]}, {1: [0]}, {0: [0], 2: [0]}, {0: []}, {0: [0], 1: [0, 5]}],
    ids=["unknown-broker", "duplicate-broker", "not-from-0", "gap", "empty", "uneven"],
)
def test_bad_assignments(pair: Pair, assignments: dict) -> None:
    pair.compare(19, _assigned(pair.name(), assignments, validate_only=True))


def test_assignment_with_counts_set(pair: Pair) -> None:
    name = pair.name()

    def build(side: Side) -> dict:
        body = create_body(name, 1, 1, assignments={0: [node(side)]}, validate_only=True)
        return body

    pair.compare(19, build)


# --- DeleteTopics ------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 4, 5, 6])
def test_delete_by_name(pair: Pair, version: int) -> None:
    name = create(pair)
    if version >= 6:
        body = {"topics": [{"name": name}], "timeout_ms": 10000}
    else:
        body = {"topic_names": [name], "timeout_ms": 10000}
    pair.compare(20, body, version=version)


@pytest.mark.parametrize("version", [1, 5, 6])
def test_delete_unknown(pair: Pair, version: int) -> None:
    name = pair.name()
    body = {"topics": [{"name": name}], "topic_names": [name], "timeout_ms": 10000}
    pair.compare(20, body, version=version)


def test_delete_by_id(pair: Pair) -> None:
    name = create(pair)
    ids = {}
    for side in pair.sides:
        ids[side.name] = (
            side.conn.request(3, {"topics": [{"name": name}], "allow_auto_topic_creation": False}).topics[0].topic_id
        )
    pair.compare(20, lambda side: {"topics": [{"name": None, "topic_id": ids[side.name]}], "timeout_ms": 10000})
    pair.compare(20, lambda side: {"topics": [{"name": None, "topic_id": ids[side.name]}], "timeout_ms": 10000})


def test_delete_unknown_id(pair: Pair) -> None:
    pair.compare(20, {"topics": [{"name": None, "topic_id": uuid.uuid4()}], "timeout_ms": 10000})


def test_delete_invalid_name(pair: Pair) -> None:
    pair.compare(20, {"topics": [{"name": "bad name"}], "timeout_ms": 10000})


# --- CreatePartitions --------------------------------------------------------------


def grow(name: str, count: int, *, validate_only: bool = False, assignments=None) -> dict:
    return {
        "topics": [{"name": name, "count": count, "assignments": assignments}],
        "timeout_ms": 10000,
        "validate_only": validate_only,
    }


@pytest.mark.parametrize("count", [1, 2, 3, 0, -1])
def test_partitions_not_more(pair: Pair, count: int) -> None:
    name = create(pair, partitions=3)
    pair.compare(37, grow(name, count))


@pytest.mark.parametrize("validate_only", [True, False])
def test_partitions_increase(pair: Pair, validate_only: bool) -> None:
    name = create(pair, partitions=1)
    pair.compare(37, grow(name, 3, validate_only=validate_only))
    pair.compare(
        3, {"topics": [{"name": name}], "allow_auto_topic_creation": False}
    ) if validate_only else wait_for_leaders(pair, name, 3)


def test_partitions_unknown_topic(pair: Pair) -> None:
    pair.compare(37, grow(pair.name(), 3))
    pair.compare(37, grow("bad name", 3))


def test_partitions_duplicate_topic(pair: Pair) -> None:
    name = create(pair)
    body = grow(name, 2)
    body["topics"] *= 2
    pair.compare(37, body)


@pytest.mark.parametrize(
    "ranks", [[[0]], [[0], [0]], [[5]], [[0, 0]], [[]]], ids=["ok", "too-many", "unknown-broker", "duplicate", "empty"]
)
def test_partitions_assignments(pair: Pair, ranks: list[list[int]]) -> None:
    name = create(pair)
    pair.compare(
        37,
        lambda side: grow(
            name, 2, validate_only=True, assignments=[{"broker_ids": [node(side, r) for r in rs]} for rs in ranks]
        ),
    )


@pytest.mark.parametrize("count", [2**31 - 1])
def test_partitions_absurd(pair: Pair, count: int) -> None:
    name = create(pair)
    pair.compare(37, grow(name, count, validate_only=True))
