"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs: topics and brokers, validation, synonyms, types."""

from __future__ import annotations

import time

import pytest

from kstub.compat.realkafka import TEST_SETTINGS

from support.diff_requests import create
from support.differential import Pair, Side, differences, normalise

# kstub gets the static settings the real Kafka node has, so that config sources compare
pytestmark = pytest.mark.kstub(config=dict(TEST_SETTINGS))

TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


def describe(resources: list[tuple[int, str, list[str] | None]], synonyms: bool = False, docs: bool = False) -> dict:
    return {
        "resources": [{"resource_type": t, "resource_name": n, "configuration_keys": keys} for t, n, keys in resources],
        "include_synonyms": synonyms,
        "include_documentation": docs,
    }


def settled(pair: Pair, body: dict) -> None:
    """Compare a DescribeConfigs after a change: Kafka's broker applies config changes a moment after the
    controller commits them, so ask again (a few seconds at most) until both answers agree, then compare."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        ours, theirs = (normalise(side, side.conn.request(32, body)) for side in pair.sides)
        if not differences(ours, theirs):
            break
        time.sleep(0.1)
    pair.compare(32, body)


def broker(side: Side) -> str:
    return str(sorted(side.nodes)[0])


@pytest.mark.parametrize("version", [1, 2, 3, 4])
@pytest.mark.parametrize("synonyms", [False, True])
def test_describe_topic(pair: Pair, version: int, synonyms: bool) -> None:
    name = create(pair, configs={"retention.ms": "100000", "cleanup.policy": "compact"})
    pair.compare(32, describe([(TOPIC, name, None)], synonyms), version=version, ignore=("documentation",))


def test_describe_topic_documentation(pair: Pair) -> None:
    name = create(pair)
    pair.compare(32, describe([(TOPIC, name, ["retention.ms", "segment.bytes"])], docs=True), ignore=("documentation",))
    kstub, kafka = pair.send(32, describe([(TOPIC, name, None)], docs=True))
    # the texts are each project's own; both document every entry when asked
    for answer in (kstub, kafka):
        assert all(c.documentation for c in answer.results[0].configs), answer.results[0].configs


@pytest.mark.parametrize(
    "keys",
    [
        ["retention.ms"],
        ["retention.ms", "no.such.config"],
        ["no.such.config"],
        ["min.insync.replicas", "segment.ms"],
        [],
    ],
    ids=["one", "with-unknown", "only-unknown", "two", "empty-list"],
)
def test_describe_topic_keys(pair: Pair, keys: list[str]) -> None:
    name = create(pair, configs={"segment.ms": "3600000"})
    pair.compare(32, describe([(TOPIC, name, keys)], synonyms=True), ignore=("documentation",))


def test_describe_unknown_and_invalid_topics(pair: Pair) -> None:
    pair.compare(32, describe([(TOPIC, pair.name(), None)]))
    pair.compare(32, describe([(TOPIC, "bad name", None)]))
    pair.compare(32, describe([(TOPIC, "", None)]))


@pytest.mark.parametrize(
    "keys",
    [
        ["num.partitions", "auto.create.topics.enable", "log.retention.hours", "message.max.bytes"],
        ["log.retention.ms", "log.retention.minutes", "log.roll.hours", "min.insync.replicas"],
        ["no.such.setting"],
    ],
    ids=["static-and-default", "null-defaults", "unknown"],
)
@pytest.mark.parametrize("synonyms", [False, True])
def test_describe_broker_keys(pair: Pair, keys: list[str], synonyms: bool) -> None:
    pair.compare(32, lambda side: describe([(BROKER, broker(side), keys)], synonyms), ignore=("documentation",))


def test_describe_broker_errors(pair: Pair) -> None:
    pair.compare(32, describe([(BROKER, "9999", ["num.partitions"])]))
    pair.compare(32, describe([(BROKER, "abc", ["num.partitions"])]))
    pair.compare(32, describe([(BROKER_LOGGER, "9999", None)]))
    pair.compare(32, describe([(BROKER_LOGGER, "", None)]))


def test_describe_cluster_default_broker(pair: Pair) -> None:
    pair.compare(32, describe([(BROKER, "", ["min.insync.replicas", "log.retention.ms"])], synonyms=True))


@pytest.mark.parametrize("resource_type", [0, 1, 3, 99])
def test_describe_other_resource_types(pair: Pair, resource_type: int) -> None:
    pair.compare(32, describe([(resource_type, "x", None)]))


def test_describe_duplicate_resources(pair: Pair) -> None:
    name = create(pair)
    pair.compare(32, describe([(TOPIC, name, ["retention.ms"]), (TOPIC, name, ["segment.ms"])]))


# --- AlterConfigs ------------------------------------------------------------------------


def alter(resource_type: int, name: str, configs: list[tuple[str, str | None]], validate_only: bool = False) -> dict:
    return {
        "resources": [
            {
                "resource_type": resource_type,
                "resource_name": name,
                "configs": [{"name": k, "value": v} for k, v in configs],
            }
        ],
        "validate_only": validate_only,
    }


@pytest.mark.parametrize("validate_only", [False, True])
def test_alter_topic(pair: Pair, validate_only: bool) -> None:
    name = create(pair, configs={"segment.ms": "3600000"})
    pair.compare(
        33, alter(TOPIC, name, [("retention.ms", "5000"), ("cleanup.policy", "compact,delete")], validate_only)
    )
    settled(pair, describe([(TOPIC, name, ["retention.ms", "cleanup.policy", "segment.ms"])], synonyms=True))


@pytest.mark.parametrize(
    "configs",
    [
        [("retention.ms", "soon")],
        [("no.such.config", "1")],
        [("retention.ms", None)],
        [("retention.ms", "1"), ("retention.ms", "2")],
        [("min.insync.replicas", "0")],
        [("max.compaction.lag.ms", "1"), ("min.compaction.lag.ms", "5")],
    ],
    ids=["bad-value", "unknown-name", "null-value", "duplicate-key", "below-minimum", "lag-conflict"],
)
def test_alter_topic_refused(pair: Pair, configs: list) -> None:
    name = create(pair)
    pair.compare(33, alter(TOPIC, name, configs))
    pair.compare(32, describe([(TOPIC, name, ["retention.ms", "min.insync.replicas"])]))


def test_alter_unknown_topic_and_types(pair: Pair) -> None:
    pair.compare(33, alter(TOPIC, pair.name(), [("retention.ms", "5000")]))
    pair.compare(33, alter(TOPIC, "bad name", [("retention.ms", "5000")]))
    pair.compare(33, alter(TOPIC, "", [("retention.ms", "5000")]))
    pair.compare(33, alter(99, "x", [("retention.ms", "5000")]))


@pytest.mark.parametrize(
    "configs",
    [[("log.retention.ms", "100000")], [("num.partitions", "3")], [("log.retention.ms", "soon")], [("no.such", "1")]],
    ids=["dynamic", "static-only", "bad-value", "unknown"],
)
def test_alter_broker_validate_only(pair: Pair, configs: list) -> None:
    # validate_only: the real Kafka node is shared by the whole run
    pair.compare(33, lambda side: alter(BROKER, broker(side), configs, validate_only=True))
    pair.compare(33, alter(BROKER, "", configs, validate_only=True))


def test_alter_other_broker(pair: Pair) -> None:
    pair.compare(33, alter(BROKER, "9999", [("log.retention.ms", "100000")], validate_only=True))


# --- IncrementalAlterConfigs -------------------------------------------------------------


def incremental(resource_type: int, name: str, ops: list[tuple[str, int, str | None]], validate_only=False) -> dict:
    return {
        "resources": [
            {
                "resource_type": resource_type,
                "resource_name": name,
                "configs": [{"name": k, "config_operation": op, "value": v} for k, op, v in ops],
            }
        ],
        "validate_only": validate_only,
    }


@pytest.mark.parametrize(
    "ops",
    [
        [("retention.ms", SET, "5000")],
        [("segment.ms", DELETE, None)],
        [("retention.ms", DELETE, None)],
        [("cleanup.policy", APPEND, "compact")],
        [("cleanup.policy", SUBTRACT, "delete")],
        [("cleanup.policy", SUBTRACT, "compact")],
        [("leader.replication.throttled.replicas", APPEND, "0:1")],
        [("retention.ms", SET, "1"), ("segment.ms", SET, "7200000")],
    ],
    ids=["set", "delete", "delete-unset", "append", "subtract", "subtract-absent", "append-empty-list", "two"],
)
@pytest.mark.parametrize("validate_only", [False, True])
def test_incremental_topic(pair: Pair, ops: list, validate_only: bool) -> None:
    name = create(pair, configs={"segment.ms": "3600000"})
    pair.compare(44, incremental(TOPIC, name, ops, validate_only))
    settled(pair, describe([(TOPIC, name, ["retention.ms", "segment.ms", "cleanup.policy"])], synonyms=True))


@pytest.mark.parametrize(
    "ops",
    [
        [("retention.ms", SET, "soon")],
        [("no.such.config", SET, "1")],
        [("retention.ms", SET, None)],
        [("retention.ms", SET, "1"), ("retention.ms", DELETE, None)],
        [("retention.ms", APPEND, "5")],
        [("retention.ms", SUBTRACT, "5")],
        [("cleanup.policy", APPEND, "bogus")],
        [("no.such.config", DELETE, None)],
    ],
    ids=[
        "bad-value", "unknown-name", "null-set", "duplicate-key", "append-to-long", "subtract-from-long",
        "append-bad-value", "delete-unknown",
    ],
)  # fmt: skip
def test_incremental_topic_refused(pair: Pair, ops: list) -> None:
    name = create(pair)
    pair.compare(44, incremental(TOPIC, name, ops))


@pytest.mark.parametrize("operation", [4, 7, -1])
def test_incremental_unknown_operation(pair: Pair, operation: int) -> None:
    name = create(pair)
    pair.compare(
        44, incremental(TOPIC, name, [("retention.ms", operation, "5")]), known="incremental-unknown-operation"
    )


def test_incremental_unknown_topic(pair: Pair) -> None:
    pair.compare(44, incremental(TOPIC, pair.name(), [("retention.ms", SET, "5000")]))
    pair.compare(44, incremental(TOPIC, "bad name", [("retention.ms", SET, "5000")]))


@pytest.mark.parametrize(
    "ops",
    [
        [("log.retention.ms", SET, "100000")],
        [("num.partitions", SET, "3")],
        [("log.retention.ms", SET, "soon")],
        [("log.retention.ms", DELETE, None)],
        [("log.cleanup.policy", APPEND, "compact")],
    ],
    ids=["dynamic", "static-only", "bad-value", "delete", "append"],
)
def test_incremental_broker_validate_only(pair: Pair, ops: list) -> None:
    pair.compare(44, lambda side: incremental(BROKER, broker(side), ops, validate_only=True))
    pair.compare(44, incremental(BROKER, "", ops, validate_only=True))


def test_cluster_min_insync_replicas_stays(pair: Pair) -> None:
    pair.compare(44, incremental(BROKER, "", [("min.insync.replicas", DELETE, None)], validate_only=True))
    pair.compare(44, incremental(BROKER, "", [("min.insync.replicas", SET, "1")], validate_only=True))
    pair.compare(33, alter(BROKER, "", [("min.insync.replicas", "1")], validate_only=True))


def test_incremental_duplicate_resources(pair: Pair) -> None:
    name = create(pair)
    body = incremental(TOPIC, name, [("retention.ms", SET, "5000")])
    body["resources"] *= 2
    pair.compare(44, body)
