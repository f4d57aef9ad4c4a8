"""Metadata (3): brokers, controller, cluster id, topics and their partitions.

A null topic list (v1+), or an empty one in v0, means every topic. An unknown
topic is auto-created when the request allows it (v4+, always before) and the
broker has auto.create.topics.enable; like Kafka 4 (KRaft), the response that
creates it says UNKNOWN_TOPIC_OR_PARTITION (no topic id, no partitions) and the
client asks again.

A request naming any topic id (v10+) is answered for its ids only. Like Kafka,
the answer lists unknown topic ids first, then the topics that
exist, then the names of no topic (unknown, invalid or being created), each
name once. (Kafka orders the names of no topic by its hash set; kstub keeps
the request's order.) Authorized operations, when asked, are every operation a topic (or
the cluster) supports: there is no authorizer.

Requests Kafka 4.x refuses whole are refused the same way, and the connection
stays open: v10-v11 with a topic id or a null name get INVALID_REQUEST (Kafka
serves lookups by id only from v12), and a v12 request with a null name and
no id fails with UNKNOWN_SERVER_ERROR.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from kstub.cluster.model import ClusterError, Partition, Topic, topic_name_error
from kstub.protocol import ApiKey, Container, ErrorCode
from kstub.protocol.constructs import Sealed
from kstub.protocol.primitives import ZERO_UUID

from .base import Body, Context, Op, Res, handles
from .cluster_info import NO_OPERATIONS, cluster_operations

# AclOperation codes a topic resource supports: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
# DESCRIBE_CONFIGS, ALTER_CONFIGS (Kafka's AclEntry.supportedOperations).
TOPIC_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))


def broker_list(ctx: Context) -> list[Body]:
    return [
        {"node_id": b.node_id, "host": host, "port": port, "rack": b.rack}
        for b in ctx.cluster.live_brokers()
        for host, port in (ctx.endpoint(b),)
    ]


def partition_body(p: Partition) -> Sealed:
    """`p`'s part of a Metadata answer, sealed: its encoding is made once per version (see below)."""
    error = ErrorCode.NONE if p.leader >= 0 else ErrorCode.LEADER_NOT_AVAILABLE
    return Sealed(
        error_code=error,
        partition_index=p.index,
        leader_id=p.leader,
        leader_epoch=p.leader_epoch,
        replica_nodes=list(p.replicas),
        isr_nodes=list(p.isr),
        offline_replicas=[r for r in p.replicas if not p.topic.cluster.brokers[r].alive],
    )


#: Each topic's partitions' last bodies, with what each was made from: a Metadata request for many
#: partitions rebuilds only the bodies of partitions whose leader, epoch, ISR or replicas (or whose
#: brokers' liveness) changed. Read-only once made: responses share them, and their encodings
#: (`Sealed`). (Keyed by topic: one weak reference per topic looked up, not one per partition.)
_BODIES: WeakKeyDictionary[Topic, list[tuple[int, int, list[int], list[int], tuple[bool, ...], Body]]] = (
    WeakKeyDictionary()
)


def _partition_bodies(topic: Topic) -> list[Body]:
    alive = tuple(b.alive for b in topic.cluster.brokers.values())
    cache = _BODIES.get(topic)
    if cache is None:
        cache = _BODIES[topic] = []
    bodies = []
    for i, p in enumerate(topic.partitions):
        known = cache[i] if i < len(cache) else None
        if (
            known is None
            or known[0] != p.leader
            or known[1] != p.leader_epoch
            or known[2] != p.isr
            or known[3] != p.replicas
            or known[4] != alive
            or known[5]["partition_index"] != p.index
        ):
            known = (p.leader, p.leader_epoch, list(p.isr), list(p.replicas), alive, partition_body(p))
            if i < len(cache):
                cache[i] = known
            else:
                cache.append(known)
        bodies.append(known[5])
    return bodies


