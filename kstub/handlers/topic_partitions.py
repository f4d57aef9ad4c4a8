"""DescribeTopicPartitions (75): topics and their partitions, a page at a time, as kafka-topics 4.x asks.

The topics asked for (every topic when none is named) are answered in name
order, unknown ones with UNKNOWN_TOPIC_OR_PARTITION and no partitions. The
partitions are those Metadata gives, with empty eligible-leader-replica lists
(kstub has no ELR: no replica is ever fenced out of leadership by it). At most
`response_partition_limit` partitions (capped at 2000, Kafka's
max.request.partition.size.limit) are answered; the cursor then names the
topic and partition to ask from next. Without an authorizer every topic
operation is authorized, and said so.
"""

from __future__ import annotations

from kstub.protocol import ApiKey, Container, ErrorCode
from kstub.protocol.primitives import ZERO_UUID

from .base import Body, Context, Op, Res, handles
from .cluster_info import NO_OPERATIONS
from .metadata import partition_body

#: Kafka's max.request.partition.size.limit default
PARTITION_LIMIT = 2000


@handles(ApiKey.DESCRIBE_TOPIC_PARTITIONS)
async def describe_topic_partitions(ctx: Context, req: Container) -> Body:
    cluster = ctx.cluster
    names = sorted({t.name for t in req.topics}) if req.topics else sorted(cluster.topics)
    cursor = req.cursor
    if cursor is not None:
        names = [n for n in names if n >= cursor.topic_name]
    budget = max(1, min(req.response_partition_limit, PARTITION_LIMIT))
    # topics the principal may not describe: left out of "all", else answered last without an id, as Kafka does
    refused = [n for n in names if not ctx.authorize(Op.DESCRIBE, Res.TOPIC, n)]
    names = [n for n in names if n not in refused]
    denied = [] if not req.topics else [_denied(n) for n in refused]
    topics: list[Body] = []
    next_cursor = None
    for name in names:
        topic = cluster.topics.get(name)
        if topic is None:
            topics.append(
                {
                    "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                    "name": name,
                    "topic_id": ZERO_UUID,
                    "partitions": [],
                    "topic_authorized_operations": ctx.authorized_operations(Res.TOPIC, name),
                }
            )
            continue
        first = cursor.partition_index if cursor is not None and name == cursor.topic_name else 0
        if budget == 0 and first < len(topic.partitions):
            next_cursor = {"topic_name": name, "partition_index": first}
            break
        partitions = []
        for p in topic.partitions[first:]:
            if budget == 0:
                next_cursor = {"topic_name": name, "partition_index": p.index}
                break
            partitions.append(partition_body(p) | {"eligible_leader_replicas": [], "last_known_elr": []})
            budget -= 1
        topics.append(
            {
                "error_code": ErrorCode.NONE,
                "name": name,
                "topic_id": topic.topic_id,
                "partitions": partitions,
                "topic_authorized_operations": ctx.authorized_operations(Res.TOPIC, name),
            }
        )
        if next_cursor is not None:
            break
    return {"throttle_time_ms": 0, "topics": topics + denied, "next_cursor": next_cursor}


def _denied(name: str) -> Body:
    return {
        "error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED,
        "name": name,
        "topic_id": ZERO_UUID,
        "partitions": [],
        "topic_authorized_operations": NO_OPERATIONS,
    }
