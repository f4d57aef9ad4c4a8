"""InitProducerId (22): producer ids and epochs for idempotent producers.

kafka-python enables idempotence by default, so every kafka-python producer
sends this before its first Produce. As in Kafka, a producer without a
transactional id gets a new id (epoch 0) every time, whatever id and epoch it
names (a v3+ request naming only one of the two is INVALID_REQUEST); the
KIP-360 epoch bump is for transactional ids, which the transaction
coordinator answers (kstub/cluster/transactions).
"""

from __future__ import annotations

from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, Op, Res, handles

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1


def init_producer_id_denied(ctx: Context, transactional_id: str | None) -> ErrorCode | None:
    """Kafka's check: WRITE on the transactional id, else IDEMPOTENT_WRITE on the cluster or WRITE on some topic."""
    if transactional_id is not None:
        if not ctx.authorize(Op.WRITE, Res.TRANSACTIONAL_ID, transactional_id):
            return ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    elif not ctx.authorize_cluster(Op.IDEMPOTENT_WRITE) and not ctx.authorize_by_resource_type(Op.WRITE, Res.TOPIC):
        return ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    return None


@handles(ApiKey.INIT_PRODUCER_ID)
async def init_producer_id(ctx: Context, req: Container) -> Body:
    pid, epoch = req.producer_id, req.producer_epoch
    denied = init_producer_id_denied(ctx, req.transactional_id)
    if denied is not None:
        return {"throttle_time_ms": 0, "error_code": denied, "producer_id": -1, "producer_epoch": -1}
    if (pid == NO_PRODUCER_ID) != (epoch == NO_PRODUCER_EPOCH):
        error = ErrorCode.INVALID_REQUEST
        return {"throttle_time_ms": 0, "error_code": error, "producer_id": -1, "producer_epoch": -1}
    if req.transactional_id is not None:
        return _transactional(ctx, req)
    # an idempotent producer always gets a new id
    error, pid, epoch = ctx.cluster.producer_ids.init(None, NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
    if not error:
        ctx.cluster.store.save_producer_ids(ctx.cluster)
    return {"throttle_time_ms": 0, "error_code": error, "producer_id": pid, "producer_epoch": epoch}


def _transactional(ctx: Context, req: Container) -> Body:
    """A transactional id: the transaction coordinator's (kstub/cluster/transactions); older clients
    (v0-3) get INVALID_PRODUCER_EPOCH for PRODUCER_FENCED, as Kafka answers them."""
    coordinator = ctx.cluster.transactions
    tid = req.transactional_id
    error = coordinator.check_coordinator(tid, ctx.node_id) if tid else None
    pid = epoch = -1
    if error is None:
        error, pid, epoch = coordinator.init_producer_id(tid, req.transaction_timeout_ms, req.producer_id,
                                                         req.producer_epoch)  # fmt: skip
        if not error:
            ctx.cluster.store.save_producer_ids(ctx.cluster)
    if error == ErrorCode.PRODUCER_FENCED and ctx.api_version < 4:
        error = ErrorCode.INVALID_PRODUCER_EPOCH
    return {"throttle_time_ms": 0, "error_code": error, "producer_id": pid, "producer_epoch": epoch}
