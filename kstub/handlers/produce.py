"""Produce (0): validate each partition's batches and append them as sent.

The records are never decoded: `read_produce_data` checks the batch framing,
CRC and Kafka's per-version rules, and the log stores the bytes with only the
base offset and leader epoch patched. Errors are per partition, as in Kafka.
acks=0 gets no response at all; acks=1 answers once the leader appended.

acks=-1 (all) is refused with NOT_ENOUGH_REPLICAS before appending when the
ISR is smaller than min.insync.replicas; otherwise the request waits, on one
event woken by the partitions' high watermark and leadership changes, until
every appended batch is committed (the high watermark passed it), as Kafka's
DelayedProduce does: NOT_LEADER_OR_FOLLOWER if leadership moved meanwhile,
NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below min.insync.replicas,
REQUEST_TIMED_OUT after the request's timeout_ms. With one replica the batch
is committed on append and nothing waits.

With --data-dir, the store flushes what the durability settings ask for
(flush.messages; every appended batch with kstub.fsync.on.ack) before any
answer goes out; a failed write is KAFKA_STORAGE_ERROR. A compacted topic
(cleanup.policy with "compact") refuses records without a key, as Kafka does
(INVALID_RECORD with per-record errors): the one place produce decodes records,
besides a v2 batch whose header cannot hold its largest timestamp (see
`ProducedBatch.needs_scan`). Records are walked a decompressed chunk at a time,
keys and values skipped, each checked against max.decompressed.message.bytes;
when that means decompressing (or walking more than `ON_LOOP_BYTES`), the walk
runs in a worker thread, one at a time (`offload`), so a compression bomb
neither holds memory nor stops the other connections.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import trio

from kstub.cluster.model import ClusterError, Partition
from kstub.cluster.partition import await_commits
from kstub.cluster.quotas import PRODUCER_BYTE_RATE, quota_user
from kstub.cluster.replication import replicate_now, wakes_held
from kstub.protocol import ApiKey, Container, ErrorCode
from kstub.protocol.records import BatchError, inflates_on_read, iter_records, read_produce_data

from .base import Body, Context, Op, Res, handles, unique_partitions
from .offload import ON_LOOP_BYTES, in_thread

log = logging.getLogger("kstub.produce")


_UNLOGGED = (ErrorCode.CORRUPT_MESSAGE, ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.RECORD_LIST_TOO_LARGE)


def _partition_error(
    index: int, code: ErrorCode, message: str | None = None, partition: Partition | None = None
) -> Body:
    """A partition's error answer; Kafka reports the log start offset when the partition is its own."""
    start = partition.log_start_offset if partition is not None else -1
    return {"index": index, "error_code": code, "base_offset": -1, "error_message": message, "log_start_offset": start}


@dataclass(slots=True)
class _Pending:
    """An acks=all append waiting to be committed."""

    body: Body
    partition: Partition
    end_offset: int
    leader_epoch: int


