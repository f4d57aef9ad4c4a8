"""Transactions: AddPartitionsToTxn (24), AddOffsetsToTxn (25), EndTxn (26), TxnOffsetCommit (28),
DescribeTransactions (65), ListTransactions (66).

Thin: each request is checked for its coordinator and handed to the
transaction coordinator (kstub/cluster/transactions) or, for TxnOffsetCommit,
the group coordinator, as Kafka's KafkaApis does. InitProducerId with a
transactional id is in producer_ids.py. Clients older than v2 of
AddPartitionsToTxn, AddOffsetsToTxn and EndTxn do not know PRODUCER_FENCED and
get INVALID_PRODUCER_EPOCH instead. v5 of AddPartitionsToTxn and EndTxn, and
Produce v12 / TxnOffsetCommit v5, are transactions v2 (KIP-890 part 2).

Authorization, as KafkaApis checks it: WRITE on the transactional id
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED) for AddPartitionsToTxn up to v3,
AddOffsetsToTxn, EndTxn and TxnOffsetCommit; then WRITE on each topic added
(TOPIC_AUTHORIZATION_FAILED, the internal topics always refused), READ on the
group for AddOffsetsToTxn and TxnOffsetCommit (GROUP_AUTHORIZATION_FAILED)
and READ on each topic whose offsets are committed. AddPartitionsToTxn v4+
comes from brokers: CLUSTER_ACTION on the cluster. DescribeTransactions needs
DESCRIBE on each transactional id and shows only the topics the principal
may describe; ListTransactions lists only the ids it may describe.
"""

from __future__ import annotations

import re
from typing import Any

from kstub.cluster.groups import GroupError
from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, Op, Res, handles
from .groups import check_group

#: topics no client may add to a transaction by name (Kafka's Topic.isInternal)
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})


def _old_fenced(error: ErrorCode, version: int, below: int) -> ErrorCode:
    return ErrorCode.INVALID_PRODUCER_EPOCH if version < below and error == ErrorCode.PRODUCER_FENCED else error


def _topic_results(errors: dict[tuple[str, int], ErrorCode]) -> list[Body]:
    by_topic: dict[str, list[Body]] = {}
    for (topic, partition), error in errors.items():
        by_topic.setdefault(topic, []).append({"partition_index": partition, "partition_error_code": error})
    return [{"name": t, "results_by_partition": parts} for t, parts in by_topic.items()]


def _add_one(
    ctx: Context, tid: str, pid: int, epoch: int, topics: list[Container], verify_only: bool
) -> dict[tuple[str, int], ErrorCode]:
    partitions = [(t.name, p) for t in topics for p in t.partitions]
    coordinator = ctx.cluster.transactions
    from_client = ctx.api_version < 4  # v4+ comes from brokers, authorized as a whole
    if from_client and not ctx.authorize(Op.WRITE, Res.TRANSACTIONAL_ID, tid):
        return dict.fromkeys(partitions, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    errors: dict[tuple[str, int], ErrorCode] = {}
    for tp in partitions:
        if from_client and (tp[0] in INTERNAL_TOPICS or not ctx.authorize(Op.WRITE, Res.TOPIC, tp[0])):
            errors[tp] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        elif ctx.cluster.partition(*tp) is None:
            errors[tp] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    if errors:  # Kafka answers the refused and unknown ones first, then the others as not attempted
        return errors | {tp: ErrorCode.OPERATION_NOT_ATTEMPTED for tp in partitions if tp not in errors}
    error = coordinator.check_coordinator(tid, ctx.node_id) if tid else None
    if error is not None:
        return dict.fromkeys(partitions, error)
    if verify_only:
        return coordinator.verify_partitions(tid, pid, epoch, partitions)
    error = coordinator.add_partitions(tid, pid, epoch, partitions, 2 if ctx.api_version >= 5 else 0)
    return dict.fromkeys(partitions, _old_fenced(error, ctx.api_version, 2))


@handles(ApiKey.ADD_PARTITIONS_TO_TXN)
async def add_partitions_to_txn(ctx: Context, req: Container) -> Body:
    if ctx.api_version < 4:
        errors = _add_one(
            ctx,
            req.v3_and_below_transactional_id,
            req.v3_and_below_producer_id,
            req.v3_and_below_producer_epoch,
            req.v3_and_below_topics,
            False,
        )
        return {"throttle_time_ms": 0, "results_by_topic_v3_and_below": _topic_results(errors)}
    if not ctx.authorize_cluster(Op.CLUSTER_ACTION):
        error = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        return {"throttle_time_ms": 0, "error_code": error, "results_by_transaction": []}
    results = []
    for txn in req.transactions:
        errors = _add_one(ctx, txn.transactional_id, txn.producer_id, txn.producer_epoch, txn.topics, txn.verify_only)
        results.append({"transactional_id": txn.transactional_id, "topic_results": _topic_results(errors)})
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "results_by_transaction": results}


