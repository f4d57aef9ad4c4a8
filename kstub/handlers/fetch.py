"""Fetch (1): serve stored batches as they are, long-polling until there is data.

Each requested partition gets an entry, in request order (kafka-python drops a
full response whose partitions differ from the request). Data is returned as
whole stored chunks starting with the one holding the fetch offset, bounded by
the partition's and the response's max bytes, except that the first partition
with data always gets at least one whole batch (Kafka's rule since v3). The
response's max bytes is the request's, capped by the broker's fetch.max.bytes
(55 MiB by default), and min_bytes by that; unlike Kafka, which cuts the last
batch short at the limit, only whole batches are sent. Only offsets below the
high watermark are visible; under read_committed (isolation_level 1), only
those below the last stable offset (LSO: the first offset of the earliest
transaction still open, see kstub/cluster/producers.py), with the aborted
transactions that overlap the data read (producer id, first offset) so that the
client drops their records. Every answer carries the LSO, whatever the
isolation level, as Kafka's does.

If fewer than min_bytes are ready, the request waits on a Trio event that the
partitions' high watermark moves (and leadership changes) set, until
min_bytes or max_wait_ms; partitions are looked up again on each wake-up, so
a leader change answers NOT_LEADER_OR_FOLLOWER at once, as Kafka's delayed
fetch does. A partition error answers at once.

Fetch sessions (KIP-227, kstub/cluster/fetch_sessions.py) as Kafka's
FetchManager keeps them: a full fetch (epoch 0) opens one when the broker's
cache has room, an incremental fetch reads every partition of its session and
answers only those with news, epoch -1 fetches without one. From v13 topics
are named by id (an unknown id answers UNKNOWN_TOPIC_ID). Partitions the
broker does not know (unknown id, topic or index) are answered after the
others and do not end the long poll, as in Kafka; from v16 a
NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH answer carries the current
leader and its endpoint.
"""

from __future__ import annotations

from typing import Any

import trio

from kstub.cluster.fetch_sessions import (
    FINAL_EPOCH,
    INITIAL_EPOCH,
    INVALID_SESSION_ID,
    CachedPartition,
    FetchSession,
    PartitionKey,
    next_epoch,
)
from kstub.cluster.log import Log
from kstub.cluster.model import ClusterError, Partition
from kstub.cluster.quotas import CONSUMER_BYTE_RATE, quota_user
from kstub.cluster.segments import Chunk
from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, Op, Res, handles

