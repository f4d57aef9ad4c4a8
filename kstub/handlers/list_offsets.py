"""ListOffsets (2): earliest (-2), latest (-1), max timestamp (-3), or by timestamp.

The tiered-storage timestamps are answered as Kafka without remote storage
answers them: earliest local (-4, v8+) is the log start, latest tiered (-5,
v9+) and earliest pending upload (-6, v11+) are offset -1 with no error;
each before its version is UNSUPPORTED_VERSION.

Latest is the high watermark (the last stable offset under read_committed,
the same thing while there are no transactions). A timestamp lookup returns
the first offset whose record timestamp is >= the given time, found from the
batch headers' max timestamps and then the records of that one batch; none
found answers offset -1. v0 answers with the old-style offsets array. Walking
a batch's records decompresses it a chunk at a time, in a worker thread when
it is compressed or large (`offload`); a record above
max.decompressed.message.bytes answers INVALID_RECORD, as Kafka's lookup fails.

Right after a leader change, until the new leader's high watermark reaches the
start of its epoch, it answers OFFSET_NOT_AVAILABLE (retriable), as Kafka
does (KIP-207).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from kstub.cluster import timestamps
from kstub.cluster.log import Log
from kstub.cluster.segments import Chunk
from kstub.protocol import ApiKey, Container, ErrorCode
from kstub.protocol.records import BatchError

from .base import Body, Context, Op, Res, handles, unique_partitions
from .fetch import resolve
from .offload import in_thread, is_heavy

_T = TypeVar("_T")

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
READ_COMMITTED = 1
EARLIEST_LOCAL = -4
LATEST_TIERED = -5
EARLIEST_PENDING_UPLOAD = -6
#: the version from which each tiered-storage timestamp is understood
_TIERED_FROM = {EARLIEST_LOCAL: 8, LATEST_TIERED: 9, EARLIEST_PENDING_UPLOAD: 11}


async def _lookup(ctx: Context, topic: str, lp: Container, req_isolation: int) -> Body:
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
    # the last offset a consumer of this isolation level may fetch (Kafka's lastFetchableOffset)
    fetchable = p.last_stable_offset if req_isolation == READ_COMMITTED else p.high_watermark
    if ts == LATEST:
        offset = fetchable
    elif ts == EARLIEST or (ts == EARLIEST_LOCAL and ctx.api_version >= 8):
        # without tiered storage, the local log start is the log start
        offset = log.log_start_offset
        epoch = log.epoch_at(offset) if offset < log.log_end_offset else p.leader_epoch
    elif (ts == MAX_TIMESTAMP and ctx.api_version >= 7) or ts >= 0:
        try:
            found = await (_max_timestamp(log, fetchable) if ts < 0 else _find(log, ts, fetchable))
        except BatchError as exc:
            return {"partition_index": lp.partition_index, "error_code": exc.code, "old_style_offsets": []}
        offset, timestamp = found if found else (-1, -1)
        epoch = log.epoch_at(offset) if found else -1
    elif ts in (LATEST_TIERED, EARLIEST_PENDING_UPLOAD) and ctx.api_version >= _TIERED_FROM[ts]:
        # nothing is tiered: Kafka without remote storage answers no offset, no epoch, and no error
        offset, epoch = -1, -1
    else:
        # a special timestamp of a later version (-3 before v7, -4 earliest-local and on), or none at all
        return {
            "partition_index": lp.partition_index,
            "error_code": ErrorCode.UNSUPPORTED_VERSION,
            "old_style_offsets": [],
        }
    return {
        "partition_index": lp.partition_index,
        "error_code": ErrorCode.NONE,
        "old_style_offsets": [offset] if offset >= 0 else [],
        "timestamp": timestamp,
        "offset": offset,
        "leader_epoch": epoch,
    }


async def _walk(fn: Callable[..., _T], chunk: Chunk, *args: object) -> _T:
    if is_heavy(chunk.data):
        return await in_thread(fn, chunk, *args)
    return fn(chunk, *args)


async def _find(log: Log, ts: int, upper: int) -> tuple[int, int] | None:
    for chunk in timestamps.candidates(log, ts, upper):
        found = await _walk(partial(timestamps.match, log), chunk, ts, upper)
        if found is not None:
            return found
    return None


async def _max_timestamp(log: Log, upper: int) -> tuple[int, int] | None:
    chunk = timestamps.max_timestamp_chunk(log, upper)
    return None if chunk is None else await _walk(partial(timestamps.max_timestamp_in, log), chunk)


def _duplicate(lp: Container) -> Body:
    return {
        "partition_index": lp.partition_index,
        "error_code": ErrorCode.INVALID_REQUEST,
        "old_style_offsets": [],
        "timestamp": -1,
        "offset": -1,
        "leader_epoch": -1,
    }


def _denied(lp: Container) -> Body:
    return _duplicate(lp) | {"error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED, "leader_epoch": -1}


@handles(ApiKey.LIST_OFFSETS)
async def list_offsets(ctx: Context, req: Container) -> Body:
    # a partition asked more than once is answered once, with INVALID_REQUEST, as Kafka does
    isolation = req.isolation_level if ctx.api_version >= 2 else 0
    counts = Counter((t.name, lp.partition_index) for t in req.topics for lp in t.partitions)
    topics, denied = [], []
    for name, parts in unique_partitions(req.topics, "name", "partitions", "partition_index"):
        if not ctx.authorize(Op.DESCRIBE, Res.TOPIC, name):  # answered after the others, as Kafka does
            denied.append({"name": name, "partitions": [_denied(lp) for lp in parts]})
            continue
        answers = [
            _duplicate(lp) if counts[(name, lp.partition_index)] > 1 else await _lookup(ctx, name, lp, isolation)
            for lp in parts
        ]
        topics.append({"name": name, "partitions": answers})
    return {"throttle_time_ms": 0, "topics": topics + denied}
