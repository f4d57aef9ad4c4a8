"""The fetch session cache's admission and eviction rules (Kafka's FetchSessionCacheShard, 8 shards)."""

from __future__ import annotations

from kstub.cluster.fetch_sessions import EVICTION_MS, SHARDS, CachedPartition, FetchSessionCache


def parts(n: int) -> dict:
    return {("t", i): CachedPartition(params=None) for i in range(n)}


def fill(cache: FetchSessionCache, slots: int, now: int, size: int = 1, privileged: bool = False) -> list[int]:
    return [cache.create(slots, now, privileged, True, parts(size)) for _ in range(SHARDS)]


def test_fewer_slots_than_shards_means_no_sessions() -> None:
    cache = FetchSessionCache()
    assert fill(cache, 7, 0) == [0] * SHARDS
    assert len(cache) == 0


def test_session_ids_come_from_their_shard_and_the_cache_fills() -> None:
    cache = FetchSessionCache()
    ids = fill(cache, 8, 0)
    assert all(ids) and [i // ((2**31 - 1) // SHARDS) for i in ids] == list(range(SHARDS))
    assert cache.create(8, 1000, False, True, parts(5)) == 0  # shard 0 is full, nothing to evict yet
    assert len(cache) == SHARDS and cache.evictions == 0


def test_a_stale_session_is_evicted() -> None:
    cache = FetchSessionCache()
    first = fill(cache, 8, 0)[0]
    assert cache.create(8, EVICTION_MS + 1, False, True, parts(1)) != 0
    assert cache.get(first) is None and cache.evictions == 1


def test_a_session_in_use_is_evicted_only_by_a_more_valuable_one_once_old_enough() -> None:
    cache = FetchSessionCache()
    first = fill(cache, 8, 0, size=2)[0]
    session = cache.get(first)
    assert session is not None
    cache.touch(session, EVICTION_MS)  # used, but not yet older than the eviction time when last used
    assert cache.create(8, EVICTION_MS + 10, False, True, parts(5)) == 0
    cache.touch(session, EVICTION_MS + 20)  # now it is
    for _ in range(SHARDS - 1):  # back to shard 0
        cache.create(8, EVICTION_MS + 20, False, True, parts(1))
    assert cache.create(8, EVICTION_MS + 30, False, True, parts(2)) == 0  # not bigger
    for _ in range(SHARDS - 1):
        cache.create(8, EVICTION_MS + 30, False, True, parts(1))
    assert cache.create(8, EVICTION_MS + 40, False, True, parts(3)) != 0  # bigger: evicts it
    assert cache.get(first) is None


def test_a_followers_session_evicts_a_consumers_at_once() -> None:
    cache = FetchSessionCache()
    first = fill(cache, 8, 0, size=50)[0]
    assert cache.create(8, 10, True, True, parts(1)) != 0
    assert cache.get(first) is None
    # and a consumer's cannot evict a follower's
    for _ in range(SHARDS - 1):
        cache.create(8, 20, False, True, parts(1))
    assert cache.create(8, 30, False, True, parts(100)) == 0