READ_COMMITTED = 1
#: errors found before any read: answered with an empty list of aborted transactions, not null
_BEFORE_READ = (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNKNOWN_TOPIC_ID, ErrorCode.TOPIC_AUTHORIZATION_FAILED)


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
    counts the whole range against the budget. kstub does the same: whole
    batches up to the limit, then, if there is more below the bound, the first
    bytes of the next batch up to the limit (a view of them, not a copy). A
    client's fetcher paces itself by those bytes: librdkafka, answered whole
    batches only, postponed its next Fetch and read about a third as fast.
    """
    log = p.leader_log
    hw = p.high_watermark
    if not log.log_start_offset <= fp.fetch_offset <= log.log_end_offset:
        # Kafka answers a read error without watermarks
        return _error_partition(fp.partition, ErrorCode.OFFSET_OUT_OF_RANGE), 0
    lso = p.last_stable_offset
    upper = lso if read_committed else hw
    limit = min(fp.partition_max_bytes, budget)
    chunks = log.read(fp.fetch_offset, limit, upper, min_one=min_one)
    size = sum(c.size for c in chunks)
    records: list[Any] = [c.data for c in chunks]
    end = chunks[-1].last_offset + 1 if chunks else fp.fetch_offset
    if end < upper:  # more data below the bound: Kafka's byte range was cut at the limit
        if chunks and size < limit:
            following = log.read(end, limit - size, upper, min_one=True)[:1]
            if following:
                records.append(memoryview(following[0].data)[: limit - size])
        size = max(size, limit)
    aborted = None
    if read_committed:
        aborted = (
            [
                {"producer_id": t.producer_id, "first_offset": t.first_offset}
                for t in log.producers.aborted_transactions(fp.fetch_offset, _aborted_upper_bound(log, chunks, upper))
            ]
            if chunks
            else []
        )
    return {
        "partition_index": fp.partition,
        "error_code": ErrorCode.NONE,
        "high_watermark": hw,
        "last_stable_offset": lso,
        "log_start_offset": log.log_start_offset,
        "aborted_transactions": aborted,
        "preferred_read_replica": -1,
        "records": records,
    }, size


def _aborted_upper_bound(log: Log, chunks: list[Chunk], upper: int) -> int:
    """Where Kafka stops looking for aborted transactions for a read: past the data read when the byte
    limit cut it, else the end of the segment read from (the next segment's base, or the log end).

    Kafka finds the bound in the segment's sparse offset index (the first entry past the bytes read, or
    the segment's end), so it may list aborted transactions beyond the data it returns; clients use only
    those that overlap the batches they got.
    """
    end = chunks[-1].last_offset + 1
    return end if end < upper else log.segment_end(chunks[-1].base_offset)


def max_response_bytes(ctx: Context, req: Container) -> int:
    """The response's byte budget: the request's max_bytes (v3+), capped by the broker's fetch.max.bytes."""
    asked = req.max_bytes if ctx.api_version >= 3 else 2**31 - 1
    limit = min(asked, ctx.cluster.config["fetch.max.bytes"])
    if not _is_follower(ctx, req):
        # as Kafka: no more than the consumer quota lets through in its measured time without throttling for sure
        window = ctx.cluster.client_quotas.window_bytes(
            CONSUMER_BYTE_RATE, quota_user(ctx.principal), ctx.client_id or ""
        )
        if window is not None:
            limit = min(limit, window)
    return limit


def _requested(req: Container, uses_ids: bool) -> tuple[list[tuple[PartitionKey, Container]], list[PartitionKey]]:
    """The request's partitions, each once (a partition named again replaces the earlier entry's data but keeps
    its place, as Kafka's linked map), keyed by topic name, or id from v13; and the partitions to forget."""
    field = "topic_id" if uses_ids else "topic"
    fetched: dict[PartitionKey, Container] = {}
    for t in req.topics:
        for p in t.partitions:
            fetched[(getattr(t, field), p.partition)] = p
    forgotten = [(getattr(t, field), index) for t in req.forgotten_topics_data for index in t.partitions]
    return list(fetched.items()), forgotten


def _current_leader(ctx: Context, name: str, index: int) -> tuple[Body, Body | None]:
    """The partition's leader (v16+, for NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH) and its endpoint, if known."""
    partition = ctx.cluster.partition(name, index)
    if partition is None or partition.leader < 0:
        return {"leader_id": -1, "leader_epoch": -1}, None
    leader = {"leader_id": partition.leader, "leader_epoch": partition.leader_epoch}
    broker = ctx.cluster.brokers.get(partition.leader)
    if broker is None or not broker.alive:
        return leader, None
    host, port = ctx.endpoint(broker)
    return leader, {"node_id": broker.node_id, "host": host, "port": port, "rack": broker.rack}


class _Round:
    """One pass over the fetched partitions: their answers, the bytes read and whether to answer now."""

    def __init__(self) -> None:
        self.read: list[tuple[PartitionKey, Body, bool]] = []  # (key, answer, has records), read order
        self.erroneous: list[tuple[PartitionKey, Body]] = []
        self.watched: list[Partition] = []
        self.size = 0
        self.read_error = False
        self.endpoints: dict[int, Body] = {}


def _topic_name(ctx: Context, topic_id: Any) -> str | None:
    topic = ctx.cluster.topic_by_id(topic_id)
    return None if topic is None else topic.name


def _may_read(ctx: Context, topic: str, allowed: dict[str, bool]) -> bool:
    """READ on the topic (a consumer's fetch; kstub's followers replicate in process), asked once a fetch."""
    if topic not in allowed:
        allowed[topic] = ctx.authorize(Op.READ, Res.TOPIC, topic)
    return allowed[topic]


def _read_all(
    ctx: Context,
    req: Container,
    partitions: list[tuple[PartitionKey, Any]],
    uses_ids: bool,
    allowed: dict[str, bool],
) -> _Round:
    budget = max_response_bytes(ctx, req)
    read_committed = ctx.api_version >= 4 and req.isolation_level == READ_COMMITTED
    out = _Round()
    for key, fp in partitions:
        topic_key, index = key
        name = _topic_name(ctx, topic_key) if uses_ids else topic_key
        if name is None:
            out.erroneous.append((key, _error_partition(index, ErrorCode.UNKNOWN_TOPIC_ID)))
            continue
        if not _may_read(ctx, name, allowed):  # checked before the topic's existence, as Kafka does
            out.erroneous.append((key, _error_partition(index, ErrorCode.TOPIC_AUTHORIZATION_FAILED)))
            continue
        if ctx.cluster.partition(name, index) is None:
            out.erroneous.append((key, _error_partition(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)))
            continue
        target = resolve(ctx, name, index, fp.current_leader_epoch)
        if isinstance(target, ErrorCode):
            body = _error_partition(index, target)
            if ctx.api_version >= 16 and target in (ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.FENCED_LEADER_EPOCH):
                body["current_leader"], endpoint = _current_leader(ctx, name, index)
                if endpoint is not None:
                    out.endpoints[endpoint["node_id"]] = endpoint
            out.read.append((key, body, False))
            out.read_error = True
            continue
        body, size = _read(target, fp, budget - out.size, out.size == 0, read_committed)
        out.read_error = out.read_error or body["error_code"] != ErrorCode.NONE
        out.size += size
        out.read.append((key, body, bool(body["records"])))
        out.watched.append(target)
    return out


def _topics(answers: list[tuple[PartitionKey, Body]], uses_ids: bool) -> list[Body]:
    """Partition answers grouped into topics, consecutive partitions of a topic together (Kafka's FetchResponse.of)."""
    field = "topic_id" if uses_ids else "topic"
    topics: list[Body] = []
    for (topic_key, _), body in answers:
        if topics and topics[-1][field] == topic_key:
            topics[-1]["partitions"].append(body)
        else:
            topics.append({field: topic_key, "partitions": [body]})
    return topics


def _answer(error: ErrorCode, session_id: int, answers: list[tuple[PartitionKey, Body]], uses_ids: bool,
            endpoints: dict[int, Body] | None = None) -> Body:  # fmt: skip
    return {
        "throttle_time_ms": 0,
        "error_code": error,
        "session_id": session_id,
        "responses": _topics(answers, uses_ids),
        "node_endpoints": list(endpoints.values()) if endpoints else None,
    }


def _throttle(
    ctx: Context,
    req: Container,
    session: FetchSession | None,
    answers: list[tuple[PartitionKey, Body]],
    has_records: set[PartitionKey],
) -> int:
    """The consumer byte-rate quota's throttle time for this answer (followers are exempt), as Kafka counts it:
    the bytes of what would be sent; a throttled answer is not sent, so its bytes are taken back."""
    if _is_follower(ctx, req):
        return 0
    sent = answers
    if session is not None:
        sent = [
            (key, body)
            for key, body in answers
            if key in session.partitions and session.must_respond(key, body, key in has_records, update=False)
        ]
    size = sum(sum(len(r) for r in body["records"]) if isinstance(body["records"], list) else 0 for _, body in sent)
    quotas, user, client, now = (
        ctx.cluster.client_quotas,
        quota_user(ctx.principal),
        ctx.client_id or "",
        ctx.cluster.now_ms(),
    )
    throttle = quotas.record(CONSUMER_BYTE_RATE, user, client, size, now)
    if throttle:
        quotas.unrecord(CONSUMER_BYTE_RATE, user, client, size, now)
    return throttle


def _count_out(ctx: Context, answers: list[tuple[PartitionKey, Body]], uses_ids: bool) -> None:
    """The record bytes sent per topic, for metrics (Kafka's BytesOutPerSec)."""
    for (topic_key, _), body in answers:
        records = body["records"]
        if not records:
            continue
        topic = _topic_name(ctx, topic_key) if uses_ids else topic_key
        if topic is None:
            continue
        ctx.broker.stats.fetched(topic, sum(len(r) for r in records) if isinstance(records, list) else len(records))


def _is_follower(ctx: Context, req: Container) -> bool:
    replica = req.replica_state.replica_id if ctx.api_version >= 15 and req.replica_state else req.replica_id
    return replica is not None and replica >= 0


@handles(ApiKey.FETCH)
async def fetch(ctx: Context, req: Container) -> Body:
    deadline = trio.current_time() + max(req.max_wait_ms, 0) / 1000
    # As Kafka does: never wait for more bytes than a response may carry.
    min_bytes = max(min(req.min_bytes, max_response_bytes(ctx, req)), 1)
    uses_ids = ctx.api_version >= 13
    requested, forgotten = _requested(req, uses_ids)
    allowed: dict[str, bool] = {}  # READ on each topic
    sessions = ctx.broker.fetch_sessions
    session_id, epoch = (req.session_id, req.session_epoch) if ctx.api_version >= 7 else (0, FINAL_EPOCH)

    # Kafka's FetchManager.newContext: which partitions this fetch reads, and in which session.
    session: FetchSession | None = None
    new_session = False
    if epoch in (INITIAL_EPOCH, FINAL_EPOCH):  # a full fetch: it closes the session it names
        if session_id != INVALID_SESSION_ID:
            sessions.remove(session_id)
        new_session = epoch == INITIAL_EPOCH
        partitions: list[tuple[PartitionKey, Any]] = requested
    else:
        session = sessions.get(session_id)
        if session is None:
            return _answer(ErrorCode.FETCH_SESSION_ID_NOT_FOUND, INVALID_SESSION_ID, [], uses_ids)
        if session.epoch != epoch:
            return _answer(ErrorCode.INVALID_FETCH_SESSION_EPOCH, INVALID_SESSION_ID, [], uses_ids)
        if session.uses_topic_ids != uses_ids:
            return _answer(ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR, INVALID_SESSION_ID, [], uses_ids)
        session.update(requested, forgotten)
        if not session.partitions:  # nothing left: closed, and this fetch is sessionless
            sessions.remove(session.id)
            session = None
            partitions = requested
        else:
            sessions.touch(session, ctx.cluster.now_ms())
            sessions.incremental_fetches += 1
            session.epoch = next_epoch(session.epoch)
            partitions = [(key, cached.params) for key, cached in session.partitions.items()]

    while True:
        found = _read_all(ctx, req, partitions, uses_ids, allowed)
        if (
            not found.read
            or found.read_error
            or found.size >= min_bytes
            or trio.current_time() >= deadline
            or not found.watched
        ):
            break
        event = trio.Event()
        for p in found.watched:
            p.add_waiter(event)
        try:
            with trio.move_on_at(deadline):
                await event.wait()
        finally:
            for p in found.watched:
                p.remove_waiter(event)
        if session is not None:  # the session's partitions may have changed meanwhile
            partitions = [(key, cached.params) for key, cached in session.partitions.items()]

    answers = [(key, body) for key, body, _ in found.read] + found.erroneous
    if session is not None and session.epoch != next_epoch(epoch):  # another fetch of this session came first
        return _answer(ErrorCode.INVALID_FETCH_SESSION_EPOCH, session.id, [], uses_ids, found.endpoints)
    throttle = _throttle(ctx, req, session, answers, {key for key, _, records in found.read if records})
    if throttle:  # Kafka answers a throttled fetch empty (and opens no session)
        body = _answer(ErrorCode.NONE, session.id if session else INVALID_SESSION_ID, [], uses_ids, found.endpoints)
        return body | {"throttle_time_ms": throttle}
    if session is not None:
        has_records = {key for key, _, records in found.read if records}
        answers = [
            (key, body)
            for key, body in answers
            if key in session.partitions and session.must_respond(key, body, key in has_records, update=True)
        ]
        _count_out(ctx, answers, uses_ids)
        return _answer(ErrorCode.NONE, session.id, answers, uses_ids, found.endpoints)
    answer_session = INVALID_SESSION_ID
    if new_session:
        params = dict(partitions)
        cached = {
            key: CachedPartition(params[key], body["high_watermark"], body["log_start_offset"]) for key, body in answers
        }
        answer_session = sessions.create(
            ctx.cluster.config["max.incremental.fetch.session.cache.slots"],
            ctx.cluster.now_ms(),
            _is_follower(ctx, req),
            uses_ids,
            cached,
        )
    _count_out(ctx, answers, uses_ids)
    return _answer(ErrorCode.NONE, answer_session, answers, uses_ids, found.endpoints)
