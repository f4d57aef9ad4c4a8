"""Incremental fetch sessions (KIP-227): each broker's cache of the partitions its fetchers follow.

A full fetch (epoch 0) names every partition and opens a session when the
cache has room; the response carries the session id. Later fetches of that
session (epoch 1, 2, ...) name only the partitions that changed (new fetch
offset, new max bytes) and the ones to forget; the broker answers only the
partitions with something new (records, a moved high watermark or log start
offset, an error). Epoch -1 closes the session (a sessionless fetch).

The cache follows Kafka's rules: ``max.incremental.fetch.session.cache.slots``
sessions spread over 8 shards (so each shard holds slots / 8; session ids are
drawn from the shard's range); a new session may evict a session unused for
two minutes, else one at least two minutes old that is less valuable (not a
follower's, or with fewer partitions); otherwise no session is made (session
id 0) and the client keeps sending full fetches.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

#: Kafka's sharding of the cache (KafkaBroker.NumFetchSessionCacheShards)
SHARDS = 8
SESSION_ID_RANGE = (2**31 - 1) // SHARDS
#: how long a session must be unused before any new one may evict it, and the age below which none may
EVICTION_MS = 120_000
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
INVALID_SESSION_ID = 0

#: a partition in a session: (topic key, partition index); the topic key is its name (v<13) or id (v13+)
PartitionKey = tuple[Any, int]


def next_epoch(epoch: int) -> int:
    if epoch < 0:
        return FINAL_EPOCH
    return 1 if epoch == 2**31 - 1 else epoch + 1


@dataclass(eq=False)
class CachedPartition:
    #: the last request parameters for this partition (fetch offset, max bytes, leader epoch...)
    params: Any
    #: what the fetcher was last told; -1 until an answer was sent (or after an error, so it is sent again)
    high_watermark: int = -1
    log_start_offset: int = -1


@dataclass(eq=False)
class FetchSession:
    id: int
    privileged: bool
    uses_topic_ids: bool
    created_ms: int
    last_used_ms: int
    epoch: int
    #: in fetch order: partitions that returned records move to the end (Kafka's round robin)
    partitions: dict[PartitionKey, CachedPartition] = field(default_factory=dict)
    #: the size the cache last accounted for (Kafka's cachedSize)
    cached_size: int = -1

    def update(self, fetched: list[tuple[PartitionKey, Any]], forgotten: list[PartitionKey]) -> None:
        """Take an incremental request's partitions (added or updated) and drop the forgotten ones."""
        for key, params in fetched:
            cached = self.partitions.get(key)
            if cached is None:
                self.partitions[key] = CachedPartition(params)
            else:
                cached.params = params
        for key in forgotten:
            self.partitions.pop(key, None)

    def must_respond(self, key: PartitionKey, answer: dict[str, Any], has_records: bool, update: bool) -> bool:
        """Whether an incremental answer includes this partition; with `update`, remember what it told."""
        cached = self.partitions[key]
        respond = has_records
        if cached.high_watermark != answer["high_watermark"]:
            respond = True
            if update:
                cached.high_watermark = answer["high_watermark"]
        if cached.log_start_offset != answer["log_start_offset"]:
            respond = True
            if update:
                cached.log_start_offset = answer["log_start_offset"]
        if answer.get("preferred_read_replica", -1) != -1:
            respond = True
        if answer["error_code"] != 0:
            respond = True
            if update:
                cached.high_watermark = -1
        diverging = answer.get("diverging_epoch")
        if diverging is not None and diverging.get("epoch", -1) != -1:
            respond = True
        if update and has_records:  # round robin: it goes to the back
            self.partitions[key] = self.partitions.pop(key)
        return respond

    def evictable_key(self) -> tuple[bool, int, int]:
        return (self.privileged, self.cached_size, self.id)


class _Shard:
    def __init__(self, number: int) -> None:
        self.number = number
        self.sessions: dict[int, FetchSession] = {}

    def new_id(self) -> int:
        low = max(1, self.number * SESSION_ID_RANGE)
        high = (self.number + 1) * SESSION_ID_RANGE
        while True:
            sid = random.randrange(low, high)
            if sid not in self.sessions and sid != INVALID_SESSION_ID:
                return sid

    def touch(self, session: FetchSession, now_ms: int) -> None:
        session.last_used_ms = now_ms
        session.cached_size = len(session.partitions)

    def try_evict(self, privileged: bool, size: int, now_ms: int) -> bool:
        if not self.sessions:
            return False
        stalest = min(self.sessions.values(), key=lambda s: (s.last_used_ms, s.id))
        if now_ms - stalest.last_used_ms > EVICTION_MS:
            del self.sessions[stalest.id]
            return True
        # Sessions older than the eviction time (as of their last use) may be evicted by more valuable ones;
        # a follower's session only by another follower's.
        candidates = [
            s
            for s in self.sessions.values()
            if s.last_used_ms - s.created_ms > EVICTION_MS or (privileged and not s.privileged)
        ]
        if not candidates:
            return False
        weakest = min(candidates, key=FetchSession.evictable_key)
        if (privileged, size, 0) < weakest.evictable_key():
            return False
        del self.sessions[weakest.id]
        return True


class FetchSessionCache:
    """One broker's fetch sessions, sharded as Kafka's."""

    def __init__(self) -> None:
        self.shards = [_Shard(n) for n in range(SHARDS)]
        self._next_shard = 0
        #: sessions made, sessions evicted to make room, incremental fetches served (for tests and metrics)
        self.created = 0
        self.evictions = 0
        self.incremental_fetches = 0

    def __len__(self) -> int:
        return sum(len(s.sessions) for s in self.shards)

    def _shard_of(self, session_id: int) -> _Shard | None:
        number = session_id // SESSION_ID_RANGE
        return self.shards[number] if 0 <= number < SHARDS else None

    def get(self, session_id: int) -> FetchSession | None:
        shard = self._shard_of(session_id)
        return shard.sessions.get(session_id) if shard is not None else None

    def remove(self, session_id: int) -> FetchSession | None:
        shard = self._shard_of(session_id)
        return shard.sessions.pop(session_id, None) if shard is not None else None

    def touch(self, session: FetchSession, now_ms: int) -> None:
        shard = self._shard_of(session.id)
        if shard is not None:
            shard.touch(session, now_ms)

    def create(
        self,
        slots: int,
        now_ms: int,
        privileged: bool,
        uses_topic_ids: bool,
        partitions: dict[PartitionKey, CachedPartition],
    ) -> int:
        """Open a session holding `partitions` if the next shard has room (evicting if Kafka would); its id or 0."""
        shard = self.shards[self._next_shard]
        self._next_shard = (self._next_shard + 1) % SHARDS
        if len(shard.sessions) >= slots // SHARDS:
            if not shard.try_evict(privileged, len(partitions), now_ms):
                return INVALID_SESSION_ID
            self.evictions += 1
        session = FetchSession(
            id=shard.new_id(),
            privileged=privileged,
            uses_topic_ids=uses_topic_ids,
            created_ms=now_ms,
            last_used_ms=now_ms,
            epoch=next_epoch(INITIAL_EPOCH),
            partitions=partitions,
        )
        shard.sessions[session.id] = session
        shard.touch(session, now_ms)
        self.created += 1
        return session.id
