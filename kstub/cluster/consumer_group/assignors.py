"""The server-side assignors of the consumer group protocol: ``uniform`` and ``range``.

Kafka's ``group.consumer.assignors`` (default ``uniform,range``; the first is the
default, a member may ask for another with ``group.remote.assignor``). Both see
every member's subscription (topic names, regular expressions already
resolved), the subscribed topics' partition counts, and the previous target
assignment, and give every member its new target.

- ``uniform``: every partition to one subscribed member, the members' counts
  as even as their subscriptions allow, and sticky: a partition stays with its
  previous owner unless moving it is needed to even the counts.
- ``range``: per topic, the subscribed members in member-id order each take a
  contiguous range of partitions, the first ``partitions % members`` one more
  (co-partitioned topics are assigned alike). kstub's range assignor is not
  sticky (Kafka's keeps a member's partitions where the ranges allow it).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from .model import Assignment

#: name → (topic id, partition count)
TopicsMetadata = Mapping[str, tuple[uuid.UUID, int]]


@dataclass(frozen=True)
class AssignmentSpec:
    #: member id → subscribed topic names (resolved, only topics that exist)
    subscriptions: Mapping[str, frozenset[str]]
    topics: TopicsMetadata
    #: member id → its previous target assignment
    previous: Mapping[str, Assignment]


def _as_assignment(owned: dict[str, set[tuple[uuid.UUID, int]]]) -> dict[str, Assignment]:
    out: dict[str, Assignment] = {}
    for member_id, tps in owned.items():
        by_topic: dict[uuid.UUID, set[int]] = {}
        for topic_id, p in tps:
            by_topic.setdefault(topic_id, set()).add(p)
        out[member_id] = {t: frozenset(ps) for t, ps in by_topic.items()}
    return out


def uniform(spec: AssignmentSpec) -> dict[str, Assignment]:
    members = sorted(spec.subscriptions)
    owned: dict[str, set[tuple[uuid.UUID, int]]] = {m: set() for m in members}
    subscribers: dict[uuid.UUID, list[str]] = {}
    names: dict[uuid.UUID, str] = {}
    for name, (topic_id, _count) in spec.topics.items():
        names[topic_id] = name
        subscribers[topic_id] = [m for m in members if name in spec.subscriptions[m]]
    all_partitions = [
        (topic_id, p)
        for name, (topic_id, count) in sorted(spec.topics.items())
        if subscribers[topic_id]
        for p in range(count)
    ]
    # 1. stickiness: what each member had and may still have
    taken: set[tuple[uuid.UUID, int]] = set()
    for m in members:
        for topic_id, parts in spec.previous.get(m, {}).items():
            if m not in subscribers.get(topic_id, ()):
                continue
            count = spec.topics[names[topic_id]][1]
            for p in parts:
                if p < count and (topic_id, p) not in taken:
                    owned[m].add((topic_id, p))
                    taken.add((topic_id, p))
    # 2. the rest, each to its least loaded subscriber (topics with fewest subscribers first)
    rest = [tp for tp in all_partitions if tp not in taken]
    rest.sort(key=lambda tp: (len(subscribers[tp[0]]), names[tp[0]], tp[1]))
    for topic_id, p in rest:
        target = min(subscribers[topic_id], key=lambda m: (len(owned[m]), m))
        owned[target].add((topic_id, p))
    # 3. even the counts: move partitions from the most loaded to less loaded subscribers
    moved = True
    while moved:
        moved = False
        for giver in sorted(members, key=lambda m: (-len(owned[m]), m)):
            for tp in sorted(owned[giver], key=lambda tp: (names[tp[0]], -tp[1])):
                takers = [m for m in subscribers[tp[0]] if len(owned[m]) + 1 < len(owned[giver])]
                if takers:
                    taker = min(takers, key=lambda m: (len(owned[m]), m))
                    owned[giver].discard(tp)
                    owned[taker].add(tp)
                    moved = True
                    break
            if moved:
                break
    return _as_assignment(owned)


def range_(spec: AssignmentSpec) -> dict[str, Assignment]:
    members = sorted(spec.subscriptions)
    owned: dict[str, set[tuple[uuid.UUID, int]]] = {m: set() for m in members}
    for name, (topic_id, count) in sorted(spec.topics.items()):
        subs = [m for m in members if name in spec.subscriptions[m]]
        if not subs:
            continue
        quota, extra = divmod(count, len(subs))
        start = 0
        for i, m in enumerate(subs):
            n = quota + (1 if i < extra else 0)
            owned[m].update((topic_id, p) for p in range(start, start + n))
            start += n
    return _as_assignment(owned)


ASSIGNORS = {"uniform": uniform, "range": range_}
