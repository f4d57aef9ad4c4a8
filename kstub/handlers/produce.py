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
from construct import Container

from kstub.cluster.model import ClusterError, Partition
from kstub.protocol import ApiKey, ErrorCode
from kstub.protocol.records import BatchError, inflates_on_read, read_produce_data

from .base import Body, Context, handles
from .offload import ON_LOOP_BYTES, in_thread

log = logging.getLogger("kstub.produce")


def _partition_error(index: int, code: ErrorCode, message: str | None = None) -> Body:
    return {"index": index, "error_code": code, "base_offset": -1, "error_message": message}


@dataclass(slots=True)
class _Pending:
    """An acks=all append waiting to be committed."""

    body: Body
    partition: Partition
    end_offset: int
    leader_epoch: int


async def _produce_partition(
    ctx: Context, topic: str, data: Container, acks: int, pending: list[_Pending], appended: list[Partition]
) -> Body:
    cluster = ctx.cluster
    injected = ctx.injected_error(topic, data.index) if ctx.faults else None
    if injected is not None:
        return _partition_error(data.index, injected)
    try:
        partition = cluster.leader_partition(topic, data.index, ctx.node_id)
    except ClusterError as exc:
        return _partition_error(data.index, exc.code, exc.message)
    if acks == -1 and len(partition.isr) < int(partition.config("min.insync.replicas")):
        return _partition_error(
            data.index,
            ErrorCode.NOT_ENOUGH_REPLICAS,
            f"The size of the current ISR {partition.isr} is insufficient to satisfy the "
            f"min.isr requirement of {partition.config('min.insync.replicas')}",
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
    compacted = "compact" in [p.strip() for p in partition.config("cleanup.policy").split(",")]
    max_record = int(partition.config("max.decompressed.message.bytes"))
    limits = {"max_message_bytes": int(partition.config("max.message.bytes")), "max_record_bytes": max_record}
    waited = False
    try:
        if inflates_on_read(data.records):
            batches = await in_thread(read_produce_data, data.records, ctx.api_version, **limits)
            waited = True
        else:
            batches = read_produce_data(data.records, ctx.api_version, **limits)
        keyless: list[int] = []
        for batch in batches:
            if not batch.needs_scan(compacted, max_record):
                continue
            if batch.inflates or len(batch.data) > ON_LOOP_BYTES:
                keyless += await in_thread(batch.scan, compacted=compacted, max_record_bytes=max_record)
                waited = True
            else:
                keyless += batch.scan(compacted=compacted, max_record_bytes=max_record)
    except BatchError as exc:
        log.info("produce to %s-%d rejected: %s", topic, data.index, exc)
        return _partition_error(data.index, exc.code, str(exc))
    if keyless:
        return _keyless_error(keyless, f"{topic}-{data.index}") | {"index": data.index}
    if waited:  # the cluster may have moved on while the records were walked in a thread
        try:
            partition = cluster.leader_partition(topic, data.index, ctx.node_id)
        except ClusterError as exc:
            return _partition_error(data.index, exc.code, exc.message)
    try:
        result = partition.append(batches, cluster.now_ms())
    except OSError as exc:
        log.error("produce to %s-%d: cannot write the log: %s", topic, data.index, exc)
        return _partition_error(data.index, ErrorCode.KAFKA_STORAGE_ERROR, str(exc))
    if result.error:
        return _partition_error(data.index, result.error)
    appended.append(partition)
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


async def _await_commit(ctx: Context, pending: list[_Pending], timeout_ms: int) -> None:
    """Wait until each pending append is committed (or fails); bodies get their final error."""
    deadline = trio.current_time() + max(timeout_ms, 0) / 1000
    while True:
        waiting = []
        for entry in pending:
            status = entry.partition.commit_status(entry.end_offset, ctx.node_id, entry.leader_epoch)
            if status is None:
                waiting.append(entry)
            elif status != ErrorCode.NONE:
                entry.body.update(error_code=status, base_offset=-1, error_message=None)
        pending = waiting
        if not pending:
            return
        if trio.current_time() >= deadline:
            for entry in pending:
                entry.body.update(error_code=ErrorCode.REQUEST_TIMED_OUT, base_offset=-1, error_message=None)
            return
        event = trio.Event()
        for entry in pending:
            entry.partition.add_waiter(event)
        try:
            with trio.move_on_at(deadline):
                await event.wait()
        finally:
            for entry in pending:
                entry.partition.remove_waiter(event)


@handles(ApiKey.PRODUCE)
async def produce(ctx: Context, req: Container) -> Body | None:
    acks = req.acks
    responses = []
    pending: list[_Pending] = []
    appended: list[Partition] = []
    for topic in req.topic_data:
        if acks not in (-1, 0, 1):
            parts = [_partition_error(p.index, ErrorCode.INVALID_REQUIRED_ACKS) for p in topic.partition_data]
        else:
            parts = [
                await _produce_partition(ctx, topic.name, p, acks, pending, appended) for p in topic.partition_data
            ]
        responses.append({"name": topic.name, "partition_responses": parts})
    if appended:
        await ctx.cluster.store.after_produce(appended, acks)  # flush.messages, fsync.on.ack
    if pending:
        await _await_commit(ctx, pending, req.timeout_ms)
    if acks == 0:
        return None
    return {"responses": responses, "throttle_time_ms": 0}
