"""Helpers for multi-broker tests: cluster snapshots and waiting for a condition with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kstub.embedded import EmbeddedCluster

from support.raw import RawClient

DEADLINE = 20.0


def wait_until(kc: EmbeddedCluster, condition: Callable[[], Any], timeout: float = DEADLINE, what: str = "") -> Any:
    """Evaluate `condition` on the Trio thread until it is truthy (returned), or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = kc.call(condition)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


def partition_state(kc: EmbeddedCluster, topic: str, index: int = 0) -> dict[str, Any]:
    """leader, leader_epoch, isr, replicas, high_watermark and each replica's log end offset."""

    def snap() -> dict[str, Any]:
        (state,) = [p for p in kc.cluster.control.describe_partitions(topic) if p["partition"] == index]
        state["leo"] = {r["broker"]: r["log_end_offset"] for r in state.pop("replica_logs")}
        return state

    return kc.call(snap)


def create_topic(kc: EmbeddedCluster, name: str, partitions: int = 1, rf: int = 3, **configs: str) -> None:
    kc.call(lambda: kc.cluster.create_topic(name, partitions, rf, {k.replace("_", "."): v for k, v in configs.items()}))


def bootstrap_of(kc: EmbeddedCluster, broker_id: int) -> str:
    (b,) = [b for b in kc.brokers if b.node_id == broker_id]
    return f"{b.advertised_host}:{b.port}"


def produce(c: RawClient, topic: str, records: bytes, *, acks: int = -1, timeout_ms: int = 5000, partition: int = 0):
    body = c.request(
        0,
        9,
        {
            "acks": acks,
            "timeout_ms": timeout_ms,
            "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": records}]}],
        },
    )
    return body.responses[0].partition_responses[0]


def meta(c: RawClient, *topics: str):
    return c.request(3, 12, {"topics": [{"name": t} for t in topics] if topics else None})