async def _produce_partition(
    ctx: Context,
    topic: str,
    data: Container,
    acks: int,
    pending: list[_Pending],
    appended: list[Partition],
    transactional_id: str | None = None,
) -> Body:
    cluster = ctx.cluster
    injected = ctx.injected_error(topic, data.index) if ctx.faults else None
    if injected is not None:
        return _partition_error(data.index, injected)
    try:
        partition = cluster.leader_partition(topic, data.index, ctx.node_id)
    except ClusterError as exc:
        return _partition_error(data.index, exc.code, exc.message)
    if acks == -1 and len(partition.isr) < partition.min_insync_replicas():
        return _partition_error(
            data.index,
            ErrorCode.NOT_ENOUGH_REPLICAS,
            f"The size of the current ISR {partition.isr} is insufficient to satisfy the "
            f"min.isr requirement of {partition.config('min.insync.replicas')}",
            partition,
        )
    if not data.records:
        if ctx.api_version >= 3:
            return _partition_error(data.index, ErrorCode.INVALID_RECORD, "Produce request has no record batch")
        return {
            "index": data.index,
            "error_code": ErrorCode.NONE,
            "base_offset": -1,
            "log_start_offset": partition.log_start_offset,
        }
    settings = partition.settings
    compacted = "compact" in settings.get_list("cleanup.policy")
    max_record = settings.get_int("max.decompressed.message.bytes")
    limits = {"max_message_bytes": settings.get_int("max.message.bytes"), "max_record_bytes": max_record}
    waited = False
    try:
        if inflates_on_read(data.records):
            batches = await in_thread(read_produce_data, data.records, ctx.api_version, in_place=True, **limits)
            waited = True
        else:
            # the request's frame is ours: a batch is stored where it was received (protocol/connection.py)
            batches = read_produce_data(data.records, ctx.api_version, in_place=True, **limits)
        keyless: list[int] = []
        for batch in batches:
            if not batch.needs_scan(compacted, max_record):
                continue
            if batch.inflates or len(batch.data) > ON_LOOP_BYTES:
                keyless += await in_thread(batch.scan, compacted=compacted, max_record_bytes=max_record)
                waited = True
            else:
                keyless += batch.scan(compacted=compacted, max_record_bytes=max_record)
        now = cluster.now_ms()
        bad_times = None
        if settings.get_str("message.timestamp.type") == "CreateTime" and _timestamps_need_records(
            batches, partition, now
        ):
            if any(b.inflates or len(b.data) > ON_LOOP_BYTES for b in batches):
                bad_times = await in_thread(_timestamp_errors, batches, partition, now)
                waited = True
            else:
                bad_times = _timestamp_errors(batches, partition, now)
        target = _TOPIC_CODECS.get(partition.config("compression.type"))
        if target is not None and not keyless and not bad_times:
            for batch in batches:
                if batch.magic != 2 or batch.compression == target:
                    continue
                sizes = (limits["max_message_bytes"], max_record)
                if batch.inflates or target or len(batch.data) > ON_LOOP_BYTES:
                    await in_thread(batch.recompress, target, *sizes)
                    waited = True
                else:
                    batch.recompress(target, *sizes)
    except BatchError as exc:
        log.info("produce to %s-%d rejected: %s", topic, data.index, exc)
        # Kafka reports the log start offset only for errors of its log validation, not for what the request
        # checks or the log's append refuses first (ReplicaManager's size and corruption errors)
        unlogged = exc.request_level or exc.code in _UNLOGGED
        return _partition_error(data.index, exc.code, str(exc), None if unlogged else partition)
    if keyless:
        return _keyless_error(keyless, f"{topic}-{data.index}") | {
            "index": data.index,
            "log_start_offset": partition.log_start_offset,
        }
    if bad_times:
        return bad_times | {"index": data.index, "log_start_offset": partition.log_start_offset}
    if waited:  # the cluster may have moved on while the records were walked in a thread
        try:
            partition = cluster.leader_partition(topic, data.index, ctx.node_id)
        except ClusterError as exc:
            return _partition_error(data.index, exc.code, exc.message)
    if transactional_id is not None and batches and batches[0].is_transactional:
        # the transaction coordinator verifies (or, Produce v12+, adds) the partition (KIP-890)
        verdict = cluster.transactions.produce_verdict(
            transactional_id, batches[0].producer_id, batches[0].producer_epoch, (topic, data.index), ctx.api_version
        )
        if verdict != ErrorCode.NONE:
            message = "Partition was not added to the transaction" if verdict == ErrorCode.INVALID_TXN_STATE else None
            return _partition_error(data.index, verdict, message, partition)
    try:
        with wakes_held():
            result = partition.append(batches, now)
            if acks == -1 and not result.error and partition.high_watermark < result.end_offset:
                replicate_now(cluster, partition)  # the followers' fetch round, in this same scheduling round
    except OSError as exc:
        log.error("produce to %s-%d: cannot write the log: %s", topic, data.index, exc)
        return _partition_error(data.index, ErrorCode.KAFKA_STORAGE_ERROR, str(exc), partition)
    if result.error:
        return _partition_error(data.index, result.error, None, partition)
    appended.append(partition)
    ctx.broker.stats.produced(topic, result.end_offset - result.base_offset, sum(len(b.data) for b in batches))
    body = {
        "index": data.index,
        "error_code": ErrorCode.NONE,
        "base_offset": result.base_offset,
        "log_append_time_ms": result.log_append_time,
        "log_start_offset": partition.log_start_offset,
    }
    if acks == -1 and partition.high_watermark < result.end_offset:
        pending.append(_Pending(body, partition, result.end_offset, partition.leader_epoch))
    return body


