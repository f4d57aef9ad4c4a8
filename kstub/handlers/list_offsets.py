"""ListOffsets (2): earliest (-2), latest (-1), max timestamp (-3), or by timestamp.

Latest is the high watermark (the last stable offset under read_committed,
the same thing while there are no transactions). A timestamp lookup returns
the first offset whose record timestamp is >= the given time, found from the
batch headers' max timestamps and then the records of that one batch; none
found answers offset -1. v0 answers with the old-style offsets array.

Right after a leader change, until the new leader's high watermark reaches the
start of its epoch, it answers OFFSET_NOT_AVAILABLE (retriable), as Kafka
does (KIP-207).
"""

from __future__ import annotations

from collections import Counter

from construct import Container

from kstub.protocol import ErrorCode

from .base import Body, Context, handles, unique_partitions
from .fetch import resolve

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3


def _lookup(ctx: Context, topic: str, lp: Container) -> Body:
    target = resolve(ctx, topic, lp.partition_index, lp.current_leader_epoch)
    if isinstance(target, ErrorCode):
        return {"partition_index": lp.partition_index, "error_code": target, "old_style_offsets": []}
    p = target
    if p.high_watermark < p.leader_epoch_start_offset:
        return {
            "partition_index": lp.partition_index,
            "error_code": ErrorCode.OFFSET_NOT_AVAILABLE,
            "old_style_offsets": [],
        }
    log = p.leader_log
    ts = lp.timestamp
    timestamp, epoch = -1, p.leader_epoch
    if ts == LATEST:
        offset = p.high_watermark
    elif ts == EARLIEST:
        offset = log.log_start_offset
        epoch = log.epoch_at(offset) if offset < log.log_end_offset else p.leader_epoch
    elif ts == MAX_TIMESTAMP and ctx.api_version >= 7:
        found = log.max_timestamp_offset(p.high_watermark)
        offset, timestamp = found if found else (-1, -1)
        epoch = log.epoch_at(offset) if found else -1
    elif ts < 0:
        # a special timestamp of a later version (-3 before v7, -4 earliest-local and on), or none at all
        return {
            "partition_index": lp.partition_index,
            "error_code": ErrorCode.UNSUPPORTED_VERSION,
            "old_style_offsets": [],
        }
    else:
        found = log.find_timestamp(ts, p.high_watermark)
        offset, timestamp = found if found else (-1, -1)
        epoch = log.epoch_at(offset) if found else -1
    return {
        "partition_index": lp.partition_index,
        "error_code": ErrorCode.NONE,
        "old_style_offsets": [offset] if offset >= 0 else [],
        "timestamp": timestamp,
        "offset": offset,
        "leader_epoch": epoch,
    }


def _duplicate(lp: Container) -> Body:
    return {
        "partition_index": lp.partition_index,
        "error_code": ErrorCode.INVALID_REQUEST,
        "old_style_offsets": [],
        "timestamp": -1,
        "offset": -1,
        "leader_epoch": -1,
    }


@handles(2)
async def list_offsets(ctx: Context, req: Container) -> Body:
    # a partition asked more than once is answered once, with INVALID_REQUEST, as Kafka does
    counts = Counter((t.name, lp.partition_index) for t in req.topics for lp in t.partitions)
    return {
        "throttle_time_ms": 0,
        "topics": [
            {
                "name": name,
                "partitions": [
                    _duplicate(lp) if counts[(name, lp.partition_index)] > 1 else _lookup(ctx, name, lp) for lp in parts
                ],
            }
            for name, parts in unique_partitions(req.topics, "name", "partitions", "partition_index")
        ],
    }
