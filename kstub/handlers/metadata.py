"""Metadata (3): brokers, controller, cluster id, topics and their partitions.

A null topic list (v1+), or an empty one in v0, means every topic. An unknown
topic is auto-created when the request allows it (v4+, always before) and the
broker has auto.create.topics.enable; like Kafka, the response that creates it
says LEADER_NOT_AVAILABLE and the client asks again.

Topic ids (v10+) are answered as Kafka 4.x answers them: v10-v11 with a topic
id or a null name get a whole-request INVALID_REQUEST; v12 looks topics up by
id alone when any id is given (UNKNOWN_TOPIC_ID, null name, for an unknown
one), and a null name without an id fails the whole request with
UNKNOWN_SERVER_ERROR. The connection stays open in every case.
"""

from __future__ import annotations

from construct import Container

from kstub.cluster.model import ClusterError, Partition, Topic, topic_name_error
from kstub.protocol import ApiKey, ErrorCode
from kstub.protocol.primitives import ZERO_UUID

from .base import Body, Context, handles


def broker_list(ctx: Context) -> list[Body]:
    return [
        {"node_id": b.node_id, "host": host, "port": port, "rack": b.rack}
        for b in ctx.cluster.live_brokers()
        for host, port in (ctx.endpoint(b),)
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


def _error_response(requested: list[Container], code: ErrorCode) -> Body:
    """Kafka's whole-request error answer: no brokers, no controller, each topic as asked with `code`."""
    topics = [
        {
            "error_code": code,
            "name": "" if entry.name is None else entry.name,
            "topic_id": entry.topic_id,
            "is_internal": False,
            "partitions": [],
        }
        for entry in requested
    ]
    return {"throttle_time_ms": 0, "brokers": [], "cluster_id": None, "controller_id": -1, "topics": topics}


def _by_id(ctx: Context, requested: list[Container]) -> list[Body] | None:
    """v12+: when any topic id is given, Kafka answers by id only (each id once); names are ignored."""
    ids = list(dict.fromkeys(e.topic_id for e in requested if e.topic_id not in (None, ZERO_UUID)))
    if not ids:
        return None
    topics = []
    for topic_id in ids:
        topic = ctx.cluster.topic_by_id(topic_id)
        if topic is None:
            body = _error_topic(None, ErrorCode.UNKNOWN_TOPIC_ID)
            body["topic_id"] = topic_id
            topics.append(body)
        else:
            topics.append((_injected(ctx, topic.name) if ctx.faults else None) or topic_body(topic))
    return topics


@handles(ApiKey.METADATA)
async def metadata(ctx: Context, req: Container) -> Body:
    cluster = ctx.cluster
    requested = req.topics
    by_id = None
    if requested and ctx.api_version >= 10:
        if ctx.api_version < 12:
            # v10-v11 carry topic ids but Kafka serves lookups by id only from v12: INVALID_REQUEST.
            if any(e.name is None or e.topic_id not in (None, ZERO_UUID) for e in requested):
                return _error_response(requested, ErrorCode.INVALID_REQUEST)
        else:
            by_id = _by_id(ctx, requested)
            if by_id is None and any(e.name is None for e in requested):
                # Neither a name nor an id: Kafka 4.x fails the whole request (UNKNOWN_SERVER_ERROR).
                return _error_response(requested, ErrorCode.UNKNOWN_SERVER_ERROR)
    if by_id is not None:
        topics = by_id
    elif requested is None or (ctx.api_version == 0 and not requested):
        topics = [topic_body(t) for t in cluster.topics.values()]
        if ctx.faults:
            topics = [_injected(ctx, t["name"]) or t for t in topics]
    else:
        allow_create = req.allow_auto_topic_creation if ctx.api_version >= 4 else True
        topics = []
        for entry in requested:
            name = entry.name
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
