"""DescribeProducers (61): the producers a partition's replica knows (KIP-664; kafka-transactions describe-producers).

Answered from the replica's own producer state (kstub/cluster/producers.py),
as Kafka's Partition.activeProducerState: any broker holding a replica answers
with its log's view (the admin client asks the leader unless told a broker); a
broker without one answers NOT_LEADER_OR_FOLLOWER, an unknown partition
UNKNOWN_TOPIC_OR_PARTITION. Each producer: id, epoch, last sequence, the
timestamp of its last batch or marker, the coordinator epoch of its last
marker, and the first offset of its open transaction (-1: none). A topic the
principal may not READ is TOPIC_AUTHORIZATION_FAILED for each partition asked,
checked before whether the topic exists, as KafkaApis checks it.
"""

from __future__ import annotations

from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, Op, Res, handles


def _partition(ctx: Context, topic: str, index: int) -> Body:
    body: Body = {"partition_index": index, "error_code": ErrorCode.NONE, "error_message": None}
    if not ctx.authorize(Op.READ, Res.TOPIC, topic):
        return body | {"error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED, "active_producers": []}
    p = ctx.cluster.partition(topic, index)
    if p is None or p.deleted:
        return body | {"error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "active_producers": []}
    log = p.logs.get(ctx.node_id) if ctx.node_id in p.replicas else None
    if log is None:
        return body | {"error_code": ErrorCode.NOT_LEADER_OR_FOLLOWER, "active_producers": []}
    producers = sorted(log.producers.describe())
    body["active_producers"] = [
        {
            "producer_id": info.producer_id,
            "producer_epoch": info.epoch,
            "last_sequence": info.last_sequence,
            "last_timestamp": info.last_timestamp,
            "coordinator_epoch": info.coordinator_epoch,
            "current_txn_start_offset": info.txn_start_offset,
        }
        for info in producers
    ]
    return body


@handles(ApiKey.DESCRIBE_PRODUCERS)
async def describe_producers(ctx: Context, req: Container) -> Body:
    topics = []
    for t in req.topics:
        topics.append({"name": t.name, "partitions": [_partition(ctx, t.name, i) for i in t.partition_indexes]})
    return {"throttle_time_ms": 0, "topics": topics}