def topic_body(topic: Topic, error: ErrorCode = ErrorCode.NONE) -> Body:
    return {
        "error_code": error,
        "name": topic.name,
        "topic_id": topic.topic_id,
        "is_internal": False,
        "partitions": [] if error else _partition_bodies(topic),
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


@handles(ApiKey.METADATA)
async def metadata(ctx: Context, req: Container) -> Body:
    cluster = ctx.cluster
    requested = req.topics
    if requested and ctx.api_version >= 10:
        has_id = any(e.topic_id not in (None, ZERO_UUID) for e in requested)
        if ctx.api_version < 12 and (has_id or any(e.name is None for e in requested)):
            # v10-v11 carry topic ids but Kafka serves lookups by id only from v12: INVALID_REQUEST.
            return _error_response(requested, ErrorCode.INVALID_REQUEST)
        if not has_id and any(e.name is None for e in requested):
            # Neither a name nor an id: Kafka 4.x fails the whole request (UNKNOWN_SERVER_ERROR).
            return _error_response(requested, ErrorCode.UNKNOWN_SERVER_ERROR)
    if requested is None or (ctx.api_version == 0 and not requested):
        # every topic the principal may describe; the others are left out, as Kafka does
        topics = [topic_body(t) for t in cluster.topics.values() if ctx.authorize(Op.DESCRIBE, Res.TOPIC, t.name)]
        if ctx.faults:
            topics = [_injected(ctx, t["name"]) or t for t in topics]
    else:
        allow_create = req.allow_auto_topic_creation if ctx.api_version >= 4 else True
        unknown_ids: list[Body] = []
        found: list[Body] = []
        missing: list[Body] = []
        no_create: list[Body] = []  # TOPIC_AUTHORIZATION_FAILED: no CREATE for auto-creation,
        denied: list[Body] = []  # then no DESCRIBE
        seen: set[str] = set()
        seen_ids: set = set()
        by_id = any(e.topic_id is not None and e.topic_id != ZERO_UUID for e in requested)
        for entry in requested:
            name = entry.name
            if by_id and (entry.topic_id is None or entry.topic_id == ZERO_UUID):
                continue  # a request naming topic ids is answered for those ids only, as Kafka does
            if name is None or by_id:  # v10+: by topic id
                topic = cluster.topic_by_id(entry.topic_id)
                if topic is None:
                    if entry.topic_id in seen_ids:
                        continue
                    seen_ids.add(entry.topic_id)
                    unknown_ids.append(_error_topic(None, ErrorCode.UNKNOWN_TOPIC_ID) | {"topic_id": entry.topic_id})
                elif topic.name not in seen:
                    seen.add(topic.name)
                    if ctx.authorize(Op.DESCRIBE, Res.TOPIC, topic.name):
                        found.append(topic_body(topic))
                    else:  # topic ids are not secret: Kafka answers the id
                        denied.append(
                            _error_topic(None, ErrorCode.TOPIC_AUTHORIZATION_FAILED) | {"topic_id": entry.topic_id}
                        )
                continue
            if name in seen:
                continue
            seen.add(name)
            if not ctx.authorize(Op.DESCRIBE, Res.TOPIC, name):
                denied.append(_error_topic(name, ErrorCode.TOPIC_AUTHORIZATION_FAILED))
                continue
            injected = _injected(ctx, name) if ctx.faults else None
            if injected is not None:
                found.append(injected)
                continue
            topic = cluster.topics.get(name)
            if topic is not None:
                found.append(topic_body(topic))
            elif topic_name_error(name):
                missing.append(_error_topic(name, ErrorCode.INVALID_TOPIC_EXCEPTION))
            elif allow_create and cluster.config["auto.create.topics.enable"]:
                if not (ctx.authorize_cluster(Op.CREATE) or ctx.authorize(Op.CREATE, Res.TOPIC, name)):
                    no_create.append(_error_topic(name, ErrorCode.TOPIC_AUTHORIZATION_FAILED))
                    continue
                try:
                    cluster.create_topic(name)
                except ClusterError as exc:
                    missing.append(_error_topic(name, exc.code))
                else:
                    missing.append(_error_topic(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
            else:
                missing.append(_error_topic(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
        topics = unknown_ids + found + missing + no_create + denied
    if req.include_topic_authorized_operations:
        for t in topics:
            if t["error_code"] == ErrorCode.NONE:
                t["topic_authorized_operations"] = ctx.authorized_operations(Res.TOPIC, t["name"])
    return {
        "throttle_time_ms": 0,
        "brokers": broker_list(ctx),
        "cluster_id": cluster.cluster_id,
        "controller_id": cluster.controller_id,
        "topics": topics,
        "cluster_authorized_operations": (
            cluster_operations(ctx)
            if ctx.api_version <= 10 and req.include_cluster_authorized_operations
            else NO_OPERATIONS
        ),
    }
