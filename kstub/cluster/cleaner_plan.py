"""Whether, what and when to clean: one log's cleanable range and its lag deadlines (Kafka's LogCleanerManager)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .log import Log

LONG_MAX = 2**63 - 1


@dataclass
class LogToClean:
    first_dirty: int
    first_uncleanable: int
    clean_bytes: int
    cleanable_bytes: int
    need_now: bool

    @property
    def ratio(self) -> float:
        total = self.clean_bytes + self.cleanable_bytes
        return self.cleanable_bytes / total if total else 0.0


def segment_base_at(lg: Log, offset: int) -> int:
    """The base offset of the segment holding `offset` (rounded down to a segment boundary)."""
    segments = lg.segments
    return segments[lg.segment_index(offset)].base_offset if segments else offset


def cleanable(lg: Log, config: Callable[[str], str], checkpoint: int | None, stable: int, now_ms: int) -> LogToClean:
    """Kafka's cleanableOffsets + calculateCleanableBytes + maxCompactionDelay for one log."""
    first_dirty = checkpoint if checkpoint is not None else lg.log_start_offset
    if first_dirty < lg.log_start_offset or first_dirty > lg.log_end_offset:
        first_dirty = lg.log_start_offset
    segments = lg.segments
    active = segments[-1]
    bounds = [stable, active.base_offset]
    min_lag = max(int(config("min.compaction.lag.ms")), 0)
    dirty_closed = [s for s in segments[:-1] if s.end_offset > first_dirty or s.base_offset >= first_dirty]
    if min_lag > 0:
        for seg in dirty_closed:
            if seg.largest_timestamp() > now_ms - min_lag:
                bounds.append(seg.base_offset)
                break
    uncleanable = max(first_dirty, min(bounds))
    uncleanable = segment_base_at(lg, uncleanable)
    clean_bytes = sum(s.size for s in segments if s.base_offset < first_dirty and s is not active)
    lo = min(first_dirty, uncleanable)
    cleanable_bytes = sum(
        s.size for s in segments[:-1] if s.base_offset < uncleanable and (s.end_offset > lo or s.base_offset >= lo)
    )
    max_lag = max(int(config("max.compaction.lag.ms")), 0)
    firsts = [int(s.max_ts[0]) for s in dirty_closed if len(s) and s.max_ts[0] > 0]
    earliest = min(firsts, default=LONG_MAX)
    need_now = earliest < now_ms - max_lag
    return LogToClean(first_dirty, uncleanable, clean_bytes, cleanable_bytes, need_now)


def should_clean(ltc: LogToClean, config: Callable[[str], str]) -> bool:
    if ltc.clean_bytes + ltc.cleanable_bytes == 0:
        return False
    return (ltc.need_now and ltc.cleanable_bytes > 0) or ltc.ratio > float(config("min.cleanable.dirty.ratio"))


def next_deadline(lg: Log, config: Callable[[str], str], first_dirty: int, now_ms: int) -> int | None:
    """When a lag rule could next make this log cleanable (wall-clock ms), if ever."""
    segments = lg.segments[:-1]
    dirty = [s for s in segments if s.end_offset > first_dirty]
    times: list[int] = []
    max_lag = max(int(config("max.compaction.lag.ms")), 0)
    if max_lag < LONG_MAX // 2:
        firsts = [int(s.max_ts[0]) for s in dirty if len(s) and s.max_ts[0] > 0]
        if firsts:
            times.append(min(firsts) + max_lag + 1)
    min_lag = max(int(config("min.compaction.lag.ms")), 0)
    if min_lag > 0:
        for seg in dirty:
            if seg.largest_timestamp() > now_ms - min_lag:
                times.append(seg.largest_timestamp() + min_lag + 1)
                break
    future = [t for t in times if t > now_ms]
    return min(future) if future else None
