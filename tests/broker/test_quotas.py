"""Byte-rate quotas throttle Produce and Fetch as Kafka does: throttle_time_ms, an empty throttled fetch.

The broker measures a client's bytes over 11 one-second windows and counts
at least 10 seconds: a burst of B bytes against a quota of 1000 B/s is
throttled for B - 10,000 ms, less the milliseconds the test took (bounded
below here by a second); a client without a quota never is.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from kstub.protocol import ErrorCode

from support.memory import MemoryClient, memory_cluster
from support.raw_requests import batch, create_req, fetch_req, produce_req

TOPIC = "quota-topic"


@pytest.fixture
async def cluster(autojump_clock):
    async with memory_cluster(1) as mc:
        yield mc


async def set_quota(c: MemoryClient, client_id: str | None, key: str, value: float) -> None:
    entry = {"entity": [{"entity_type": "client-id", "entity_name": client_id}], "ops": [{"key": key, "value": value}]}
    answer = await c.request(49, 1, {"entries": [entry], "validate_only": False})
    assert answer.entries[0].error_code == ErrorCode.NONE, answer


async def produced(c: MemoryClient, records: bytes) -> Any:
    req = produce_req(TOPIC, records)
    return await c.request(req.api_key, req.version, req.body)


async def test_producer_byte_rate(cluster, autojump_clock) -> None:
    conns = (cluster.connect(0, "admin"), cluster.connect(0, "slow"), cluster.connect(0, "free"))
    async with conns[0] as admin, conns[1] as slow, conns[2] as free:
        req = create_req(TOPIC)
        assert (await admin.request(req.api_key, req.version, req.body)).topics[0].error_code == 0
        big = batch(50, value_size=2000)  # ~100 kB
        expected = len(big) - 10_000
        assert (await produced(slow, big)).throttle_time_ms == 0  # no quota yet
        await set_quota(admin, "slow", "producer_byte_rate", 1000)
        answer = await produced(slow, big)
        assert answer.responses[0].partition_responses[0].error_code == 0  # throttled, but appended
        assert expected - 1000 < answer.throttle_time_ms <= expected
        assert (await produced(free, big)).throttle_time_ms == 0  # another client id: no quota
        # a quota far above the rate: no throttling
        await set_quota(admin, "slow", "producer_byte_rate", 1e9)
        assert (await produced(slow, big)).throttle_time_ms == 0


async def test_default_client_quota_applies_to_each_client(cluster, autojump_clock) -> None:
    async with cluster.connect(0, "admin") as admin, cluster.connect(0, "anyone") as anyone:
        req = create_req(TOPIC)
        await admin.request(req.api_key, req.version, req.body)
        await set_quota(admin, None, "producer_byte_rate", 1000)
        big = batch(50, value_size=2000)
        assert len(big) - 11_000 < (await produced(anyone, big)).throttle_time_ms <= len(big) - 10_000
        await set_quota(admin, "anyone", "producer_byte_rate", 1e9)  # its own quota comes first
        assert (await produced(anyone, batch(50, value_size=2000))).throttle_time_ms == 0


async def test_consumer_byte_rate(cluster, autojump_clock) -> None:
    async with cluster.connect(0, "admin") as admin, cluster.connect(0, "reader") as reader:
        req = create_req(TOPIC)
        await admin.request(req.api_key, req.version, req.body)
        for _ in range(5):
            await produced(admin, batch(20, value_size=200))  # 5 batches of ~4.5 kB
        fetch = fetch_req(TOPIC, 0)
        whole = await reader.request(fetch.api_key, fetch.version, fetch.body)
        assert whole.throttle_time_ms == 0 and len(whole.responses[0].partitions[0].records) > 20_000
        await set_quota(admin, "reader", "consumer_byte_rate", 1000)
        # a response carries no more than the quota lets through in its measured time (10 s: 10 kB): 2 batches
        capped = await reader.request(fetch.api_key, fetch.version, fetch.body)
        size = len(capped.responses[0].partitions[0].records)
        assert capped.throttle_time_ms == 0 and 5_000 < size <= 10_000
        # the same again puts the reader over its quota: an empty answer with the throttle time
        over = await reader.request(fetch.api_key, fetch.version, fetch.body)
        assert over.responses == [] and 0 < over.throttle_time_ms <= (2 * size - 10_000)


@pytest.mark.parametrize("version", [5, 9])
async def test_throttled_connection_is_muted(cluster, autojump_clock, version: int) -> None:
    """KIP-219: from Produce v6 the answer comes at once and the connection then waits out the throttle time;
    an older client gets its answer only after it (it would not wait by itself)."""
    async with cluster.connect(0, "admin") as admin, cluster.connect(0, "muted") as muted:
        req = create_req(TOPIC)
        await admin.request(req.api_key, req.version, req.body)
        await set_quota(admin, "muted", "producer_byte_rate", 1000)
        req = produce_req(TOPIC, batch(50, value_size=2000), version=version)
        start = trio.current_time()
        first = await muted.request(req.api_key, req.version, req.body)
        answered = trio.current_time() - start
        throttle = first.throttle_time_ms / 1000
        assert throttle > 60
        assert answered == (0 if version >= 6 else pytest.approx(throttle))
        await set_quota(admin, "muted", "producer_byte_rate", 1e9)
        second = await muted.request(req.api_key, req.version, req.body)
        assert second.throttle_time_ms == 0
        assert trio.current_time() - start == pytest.approx(throttle)  # not read before the throttle time passed
        assert (await admin.request(49, 1, {"entries": [], "validate_only": False})).entries == []  # others: served
