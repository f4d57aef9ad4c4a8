"""Client telemetry (KIP-714) as Kafka 4.4 answers it without a metrics plugin, and ListConfigResources.

Neither broker advertises GetTelemetrySubscriptions or PushTelemetry (the
ApiVersions comparison checks that kstub advertises nothing Kafka does not);
both answer them when asked. Instance and subscription ids are each broker's
own (normalised to aliases, turned back for the next request).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from support.diff_requests import create
from support.differential import Pair, Side

ZERO = uuid.UUID(int=0)


def push(instance: Any, subscription: Any, *, terminating: bool = False, compression: int = 0,
         metrics: bytes = b"") -> Any:  # fmt: skip
    def body(side: Side) -> dict[str, Any]:
        return {
            "client_instance_id": side.raw("client_instance", instance),
            "subscription_id": side.raw("subscription", subscription),
            "terminating": terminating,
            "compression_type": compression,
            "metrics": metrics,
        }

    return body


def subscribe(pair: Pair, instance: Any = ZERO) -> tuple[Any, Any]:
    answer, _ = pair.compare(71, lambda side: {"client_instance_id": side.raw("client_instance", instance)}, version=0)
    return answer["client_instance_id"], answer["subscription_id"]


def test_neither_advertises_telemetry(pair: Pair) -> None:
    for side in pair.sides:
        assert 71 not in side.conn.versions and 72 not in side.conn.versions, side.name


def test_subscription_and_pushes(pair: Pair) -> None:
    instance, subscription = subscribe(pair)
    assert instance != ZERO and subscription != 0
    again, _ = pair.compare(71, lambda side: {"client_instance_id": side.raw("client_instance", instance)}, version=0)
    assert again["error_code"] == 89  # within the push interval
    assert pair.compare(72, push(instance, subscription), version=0)[0]["error_code"] == 0
    assert pair.compare(72, push(instance, subscription), version=0)[0]["error_code"] == 89
    assert pair.compare(72, push(instance, subscription, terminating=True), version=0)[0]["error_code"] == 0
    assert pair.compare(72, push(instance, subscription, terminating=True), version=0)[0]["error_code"] == 42
    assert pair.compare(72, push(instance, subscription), version=0)[0]["error_code"] == 42


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ({"compression": 9}, 76),
        ({"metrics": b"x" * 1_048_577}, 118),
        ({"wrong_subscription": True}, 117),
    ],
)
def test_push_errors(pair: Pair, first: dict[str, Any], then: int) -> None:
    instance, subscription = subscribe(pair)
    wrong = first.pop("wrong_subscription", False)
    answer, _ = pair.compare(72, push(instance, 12345 if wrong else subscription, **first), version=0)
    assert answer["error_code"] == then
    # the failed push still counted: the next one is too soon
    assert pair.compare(72, push(instance, subscription), version=0)[0]["error_code"] == 89


def test_pushes_from_unknown_instances(pair: Pair) -> None:
    assert pair.compare(72, push(ZERO, 0), version=0)[0]["error_code"] == 42
    stranger = uuid.uuid4()
    assert pair.compare(72, push(stranger, 5), version=0)[0]["error_code"] == 117
    # an instance id the broker never gave is taken as it is
    instance, _ = subscribe(pair, uuid.uuid4())
    assert instance != ZERO


def test_list_config_resources(pair: Pair) -> None:
    name = create(pair)

    def mine(answer: Any) -> Any:
        kept = [r for r in answer["config_resources"] if r["resource_type"] != 2 or r["resource_name"] == name]
        return {**answer, "config_resources": sorted(kept, key=repr)}

    for version, types in [
        (0, []),
        (1, []),
        (1, [2]),
        (1, [4]),
        (1, [8]),
        (1, [16]),
        (1, [32]),
        (1, [2, 4]),
        (1, [99]),
    ]:
        pair.compare(74, {"resource_types": types}, version=version, view=mine)
