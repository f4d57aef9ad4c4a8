"""Fetch (1): serve stored batches as they are, long-polling until there is data.

Each requested partition gets an entry, in request order (kafka-python drops a
full response whose partitions differ from the request). Data is returned as
whole stored chunks starting with the one holding the fetch offset, bounded by
the partition's and the response's max bytes, except that the first partition
with data always gets at least one whole batch (Kafka's rule since v3). The
response's max bytes is the request's, capped by the broker's fetch.max.bytes
(55 MiB by default), and min_bytes by that; unlike Kafka, which cuts the last
batch short at the limit, only whole batches are sent. Only offsets below the
high watermark are visible.

If fewer than min_bytes are ready, the request waits on a Trio event that the
partitions' high watermark moves (and leadership changes) set, until
min_bytes or max_wait_ms; partitions are looked up again on each wake-up, so
a leader change answers NOT_LEADER_OR_FOLLOWER at once, as Kafka's delayed
fetch does. A partition error answers at once.
Fetch sessions are declined (session id 0): clients keep sending full fetches.
"""

from __future__ import annotations

import trio
from construct import Container

from kstub.cluster.model import ClusterError, Partition
from kstub.protocol import ApiKey, ErrorCode

from .base import Body, Context, Op, Res, handles, unique_partitions

READ_COMMITTED = 1
#: errors found before any read (an empty list of aborted transactions, not null)
_BEFORE_READ = (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.TOPIC_AUTHORIZATION_FAILED)


def _error_partition(index: int, code: ErrorCode) -> Body:
    """A partition's error answer. Kafka reports an unknown partition (found before any read) with an
    empty list of aborted transactions, and read errors with none (null)."""
    return {
        "partition_index": index,
        "error_code": code,
        "high_watermark": -1,
        "last_stable_offset": -1,
        "log_start_offset": -1,
        "aborted_transactions": [] if code in _BEFORE_READ else None,
        "records": b"",
    }


def resolve(ctx: Context, topic: str, index: int, current_leader_epoch: int) -> Partition | ErrorCode:
    """The partition this broker leads, or the error for it (KIP-320 epoch checks included).

    An error injected by the control plane for this partition comes first.
    """
    if ctx.faults:
        injected = ctx.injected_error(topic, index)
        if injected is not None:
            return injected
    try:
        partition = ctx.cluster.leader_partition(topic, index, ctx.node_id)
    except ClusterError as exc:
        return exc.code
    if current_leader_epoch >= 0:
        if current_leader_epoch < partition.leader_epoch:
            return ErrorCode.FENCED_LEADER_EPOCH
        if current_leader_epoch > partition.leader_epoch:
            return ErrorCode.UNKNOWN_LEADER_EPOCH
    return partition


def _read(p: Partition, fp: Container, budget: int, min_one: bool, read_committed: bool) -> tuple[Body, int]:
    """One partition's data and the bytes it takes from the response's budget.

    Kafka reads a byte range (the partition's limit, capped by what is left of
    the response's) and may end it inside a batch, which the client drops; it
    counts the whole range against the budget. kstub returns whole batches only
    but counts as Kafka does, so that later partitions get what they would get
    from Kafka.
    """
    log = p.leader_log
    hw = p.high_watermark
    if not log.log_start_offset <= fp.fetch_offset <= log.log_end_offset:
        # Kafka answers a read error without watermarks
        return _error_partition(fp.partition, ErrorCode.OFFSET_OUT_OF_RANGE), 0
    limit = min(fp.partition_max_bytes, budget)
    chunks = log.read(fp.fetch_offset, limit, hw, min_one=min_one)
    size = sum(c.size for c in chunks)
    end = chunks[-1].last_offset + 1 if chunks else fp.fetch_offset
    if end < hw:  # more data below the high watermark: Kafka's byte range was cut at the limit
        size = max(size, limit)
    return {
        "partition_index": fp.partition,
        "error_code": ErrorCode.NONE,
        "high_watermark": hw,
        "last_stable_offset": hw,
        "log_start_offset": log.log_start_offset,
        "aborted_transactions": [] if read_committed else None,
        "preferred_read_replica": -1,
        "records": [c.data for c in chunks],
    }, size


def max_response_bytes(ctx: Context, req: Container) -> int:
    """The response's byte budget: the request's max_bytes (v3+), capped by the broker's fetch.max.bytes."""
    asked = req.max_bytes if ctx.api_version >= 3 else 2**31 - 1
    return min(asked, ctx.cluster.config["fetch.max.bytes"])


def _build(
    ctx: Context,
    req: Container,
    resolved: list[tuple[str, list[tuple[Container, Partition | ErrorCode]]]],
) -> tuple[Body, int, bool]:
    budget = max_response_bytes(ctx, req)
    read_committed = ctx.api_version >= 4 and req.isolation_level == READ_COMMITTED
    total = 0
    has_error = False
    responses = []
    for topic, parts in resolved:
        bodies = []
        for fp, target in parts:
            if isinstance(target, ErrorCode):
                bodies.append(_error_partition(fp.partition, target))
                has_error = True
                continue
            body, size = _read(target, fp, budget - total, total == 0, read_committed)
            has_error = has_error or body["error_code"] != ErrorCode.NONE
            total += size
            bodies.append(body)
        responses.append({"topic": topic, "partitions": bodies})
    return (
        {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "session_id": 0, "responses": responses},
        total,
        has_error,
    )


def _resolve_allowed(ctx: Context, topic: str, fp: Container, denied: set[str]) -> Partition | ErrorCode:
    if topic in denied:
        return ErrorCode.TOPIC_AUTHORIZATION_FAILED
    return resolve(ctx, topic, fp.partition, fp.current_leader_epoch)


@handles(ApiKey.FETCH)
async def fetch(ctx: Context, req: Container) -> Body:
    deadline = trio.current_time() + max(req.max_wait_ms, 0) / 1000
    # As Kafka does: never wait for more bytes than a response may carry.
    min_bytes = max(min(req.min_bytes, max_response_bytes(ctx, req)), 1)
    requested = unique_partitions(req.topics, "topic", "partitions", "partition")  # each partition once
    denied = {topic for topic, _ in requested if not ctx.authorize(Op.READ, Res.TOPIC, topic)}
    while True:
        resolved = [
            (topic, [(fp, _resolve_allowed(ctx, topic, fp, denied)) for fp in parts]) for topic, parts in requested
        ]
        watched = [target for _, parts in resolved for _, target in parts if isinstance(target, Partition)]
        body, size, has_error = _build(ctx, req, resolved)
        if has_error or size >= min_bytes or trio.current_time() >= deadline or not watched:
            return body
        event = trio.Event()
        for p in watched:
            p.add_waiter(event)
        try:
            with trio.move_on_at(deadline):
                await event.wait()
        finally:
            for p in watched:
                p.remove_waiter(event)