@handles(ApiKey.ADD_OFFSETS_TO_TXN)
async def add_offsets_to_txn(ctx: Context, req: Container) -> Body:
    if not ctx.authorize(Op.WRITE, Res.TRANSACTIONAL_ID, req.transactional_id):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED}
    if not ctx.authorize(Op.READ, Res.GROUP, req.group_id):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED}
    coordinator = ctx.cluster.transactions
    error = coordinator.check_coordinator(req.transactional_id, ctx.node_id) if req.transactional_id else None
    if error is None:
        error = coordinator.add_offsets(req.transactional_id, req.producer_id, req.producer_epoch, req.group_id)
    return {"throttle_time_ms": 0, "error_code": _old_fenced(error, ctx.api_version, 2)}


@handles(ApiKey.END_TXN)
async def end_txn(ctx: Context, req: Container) -> Body:
    coordinator = ctx.cluster.transactions
    error = coordinator.check_coordinator(req.transactional_id, ctx.node_id) if req.transactional_id else None
    if not ctx.authorize(Op.WRITE, Res.TRANSACTIONAL_ID, req.transactional_id):
        error = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    if error is not None:
        return {"throttle_time_ms": 0, "error_code": error, "producer_id": -1, "producer_epoch": -1}
    result = coordinator.end_txn(
        req.transactional_id, req.producer_id, req.producer_epoch, req.committed, 2 if ctx.api_version >= 5 else 0
    )
    return {
        "throttle_time_ms": 0,
        "error_code": _old_fenced(result.error, ctx.api_version, 2),
        "producer_id": result.producer_id,
        "producer_epoch": result.producer_epoch,
    }


