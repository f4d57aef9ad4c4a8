"""AlterPartitionReassignments (45) and ListPartitionReassignments (46), as `kafka-reassign-partitions` uses them.

The rules are the controller's (kstub/cluster/reassignment.py): each partition
is answered on its own (UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT,
INVALID_REPLICATION_FACTOR under v1's allow_replication_factor_change=false,
NO_REASSIGNMENT_IN_PROGRESS for a cancellation with nothing to cancel). Alter
needs ALTER on the cluster, List DESCRIBE; refused, every partition asked gets
CLUSTER_AUTHORIZATION_FAILED as well as the top level, as Kafka answers. List
answers only the partitions being reassigned, and skips unknown topics.
"""

from __future__ import annotations

from kstub.cluster import reassignment
from kstub.cluster.reassignment import ReassignmentError
from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, Op, handles

_DENIED = "Cluster authorization failed."


@handles(ApiKey.ALTER_PARTITION_REASSIGNMENTS)
async def alter_partition_reassignments(ctx: Context, req: Container) -> Body:
    allow_rf_change = req.allow_replication_factor_change if ctx.api_version >= 1 else True
    if not ctx.authorize_cluster(Op.ALTER):
        code = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        return {
            "throttle_time_ms": 0,
            "allow_replication_factor_change": allow_rf_change,
            "error_code": code,
            "error_message": _DENIED,
            "responses": [
                {
                    "name": t.name,
                    "partitions": [
                        {"partition_index": p.partition_index, "error_code": code, "error_message": _DENIED}
                        for p in t.partitions
                    ],
                }
                for t in req.topics
            ],
        }
    cluster = ctx.cluster
    responses = []
    for t in req.topics:
        answers = []
        for asked in t.partitions:
            error, message = ErrorCode.NONE, None
            p = cluster.partition(t.name, asked.partition_index)
            if t.name not in cluster.topics:
                error, message = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find a topic named {t.name}."
            elif p is None:
                error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                message = f"Unable to find partition {t.name}:{asked.partition_index}."
            else:
                replicas = None if asked.replicas is None else list(asked.replicas)
                try:
                    reassignment.reassign(cluster, p, replicas, allow_rf_change)
                except ReassignmentError as exc:
                    error, message = exc.code, str(exc)
            answers.append({"partition_index": asked.partition_index, "error_code": error, "error_message": message})
        responses.append({"name": t.name, "partitions": answers})
    return {
        "throttle_time_ms": 0,
        "allow_replication_factor_change": allow_rf_change,
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "responses": responses,
    }


def _ongoing(name: str, partitions: list) -> Body:
    return {
        "name": name,
        "partitions": [
            {
                "partition_index": p.index,
                "replicas": list(p.replicas),
                "adding_replicas": list(p.adding_replicas),
                "removing_replicas": list(p.removing_replicas),
            }
            for p in partitions
        ],
    }


@handles(ApiKey.LIST_PARTITION_REASSIGNMENTS)
async def list_partition_reassignments(ctx: Context, req: Container) -> Body:
    if not ctx.authorize_cluster(Op.DESCRIBE):
        code = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        topics = [
            {
                "name": t.name,
                "partitions": [
                    {"partition_index": i, "replicas": [], "adding_replicas": [], "removing_replicas": []}
                    for i in t.partition_indexes
                ],
            }
            for t in req.topics or []
        ]
        return {"throttle_time_ms": 0, "error_code": code, "error_message": _DENIED, "topics": topics}
    cluster = ctx.cluster
    topics = []
    if req.topics is None:
        by_topic: dict[str, list] = {}
        for p in reassignment.ongoing(cluster):
            by_topic.setdefault(p.topic.name, []).append(p)
        topics = [_ongoing(name, partitions) for name, partitions in by_topic.items()]
    else:
        for t in req.topics:
            if t.name not in cluster.topics:
                continue
            partitions = [cluster.partition(t.name, i) for i in t.partition_indexes]
            found = [p for p in partitions if p is not None and reassignment.in_progress(p)]
            if found:
                topics.append(_ongoing(t.name, found))
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "topics": topics}
