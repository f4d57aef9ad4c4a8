"""Metadata (3): brokers, controller, cluster id, topics and their partitions.

A null topic list (v1+), or an empty one in v0, means every topic. An unknown
topic is auto-created when the request allows it (v4+, always before) and the
broker has auto.create.topics.enable; like Kafka, the response that creates it
says LEADER_NOT_AVAILABLE and the client asks again.
"""

from __future__ import annotations

from construct import Container

from kstub.cluster.model import ClusterError, Partition, Topic, topic_name_error
from kstub.protocol import ApiKey, ErrorCode
from kstub.protocol.primitives import ZERO_UUID

from .base import Body, Context, handles


def broker_list(ctx: Context) -> list[Body]:
    return [
        {"node_id": b.node_id, "host": b.advertised_host, "port": b.port, "rack": b.rack}
        for b in ctx.cluster.live_brokers()
    ]


def partition_body(p: Partition) -> Body:
    error = ErrorCode.NONE if p.leader >= 0 else ErrorCode.LEADER_NOT_AVAILABLE
    return {
        "error_code": error,
        "partition_index": p.index,
        "leader_id": p.leader,
        "leader_epoch": p.leader_epoch,
        "replica_nodes": list(p.replicas),
        "isr_nodes": list(p.isr),
        "offline_replicas": [r for r in p.replicas if not p.topic.cluster.brokers[r].alive],
    }


def topic_body(topic: Topic, error: ErrorCode = ErrorCode.NONE) -> Body:
    return {
        "error_code": error,
        "name": topic.name,
        "topic_id": topic.topic_id,
        "is_internal": False,
        "partitions": [] if error else [partition_body(p) for p in topic.partitions],
    }


def _error_topic(name: str | None, error: ErrorCode) -> Body:
    return {"error_code": error, "name": name, "topic_id": ZERO_UUID, "is_internal": False, "partitions": []}


def _injected(ctx: Context, name: str) -> Body | None:
    """The topic's error body if the control plane injects one."""
    code = ctx.injected_error(name)
    return None if code is None else _error_topic(name, code)


@handles(ApiKey.METADATA)
async def metadata(ctx: Context, req: Container) -> Body:
    cluster = ctx.cluster
    requested = req.topics
    if requested is None or (ctx.api_version == 0 and not requested):
        topics = [topic_body(t) for t in cluster.topics.values()]
        if ctx.faults:
            topics = [_injected(ctx, t["name"]) or t for t in topics]
    else:
        allow_create = req.allow_auto_topic_creation if ctx.api_version >= 4 else True
        topics = []
        for entry in requested:
            name = entry.name
            if name is None:  # v10+: by topic id
                topic = cluster.topic_by_id(entry.topic_id)
                topics.append(topic_body(topic) if topic else _error_topic(None, ErrorCode.UNKNOWN_TOPIC_ID))
                continue
            injected = _injected(ctx, name) if ctx.faults else None
            if injected is not None:
                topics.append(injected)
                continue
            topic = cluster.topics.get(name)
            if topic is not None:
                topics.append(topic_body(topic))
            elif topic_name_error(name):
                topics.append(_error_topic(name, ErrorCode.INVALID_TOPIC_EXCEPTION))
            elif allow_create and cluster.config["auto.create.topics.enable"]:
                try:
                    created = cluster.create_topic(name)
                except ClusterError as exc:
                    topics.append(_error_topic(name, exc.code))
                else:
                    topics.append(topic_body(created, ErrorCode.LEADER_NOT_AVAILABLE))
            else:
                topics.append(_error_topic(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
    return {
        "throttle_time_ms": 0,
        "brokers": broker_list(ctx),
        "cluster_id": cluster.cluster_id,
        "controller_id": cluster.controller_id,
        "topics": topics,
    }
