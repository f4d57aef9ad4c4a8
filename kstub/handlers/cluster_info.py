"""DescribeCluster (60) and DescribeLogDirs (35).

DescribeCluster answers the cluster id, the controller and the live brokers,
as Metadata does; only the broker endpoint type exists here (asking for
controllers is MISMATCHED_ENDPOINT_TYPE in v1, INVALID_REQUEST in v0, as a
Kafka broker answers). Authorized operations, when asked, are every cluster
operation (there is no authorizer).

DescribeLogDirs answers, for the broker asked, its one log directory and the
size of each replica log it holds (all of them, or those requested). With
``--data-dir`` the directory is the broker's folder under it, with the
volume's total and usable bytes; in memory it is reported as
``<memory>/broker-N`` with -1 for the volume sizes.
"""

from __future__ import annotations

import shutil

from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, Op, Res, handles

BROKER_ENDPOINT = 1
_ENDPOINT_NAMES = {1: "BROKER", 2: "CONTROLLER"}

# AclOperation codes a cluster resource supports: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
# DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE (Kafka's AclEntry.supportedOperations).
CLUSTER_OPERATIONS = sum(1 << op for op in (5, 7, 8, 9, 10, 11, 12))
NO_OPERATIONS = -(2**31)


@handles(ApiKey.DESCRIBE_CLUSTER)
async def describe_cluster(ctx: Context, req: Container) -> Body:
    cluster = ctx.cluster
    # a refusal answers with this endpoint's own type and no cluster id, as Kafka does
    body: Body = {"throttle_time_ms": 0, "endpoint_type": BROKER_ENDPOINT, "cluster_id": ""}
    if req.endpoint_type not in _ENDPOINT_NAMES:
        code = ErrorCode.INVALID_REQUEST if ctx.api_version == 0 else ErrorCode.UNSUPPORTED_ENDPOINT_TYPE
        return {**body, "error_code": code, "error_message": f"Unsupported endpoint type {req.endpoint_type}"}
    if req.endpoint_type != BROKER_ENDPOINT:
        code = ErrorCode.INVALID_REQUEST if ctx.api_version == 0 else ErrorCode.MISMATCHED_ENDPOINT_TYPE
        return {
            **body,
            "error_code": code,
            "error_message": "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type "
            + _ENDPOINT_NAMES[req.endpoint_type],
        }
    return {
        **body,
        "cluster_id": cluster.cluster_id,
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "controller_id": cluster.controller_id,
        # v2 (KIP-1073): fenced brokers (kstub's stopped ones, out of the controller's view) too, when asked
        "brokers": [
            {"broker_id": b.node_id, "host": host, "port": port, "rack": b.rack, "is_fenced": not b.alive}
            for b in sorted(cluster.brokers.values(), key=lambda b: b.node_id)
            if b.alive or (ctx.api_version >= 2 and req.include_fenced_brokers)
            for host, port in (ctx.endpoint(b),)
        ],
        "cluster_authorized_operations": cluster_operations(ctx)
        if req.include_cluster_authorized_operations
        else NO_OPERATIONS,
    }


def cluster_operations(ctx: Context) -> int:
    """The cluster's authorized operations field: none without DESCRIBE on it, as Kafka answers."""
    return ctx.authorized_operations(Res.CLUSTER) if ctx.authorize_cluster(Op.DESCRIBE) else 0


@handles(ApiKey.DESCRIBE_LOG_DIRS)
async def describe_log_dirs(ctx: Context, req: Container) -> Body:
    cluster = ctx.cluster
    if not ctx.authorize_cluster(Op.DESCRIBE):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "results": []}
    wanted = None if req.topics is None else {(t.topic, p) for t in req.topics for p in t.partitions}
    topics = []
    for topic in cluster.topics.values():
        parts = []
        for p in topic.partitions:
            lg = p.logs.get(ctx.node_id)
            if lg is None or (wanted is not None and (topic.name, p.index) not in wanted):
                continue
            parts.append(
                {
                    "partition_index": p.index,
                    "partition_size": lg.size_bytes,
                    "offset_lag": max(p.high_watermark - lg.log_end_offset, 0),
                    "is_future_key": False,
                }
            )
        if parts:
            topics.append({"name": topic.name, "partitions": parts})
    log_dir = cluster.store.broker_dir(ctx.node_id)
    total = usable = -1
    if log_dir is not None:
        usage = shutil.disk_usage(log_dir)
        total, usable = usage.total, usage.free
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "results": [
            {
                "error_code": ErrorCode.NONE,
                "log_dir": str(log_dir) if log_dir is not None else f"<memory>/broker-{ctx.node_id}",
                "topics": topics,
                "total_bytes": total,
                "usable_bytes": usable,
            }
        ],
    }
