"""Finding records by timestamp in a log (ListOffsets by time and by max timestamp).

The segments' per-batch max timestamps narrow the search to candidate
batches; within one, the records are walked a decompressed chunk at a time
(bounded memory). The handler (kstub/handlers/list_offsets.py) walks large
batches off the event loop; `find_timestamp` and `max_timestamp_offset` do
the whole lookup at once.
"""

from __future__ import annotations

from collections.abc import Iterator

from kstub.protocol.records import first_record_at

from .log import Log
from .segments import Chunk, Segment


def find_timestamp(log: Log, timestamp: int, upper: int) -> tuple[int, int] | None:
    """(offset, timestamp) of the first record below `upper` whose timestamp is >= `timestamp`."""
    for chunk in candidates(log, timestamp, upper):
        found = match(log, chunk, timestamp, upper)
        if found is not None:
            return found
    return None


def candidates(log: Log, timestamp: int, upper: int) -> Iterator[Chunk]:
    """The batches below `upper` whose max timestamp is >= `timestamp`, in order: where a timestamp
    lookup walks records (`match`), until one matches. Safe to advance across awaits."""
    start = log.log_start_offset
    segments = log.segments
    for si in range(log.segment_index(start), len(segments)):
        seg = segments[si]
        if seg.max_timestamp < timestamp:
            continue
        for i in range(seg.index_of(start), len(seg)):
            if seg.bases[i] >= upper:
                return
            if seg.max_ts[i] >= timestamp:
                yield seg.chunks(i, i + 1)[0]


def match(log: Log, chunk: Chunk, timestamp: int, upper: int) -> tuple[int, int] | None:
    """(offset, timestamp) of the first record of `chunk` at or after `timestamp`, within the log and below
    `upper`. Walks the records a decompressed chunk at a time (bounded memory); a record above
    max.decompressed.message.bytes raises BatchError(INVALID_RECORD), as Kafka's lookup fails."""
    # records below the log start (DeleteRecords) may share the batch: not them
    start = log.log_start_offset
    record = first_record_at(chunk.data, timestamp, max_record_bytes=log.max_record_bytes(), min_offset=start)
    if record is not None and record.offset < upper:
        return record.offset, record.timestamp
    return None


def max_timestamp_chunk(log: Log, upper: int) -> Chunk | None:
    """The first batch below `upper` holding the largest max timestamp (see `max_timestamp_offset`)."""
    best: tuple[Segment, int] | None = None
    best_ts = None
    start = log.log_start_offset
    segments = log.segments
    for si in range(log.segment_index(start), len(segments)):
        seg = segments[si]
        if not len(seg):
            continue
        whole = seg.lasts[-1] < upper and seg.bases[0] >= start
        if whole and best_ts is not None and seg.max_timestamp <= best_ts:
            continue
        for i in range(seg.index_of(start), len(seg)):
            if seg.lasts[i] >= upper:
                break
            if best_ts is None or seg.max_ts[i] > best_ts:
                best, best_ts = (seg, i), seg.max_ts[i]
    if best is None:
        return None
    return best[0].chunks(best[1], best[1] + 1)[0]


def max_timestamp_in(log: Log, chunk: Chunk) -> tuple[int, int]:
    """(offset, timestamp) of the first record of `chunk` carrying its max timestamp."""
    record = first_record_at(chunk.data, chunk.max_timestamp, max_record_bytes=log.max_record_bytes())
    return (chunk.last_offset, chunk.max_timestamp) if record is None else (record.offset, record.timestamp)


def max_timestamp_offset(log: Log, upper: int) -> tuple[int, int] | None:
    """(offset, timestamp) of the first record with the largest timestamp below `upper`."""
    chunk = max_timestamp_chunk(log, upper)
    return None if chunk is None else max_timestamp_in(log, chunk)