#: compression.type → the codec a topic stores its batches with (None: the producer's, kept as sent)
_TOPIC_CODECS = {"uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def _keyless_error(errors: list[int], partition_name: str) -> Body:
    """Kafka's LogValidator.validateKey: a compacted topic takes only records with keys (INVALID_RECORD)."""
    message = f"Compacted topic cannot accept message without key in topic partition {partition_name}."
    shown = ", ".join(f"RecordError(batchIndex={i}, message='{message}')" for i in errors[:3])
    return {
        "error_code": ErrorCode.INVALID_RECORD,
        "base_offset": -1,
        "record_errors": [{"batch_index": i, "batch_index_error_message": message} for i in errors],
        "error_message": f"One or more records have been rejected due to {len(errors)} record errors in total, "
        f"and only showing the first three errors at most: [{shown}]",
    }


def _timestamp_bounds(partition: Partition) -> tuple[int, int]:
    """message.timestamp.before.max.ms and message.timestamp.after.max.ms of a partition's topic."""
    settings = partition.settings
    return settings.get_int("message.timestamp.before.max.ms"), settings.get_int("message.timestamp.after.max.ms")


def _timestamps_need_records(batches: list, partition: Partition, now_ms: int) -> bool:
    """Whether a CreateTime topic's timestamp bounds could reject a record of these batches (the headers say)."""
    before, after = _timestamp_bounds(partition)
    high = now_ms + after if after < 2**62 else 2**63 - 1
    return before < 2**62 or any(b.magic != 0 and b.max_timestamp > high for b in batches)


def _timestamp_errors(batches: list, partition: Partition, now_ms: int) -> Body | None:
    """Kafka's LogValidator.validateTimestamp for CreateTime topics: INVALID_TIMESTAMP with per-record errors.

    A record's timestamp (unless -1, none) must lie within
    [now - message.timestamp.before.max.ms, now + message.timestamp.after.max.ms].
    The batch headers answer for most batches; records are decoded only when
    the bounds could be crossed.
    """
    before, after = _timestamp_bounds(partition)
    low = now_ms - before if before < now_ms + 2**62 else -(2**63)
    high = now_ms + after if after < 2**62 else 2**63 - 1
    errors = []
    for batch in batches:
        if batch.magic == 0:
            continue
        if batch.max_timestamp <= high and before >= 2**62:
            continue
        for i, record in enumerate(iter_records(batch.data)):
            ts = record.timestamp
            if ts != -1 and not low <= ts <= high:
                message = (
                    f"Timestamp {ts} of message with offset {record.offset} is out of range. "
                    f"The timestamp should be within [{low}, {high}]"
                )
                errors.append({"batch_index": i, "batch_index_error_message": message})
    if not errors:
        return None
    return {
        "error_code": ErrorCode.INVALID_TIMESTAMP,
        "base_offset": -1,
        "record_errors": errors,
        "error_message": f"One or more records have been rejected due to {len(errors)} record errors in total, "
        "and only showing the first three errors at most: "
        + "["
        + ", ".join(
            f"RecordError(batchIndex={e['batch_index']}, message='{e['batch_index_error_message']}')"
            for e in errors[:3]
        )
        + "]",
    }


def _has_transactional_records(data: Container) -> bool:
    """Whether a partition's records start with a transactional v2 batch (magic at 16, attributes at 21)."""
    records = data.records
    return bool(records) and len(records) > 22 and records[16] == 2 and bool(records[22] & 0x10)


async def _await_commit(ctx: Context, pending: list[_Pending], timeout_ms: int) -> None:
    """Wait until each pending append is committed (or fails); bodies get their final error."""
    deadline = trio.current_time() + max(timeout_ms, 0) / 1000
    appends = [(entry.partition, entry.end_offset, entry.leader_epoch) for entry in pending]
    for entry, status in zip(pending, await await_commits(appends, ctx.node_id, deadline), strict=True):
        if status != ErrorCode.NONE:
            entry.body.update(error_code=status, base_offset=-1, error_message=None)


@handles(ApiKey.PRODUCE)
async def produce(ctx: Context, req: Container) -> Body | None:
    acks = req.acks
    responses = []
    pending: list[_Pending] = []
    appended: list[Partition] = []
    # Kafka refuses transactional records without a transactional id (or WRITE on it) for the whole request
    unauthorized = any(_has_transactional_records(p) for t in req.topic_data for p in t.partition_data) and (
        req.transactional_id is None or not ctx.authorize(Op.WRITE, Res.TRANSACTIONAL_ID, req.transactional_id)
    )
    # each partition once: one named again replaces the earlier data, as in Kafka's map of them
    for name, partition_data in unique_partitions(req.topic_data, "name", "partition_data", "index"):
        if unauthorized:
            parts = [_partition_error(p.index, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED) for p in partition_data]
        elif not ctx.authorize(Op.WRITE, Res.TOPIC, name):
            parts = [_partition_error(p.index, ErrorCode.TOPIC_AUTHORIZATION_FAILED) for p in partition_data]
        elif acks not in (-1, 0, 1):
            parts = [_partition_error(p.index, ErrorCode.INVALID_REQUIRED_ACKS) for p in partition_data]
        else:
            parts = [
                await _produce_partition(ctx, name, p, acks, pending, appended, req.transactional_id)
                for p in partition_data
            ]
        responses.append({"name": name, "partition_responses": parts})
    if appended:
        await ctx.cluster.store.after_produce(appended, acks)  # flush.messages, fsync.on.ack
    if pending:
        await _await_commit(ctx, pending, req.timeout_ms)
    # the producer byte-rate quota (kstub/cluster/quotas.py) counts the records sent, as Kafka counts the request
    throttle = ctx.cluster.client_quotas.record(
        PRODUCER_BYTE_RATE,
        quota_user(ctx.principal),
        ctx.client_id or "",
        sum(_size(p.records) for t in req.topic_data for p in t.partition_data),
        ctx.cluster.now_ms(),
    )
    if acks == 0:
        return None
    return {"responses": responses, "throttle_time_ms": throttle}


def _size(records: object) -> int:
    if records is None:
        return 0
    if isinstance(records, (bytes, bytearray, memoryview)):
        return len(records)
    return sum(len(r) for r in records)  # type: ignore[attr-defined]
