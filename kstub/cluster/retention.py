"""Retention: which segments leave a log, by Kafka's rules (UnifiedLog.deleteOldSegments).

A retention pass looks at each replica's log, oldest segment first, and
deletes a prefix of whole segments:

- ``retention.ms`` (when ``cleanup.policy`` includes ``delete``): a segment
  goes when ``now - its largest timestamp > retention.ms``. The largest
  timestamp is the newest record's, or the segment's last modification time
  if no record carries one.
- ``retention.bytes`` (same policy): while the log is larger than
  retention.bytes, the oldest segments go as long as the log stays at or
  above the limit without them (``size - retention.bytes - segment >= 0``).
- the log start offset (any policy): a segment goes when the next one starts
  at or below the log start offset (after DeleteRecords).

The walk stops at the first segment that must stay, never passes the high
watermark (a segment goes only if the next one starts at or below it, the
last one only if the high watermark is the log end), and never takes an empty
last segment. When every segment goes, the log first rolls a new empty active
segment, so the active segment itself is never deleted while active. The log
start offset then moves to the first remaining segment's base offset.

`retention_loop` runs a pass every ``log.retention.check.interval.ms`` (Kafka's
default: five minutes); `ClusterState.run_retention` runs one now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from .config import TopicSettings
from .log import Log
from .segments import Segment

if TYPE_CHECKING:
    from .model import ClusterState

log = logging.getLogger("kstub.retention")

Predicate = Callable[[Segment, Segment | None], bool]


def _deletable(lg: Log, high_watermark: int, predicate: Predicate) -> int:
    """How many of the oldest segments may go (Kafka's deletableSegments)."""
    segments = lg.segments
    count = 0
    for i, seg in enumerate(segments):
        nxt = segments[i + 1] if i + 1 < len(segments) else None
        if nxt is None and seg.size == 0:
            break
        upper = nxt.base_offset if nxt is not None else lg.log_end_offset
        if not (high_watermark >= upper and predicate(seg, nxt)):
            break
        count += 1
    return count


def apply_retention(lg: Log, config: TopicSettings, high_watermark: int, now_ms: int) -> int:
    """One retention pass over one log; returns the number of segments deleted."""
    deleted = 0
    if "delete" in config.get_list("cleanup.policy"):
        retention_ms = config.get_int("retention.ms")
        if retention_ms >= 0:

            def expired(seg: Segment, _next: Segment | None) -> bool:
                return now_ms - seg.largest_timestamp() > retention_ms

            n = _deletable(lg, high_watermark, expired)
            deleted += lg.delete_oldest_segments(n, f"retention time {retention_ms}ms breach")
        retention_bytes = config.get_int("retention.bytes")
        size = lg.size_bytes
        if retention_bytes >= 0 and size >= retention_bytes:
            diff = size - retention_bytes

            def oversized(seg: Segment, _next: Segment | None) -> bool:
                nonlocal diff
                if diff - seg.size >= 0:
                    diff -= seg.size
                    return True
                return False

            n = _deletable(lg, high_watermark, oversized)
            deleted += lg.delete_oldest_segments(n, f"retention size in bytes {retention_bytes} breach")
    start = lg.log_start_offset

    def below_start(_seg: Segment, nxt: Segment | None) -> bool:
        return nxt is not None and nxt.base_offset <= start

    n = _deletable(lg, high_watermark, below_start)
    deleted += lg.delete_oldest_segments(n, f"log start offset {start} breach")
    return deleted


def retention_pass(cluster: ClusterState, now_ms: int) -> int:
    """Apply retention to every replica's log of every partition; returns the segments deleted."""
    deleted = 0
    for partition in list(cluster.iter_partitions()):
        for broker_id, lg in partition.logs.items():
            n = apply_retention(lg, partition.topic.settings(broker_id), partition.high_watermark, now_ms)
            if n:
                log.info(
                    "%s-%d: retention deleted %d segment(s); log start offset now %d",
                    partition.topic.name,
                    partition.index,
                    n,
                    lg.log_start_offset,
                )
            deleted += n
    return deleted


async def retention_loop(cluster: ClusterState) -> None:
    """Run a retention pass every log.retention.check.interval.ms, until cancelled."""
    while True:
        await trio.sleep(max(1, cluster.config["log.retention.check.interval.ms"]) / 1000)
        cluster.run_retention()
