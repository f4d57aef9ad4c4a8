"""Helpers for the cluster tests: record batches, and a whole server under Trio's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing
from kafka.record.default_records import DefaultRecordBatchBuilder

from kstub.cluster.config import BrokerConfig
from kstub.cluster.model import ClusterState, Partition
from kstub.protocol import ErrorCode
from kstub.protocol.records import ProducedBatch, read_produce_data
from kstub.server import ClusterServer, ListenerSpec


def batch(n: int = 1, *, pid: int = -1, epoch: int = -1, seq: int = -1, value: bytes = b"v") -> ProducedBatch:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        batch_size=1 << 30,
    )
    for i in range(n):
        builder.append(i, timestamp=1_700_000_000_000 + i, key=None, value=value, headers=[])
    (produced,) = read_produce_data(bytes(builder.build()), 9)
    return produced


LAG_MS = 1000


@asynccontextmanager
async def served(brokers: int = 3, **config: Any) -> AsyncIterator[tuple[ClusterState, ClusterServer]]:
    settings = {"replica.lag.time.max.ms": LAG_MS, "broker.session.timeout.ms": 500, **config}
    cluster = ClusterState(BrokerConfig({k.replace("_", "."): v for k, v in settings.items()}), clock=trio.current_time)
    server = ClusterServer(cluster, ListenerSpec(port=0, brokers=brokers))
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        yield cluster, server
        nursery.cancel_scope.cancel()


def topic(cluster: ClusterState, rf: int = 3, **configs: str) -> Partition:
    t = cluster.create_topic("t", 1, rf, {k.replace("_", "."): v for k, v in configs.items()})
    return t.partitions[0]


def append(p: Partition, records: int = 1) -> int:
    result = p.append([batch(records)], p.cluster.now_ms())
    assert result.error == ErrorCode.NONE
    return result.end_offset


def leos(p: Partition) -> dict[int, int]:
    return {r: p.logs[r].log_end_offset for r in p.replicas}


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()
