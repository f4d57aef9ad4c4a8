"""CreateTopics (19) and DeleteTopics (20).

CreateTopics validates each topic as Kafka does (name, existing topic,
partition count, replication factor against the live brokers, manual
assignments, config names and values) and answers per topic with an error
code and message; validate_only checks without creating. From v5 the response
carries the topic's partition count, replication factor and configs.
"""

from __future__ import annotations

from construct import Container

from kstub.cluster.config import TOPIC_CONFIGS
from kstub.cluster.model import ClusterError, Topic
from kstub.protocol import ErrorCode
from kstub.protocol.primitives import ZERO_UUID

from .base import Body, Context, handles

# Kafka's DescribeConfigs config sources
TOPIC_CONFIG = 1
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5


def config_entries(ctx: Context, explicit: dict[str, str]) -> list[Body]:
    entries = []
    overridden = ctx.cluster.config.explicit
    for name, setting in sorted(TOPIC_CONFIGS.items()):
        if name in explicit:
            value, source = explicit[name], TOPIC_CONFIG
        elif setting.broker_setting is not None and setting.broker_setting in overridden:
            value, source = str(ctx.cluster.config[setting.broker_setting]), STATIC_BROKER_CONFIG
        else:
            value, source = setting.default, DEFAULT_CONFIG
        entries.append(
            {"name": name, "value": value, "read_only": False, "config_source": source, "is_sensitive": False}
        )
    return entries


def _created(ctx: Context, name: str, partitions: int, rf: int, explicit: dict[str, str], topic: Topic | None) -> Body:
    return {
        "name": name,
        "topic_id": topic.topic_id if topic else ZERO_UUID,
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "num_partitions": partitions,
        "replication_factor": rf,
        "configs": config_entries(ctx, explicit),
    }


def _create_one(ctx: Context, t: Container, validate_only: bool, seen: set[str]) -> Body:
    cluster = ctx.cluster
    if t.name in seen:
        return {
            "name": t.name,
            "error_code": ErrorCode.INVALID_REQUEST,
            "error_message": "Duplicate topic name.",
            "configs": None,
        }
    seen.add(t.name)
    injected = ctx.injected_error(t.name) if ctx.faults else None
    if injected is not None:
        return {"name": t.name, "error_code": injected, "error_message": None, "configs": None}
    assignments = {a.partition_index: list(a.broker_ids) for a in t.assignments}
    configs = {c.name: c.value for c in t.configs}
    partitions, rf = t.num_partitions, t.replication_factor
    if not assignments:
        partitions = cluster.config["num.partitions"] if partitions == -1 else partitions
        rf = cluster.config["default.replication.factor"] if rf == -1 else rf
    try:
        explicit = cluster.check_new_topic(t.name, partitions, rf, configs, assignments)
        if validate_only:
            if assignments:
                partitions, rf = len(assignments), len(next(iter(assignments.values())))
            return _created(ctx, t.name, partitions, rf, explicit, None)
        topic = cluster.create_topic(t.name, partitions, rf, configs, assignments)
    except ClusterError as exc:
        return {"name": t.name, "error_code": exc.code, "error_message": exc.message, "configs": None}
    return _created(ctx, t.name, len(topic.partitions), topic.replication_factor, explicit, topic)


@handles(19)
async def create_topics(ctx: Context, req: Container) -> Body:
    seen: set[str] = set()
    return {"throttle_time_ms": 0, "topics": [_create_one(ctx, t, req.validate_only, seen) for t in req.topics]}


def _delete_one(ctx: Context, name: str | None, topic_id) -> Body:
    cluster = ctx.cluster
    if name is None:
        topic = cluster.topic_by_id(topic_id)
        if topic is None:
            return {
                "name": None,
                "topic_id": topic_id,
                "error_code": ErrorCode.UNKNOWN_TOPIC_ID,
                "error_message": "This server does not host this topic ID.",
            }
        name = topic.name
    injected = ctx.injected_error(name) if ctx.faults else None
    if injected is not None:
        return {"name": name, "topic_id": topic_id or ZERO_UUID, "error_code": injected, "error_message": None}
    if not cluster.config["delete.topic.enable"]:
        return {
            "name": name,
            "error_code": ErrorCode.TOPIC_DELETION_DISABLED,
            "error_message": "Topic deletion is disabled.",
        }
    try:
        topic = cluster.delete_topic(name)
    except ClusterError as exc:
        return {"name": name, "topic_id": topic_id or ZERO_UUID, "error_code": exc.code, "error_message": exc.message}
    return {"name": name, "topic_id": topic.topic_id, "error_code": ErrorCode.NONE, "error_message": None}


@handles(20)
async def delete_topics(ctx: Context, req: Container) -> Body:
    if ctx.api_version >= 6:
        results = [_delete_one(ctx, t.name, t.topic_id) for t in req.topics]
    else:
        results = [_delete_one(ctx, name, None) for name in req.topic_names]
    return {"throttle_time_ms": 0, "responses": results}
