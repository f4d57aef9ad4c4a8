"""The fetch session cache's size, against a real Kafka of its own started with a small cache.

`max.incremental.fetch.session.cache.slots` is spread over 8 shards, so 7
slots give no session at all and 8 give one a shard, taken in turn: the ninth
full fetch in a row finds its shard full (the sessions are too new to evict)
and is answered without a session, on both brokers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kstub.embedded import EmbeddedCluster

from support.batches import batch
from support.diff_requests import create, produce, session_fetch
from support.differential import Pair
from support.real_kafka import start_real_kafka


@pytest.fixture(params=[7, 8])
def small_cache_pair(request: pytest.FixtureRequest) -> Iterator[tuple[Pair, int]]:
    slots = request.param
    config = {"max.incremental.fetch.session.cache.slots": str(slots)}
    kafka = start_real_kafka(config=config)
    try:
        with EmbeddedCluster(config={**config, "group.initial.rebalance.delay.ms": "0"}) as kstub:
            pair = Pair(kstub.bootstrap_servers, kafka.bootstrap_servers)
            try:
                yield pair, slots
            finally:
                pair.close()
    finally:
        kafka.stop()


def test_full_fetches_beyond_the_cache_get_no_session(small_cache_pair: tuple[Pair, int]) -> None:
    pair, slots = small_cache_pair
    name = create(pair)
    produce(pair, name, batch(2))
    sessions = []
    for _ in range(9):
        answer, _ = pair.compare(1, session_fetch(0, 0, {name: {0: 0}}))
        sessions.append(answer["session_id"] != 0)
    expected = [False] * 9 if slots < 8 else [True] * 8 + [False]
    assert sessions == expected