def _offsets_write_error(error: ErrorCode, version: int) -> ErrorCode:
    """What the group coordinator answers when the transaction coordinator refuses the offsets partition
    (Kafka's AddPartitionsToTxnManager mapping for TxnOffsetCommit)."""
    if error == ErrorCode.PRODUCER_FENCED:
        return ErrorCode.INVALID_PRODUCER_EPOCH
    if error == ErrorCode.TRANSACTION_ABORTABLE and version < 4:
        return ErrorCode.INVALID_TXN_STATE
    if error in (ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    return error


@handles(ApiKey.TXN_OFFSET_COMMIT)
async def txn_offset_commit(ctx: Context, req: Container) -> Body:
    cluster = ctx.cluster
    by_id = ctx.api_version >= 6  # v6 names topics by id
    errors: dict[tuple[Any, int], ErrorCode] = {}
    known: list[tuple[Any, str, Container]] = []
    refused: ErrorCode | None = None  # the transactional id, then the group, as Kafka checks them first
    if not ctx.authorize(Op.WRITE, Res.TRANSACTIONAL_ID, req.transactional_id):
        refused = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    elif not ctx.authorize(Op.READ, Res.GROUP, req.group_id):
        refused = ErrorCode.GROUP_AUTHORIZATION_FAILED
    for t in req.topics:
        key = t.topic_id if by_id else t.name
        topic = cluster.topic_by_id(t.topic_id) if by_id else cluster.topics.get(t.name)
        for p in t.partitions:
            if refused is not None:
                errors[(key, p.partition_index)] = refused
            elif topic is None and by_id:
                errors[(key, p.partition_index)] = ErrorCode.UNKNOWN_TOPIC_ID
            elif not ctx.authorize(Op.READ, Res.TOPIC, topic.name if topic is not None else t.name):
                errors[(key, p.partition_index)] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            elif topic is None or cluster.partition(topic.name, p.partition_index) is None:
                errors[(key, p.partition_index)] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            else:
                known.append((key, topic.name, p))
    if known:
        error = check_group(ctx, req.group_id)
        group = None
        if error is None:
            try:
                group = cluster.groups.commits.validate_txn_commit(
                    req.group_id, req.generation_id_or_member_epoch, req.member_id, req.group_instance_id
                )
            except GroupError as exc:
                error = exc.code
        if group is not None:
            txns = cluster.transactions
            tp = txns.offsets_partition(req.group_id)
            verdict = txns.transactional_write(
                req.transactional_id, req.producer_id, req.producer_epoch, [tp], add=ctx.api_version >= 5
            )[tp]
            if verdict != ErrorCode.NONE:
                error, group = _offsets_write_error(verdict, ctx.api_version), None
        max_metadata = cluster.config["offset.metadata.max.bytes"]
        for key, name, p in known:
            metadata = p.committed_metadata or ""
            if group is None:
                errors[(key, p.partition_index)] = error or ErrorCode.UNKNOWN_SERVER_ERROR
            elif len(metadata) > max_metadata:
                errors[(key, p.partition_index)] = ErrorCode.OFFSET_METADATA_TOO_LARGE
            else:
                cluster.groups.commits.store_pending(
                    group, req.producer_id, name, p.partition_index, p.committed_offset,
                    p.committed_leader_epoch, metadata,
                )  # fmt: skip
                errors[(key, p.partition_index)] = ErrorCode.NONE
    by_topic: dict[Any, list[Body]] = {}
    for t in req.topics:
        key = t.topic_id if by_id else t.name
        for p in t.partitions:
            by_topic.setdefault(key, []).append(
                {"partition_index": p.partition_index, "error_code": errors[(key, p.partition_index)]}
            )
    field = "topic_id" if by_id else "name"
    return {"throttle_time_ms": 0, "topics": [{field: k, "partitions": ps} for k, ps in by_topic.items()]}


def _describe_one(ctx: Context, tid: str) -> Body:
    coordinator = ctx.cluster.transactions
    body: Body = {
        "error_code": ErrorCode.NONE,
        "transactional_id": tid,
        "transaction_state": "",
        "transaction_timeout_ms": 0,
        "transaction_start_time_ms": 0,
        "producer_id": 0,
        "producer_epoch": 0,
        "topics": [],
    }
    error = coordinator.check_coordinator(tid, ctx.node_id) if tid else ErrorCode.INVALID_REQUEST
    if not ctx.authorize(Op.DESCRIBE, Res.TRANSACTIONAL_ID, tid):
        error = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    txn = coordinator.get(tid) if error is None else None
    if error is None and txn is None:
        error = ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
    if error is not None or txn is None:
        return body | {"error_code": error}
    return body | {
        "transaction_state": txn.state.value,
        "transaction_timeout_ms": txn.timeout_ms,
        "transaction_start_time_ms": txn.start_ms,
        "producer_id": txn.producer_id,
        "producer_epoch": txn.producer_epoch,
        "topics": [
            {"topic": t, "partitions": ps}
            for t, ps in txn.topics().items()
            if ctx.authorize(Op.DESCRIBE, Res.TOPIC, t)  # only the topics the principal may describe
        ],
    }


@handles(ApiKey.DESCRIBE_TRANSACTIONS)
async def describe_transactions(ctx: Context, req: Container) -> Body:
    return {"throttle_time_ms": 0, "transaction_states": [_describe_one(ctx, tid) for tid in req.transactional_ids]}


@handles(ApiKey.LIST_TRANSACTIONS)
async def list_transactions(ctx: Context, req: Container) -> Body:
    duration = req.duration_filter if ctx.api_version >= 1 else -1
    pattern = req.transactional_id_pattern if ctx.api_version >= 2 else None
    try:
        unknown, txns = ctx.cluster.transactions.list_transactions(
            ctx.node_id, req.state_filters, req.producer_id_filters, duration, pattern
        )
    except re.error:
        return {
            "throttle_time_ms": 0,
            "error_code": ErrorCode.INVALID_REGULAR_EXPRESSION,
            "unknown_state_filters": [],
            "transaction_states": [],
        }
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "unknown_state_filters": unknown,
        "transaction_states": [
            {"transactional_id": t.transactional_id, "producer_id": t.producer_id, "transaction_state": t.state.value}
            for t in txns
            if ctx.authorize(Op.DESCRIBE, Res.TRANSACTIONAL_ID, t.transactional_id)
        ],
    }
