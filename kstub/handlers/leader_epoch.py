"""OffsetForLeaderEpoch (23): where a leader epoch ended in this partition's log.

Consumers use it to validate their position after a leader change (KIP-320;
librdkafka sends v2 whenever the leader epoch in Metadata grows). The answer
is the largest epoch <= the requested one and the offset where it ended: the
start of the next epoch, or the log end offset for the current epoch, from
the leader's epoch cache exactly as Kafka's LeaderEpochFileCache.endOffsetFor
(an epoch newer than any known: -1/-1). Followers in kstub reconcile by the
same lookup (kstub/cluster/replication.py).
"""

from __future__ import annotations

from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, Op, Res, handles
from .fetch import resolve


def _lookup(ctx: Context, topic: str, op: Container) -> Body:
    if not (ctx.authorize_cluster(Op.CLUSTER_ACTION) or ctx.authorize(Op.DESCRIBE, Res.TOPIC, topic)):
        return {
            "error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED,
            "partition": op.partition,
            "leader_epoch": -1,
            "end_offset": -1,
        }
    target = resolve(ctx, topic, op.partition, op.current_leader_epoch)
    if isinstance(target, ErrorCode):
        return {"error_code": target, "partition": op.partition, "leader_epoch": -1, "end_offset": -1}
    epoch, end = target.leader_log.end_offset_for_epoch(op.leader_epoch)
    return {"error_code": ErrorCode.NONE, "partition": op.partition, "leader_epoch": epoch, "end_offset": end}


@handles(ApiKey.OFFSET_FOR_LEADER_EPOCH)
async def offset_for_leader_epoch(ctx: Context, req: Container) -> Body:
    return {
        "throttle_time_ms": 0,
        "topics": [
            {"topic": t.topic, "partitions": [_lookup(ctx, t.topic, p) for p in t.partitions]} for t in req.topics
        ],
    }
