"""FindCoordinator (10): which broker coordinates a group (or a transactional id).

The answer is the leader of the key's __consumer_offsets partition for key
type 0 (group), of its __transaction_state partition for key type 1
(transaction), which move when brokers fail as the controller moves any
leader (see kstub/cluster/coordinator.py and kstub/cluster/transactions). Unlike a fresh Kafka cluster creating
__consumer_offsets, there is always an answer: COORDINATOR_NOT_AVAILABLE only
when no broker is up. v0-3 carry one key; v4 batches keys and answers per
key. An unknown key type is INVALID_REQUEST.
"""

from __future__ import annotations

from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, Op, Res, handles

GROUP = 0
TRANSACTION = 1


def _lookup(ctx: Context, key: str, key_type: int) -> Body:
    if key_type not in (GROUP, TRANSACTION):
        error, message = ErrorCode.INVALID_REQUEST, f"Unknown coordinator type {key_type}"
        return {"error_code": error, "error_message": message, "node_id": -1, "host": "", "port": -1}
    denied = _denied(ctx, key, key_type)
    if denied is not None:
        return {"error_code": denied, "error_message": None, "node_id": -1, "host": "", "port": -1}
    if key_type == TRANSACTION:
        broker = ctx.cluster.transactions.coordinator_for(key)
    else:
        broker = ctx.cluster.groups.coordinator_for(key)
    if broker is None:
        error, message = ErrorCode.COORDINATOR_NOT_AVAILABLE, "The coordinator is not available."
        return {"error_code": error, "error_message": message, "node_id": -1, "host": "", "port": -1}
    return {
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "node_id": broker.node_id,
        "host": ctx.endpoint(broker)[0],
        "port": ctx.endpoint(broker)[1],
    }


def _denied(ctx: Context, key: str, key_type: int) -> ErrorCode | None:
    """DESCRIBE on the group or transactional id, as Kafka asks before looking."""
    if key_type == GROUP and not ctx.authorize(Op.DESCRIBE, Res.GROUP, key):
        return ErrorCode.GROUP_AUTHORIZATION_FAILED
    if key_type == TRANSACTION and not ctx.authorize(Op.DESCRIBE, Res.TRANSACTIONAL_ID, key):
        return ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    return None


@handles(ApiKey.FIND_COORDINATOR)
async def find_coordinator(ctx: Context, req: Container) -> Body:
    if ctx.api_version >= 4:
        return {
            "throttle_time_ms": 0,
            "coordinators": [{"key": key, **_lookup(ctx, key, req.key_type)} for key in req.coordinator_keys],
        }
    return {"throttle_time_ms": 0, **_lookup(ctx, req.key, req.key_type)}
