"""CreateTopics (19), DeleteTopics (20), CreatePartitions (37) and DeleteRecords (21).

A CreateTopics or CreatePartitions request asking for more than 10,000
partitions in all is refused whole with POLICY_VIOLATION, before any topic is
validated or any assignment built, as Kafka's controller does.

CreateTopics validates each topic as Kafka does (name, existing topic,
partition count, replication factor against the live brokers, manual
assignments, config names and values) and answers per topic with an error
code and message; validate_only checks without creating. From v5 the response
carries the topic's partition count, replication factor and configs.

CreatePartitions grows a topic, never shrinks it (INVALID_PARTITIONS, with
Kafka's KRaft messages); new partitions get replicas as a new topic's would,
or the manual assignment given, checked as Kafka's controller checks it.
DeleteRecords moves the log start offset of each partition (on every replica's
log) to the given offset, -1 meaning the high watermark, and answers the new
low watermark; beyond the high watermark is OFFSET_OUT_OF_RANGE, and a topic
whose cleanup.policy lacks "delete" is POLICY_VIOLATION, as in Kafka.
"""

from __future__ import annotations

import uuid
from collections import Counter

from kstub.cluster.model import ClusterError, Partition, Topic
from kstub.protocol import ApiKey, Container, ErrorCode
from kstub.protocol.primitives import ZERO_UUID

from .base import Body, Context, Op, Res, handles, unique_partitions
from .configs import topic_config_entries

#: Kafka's controller refuses a CreateTopics or CreatePartitions request that would create more
#: partitions than this in all (a fixed limit of Kafka's, not a setting), whole and before any work.
MAX_PARTITIONS_PER_REQUEST = 10_000
TOO_MANY_PARTITIONS = "Excessively large number of partitions per request."
TOO_MANY_NEW_PARTITIONS = "Excessively large number of additional partitions per request."


def config_entries(ctx: Context, explicit: dict[str, str]) -> list[Body]:
    """CreateTopics v5+: the new topic's configs, with their sources, as DescribeConfigs reports them."""
    return [
        {"name": d.name, "value": d.value, "read_only": d.read_only, "config_source": d.source, "is_sensitive": False}
        for d in topic_config_entries(ctx, explicit)
    ]


def _created(ctx: Context, name: str, partitions: int, rf: int, explicit: dict[str, str], topic: Topic | None) -> Body:
    if not ctx.authorize(Op.DESCRIBE_CONFIGS, Res.TOPIC, name):  # created, but its shape and configs are not shown
        return {
            "name": name,
            "topic_id": topic.topic_id if topic else ZERO_UUID,
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "num_partitions": -1,
            "replication_factor": -1,
            "configs": [],
            "topic_config_error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED,
        }
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
    seen.add(t.name)
    injected = ctx.injected_error(t.name) if ctx.faults else None
    if injected is not None:
        return {"name": t.name, "error_code": injected, "error_message": None, "configs": []}
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
            # Kafka's controller draws the topic id before it sees validate_only, and answers it
            return _created(ctx, t.name, partitions, rf, explicit, None) | {"topic_id": uuid.uuid4()}
        topic = cluster.create_topic(t.name, partitions, rf, configs, assignments)
    except ClusterError as exc:
        return {"name": t.name, "error_code": exc.code, "error_message": exc.message, "configs": []}
    return _created(ctx, t.name, len(topic.partitions), topic.replication_factor, explicit, topic)


def _requested_partitions(ctx: Context, topics: list[Container]) -> int:
    """The partitions a CreateTopics request asks for in all, counted as Kafka's controller counts them."""
    total = 0
    for t in topics:
        if t.assignments:
            total += len(t.assignments)
        elif t.num_partitions == -1:
            total += ctx.cluster.config["num.partitions"]
        elif t.num_partitions > 0:
            total += t.num_partitions
    return total


@handles(ApiKey.CREATE_TOPICS)
async def create_topics(ctx: Context, req: Container) -> Body:
    counts = Counter(t.name for t in req.topics)
    if _requested_partitions(ctx, [t for t in req.topics if counts[t.name] == 1]) > MAX_PARTITIONS_PER_REQUEST:
        # Refused whole before anything is validated or assigned, as Kafka's controller does.
        answered: set[str] = set()
        topics = []
        for t in req.topics:
            if t.name in answered:
                continue
            answered.add(t.name)
            duplicate = counts[t.name] > 1
            topics.append(
                {
                    "name": t.name,
                    "error_code": ErrorCode.INVALID_REQUEST if duplicate else ErrorCode.POLICY_VIOLATION,
                    "error_message": "Duplicate topic name." if duplicate else TOO_MANY_PARTITIONS,
                    "configs": [],
                }
            )
        return {"throttle_time_ms": 0, "topics": topics}
    # a name given more than once gets one INVALID_REQUEST answer, and none of its entries is created
    duplicates = [
        {"name": name, "error_code": ErrorCode.INVALID_REQUEST, "error_message": "Duplicate topic name.", "configs": []}
        for name, n in counts.items()
        if n > 1
    ]
    seen: set[str] = set()
    may_create = ctx.authorize_cluster(Op.CREATE)  # else CREATE on each topic; refusals answered last
    unique = [t for t in req.topics if counts[t.name] == 1]
    allowed = [t for t in unique if may_create or ctx.authorize(Op.CREATE, Res.TOPIC, t.name)]
    denied = [
        {"name": t.name, "error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED, "error_message": "Authorization failed."}
        | {"configs": []}
        for t in unique
        if t not in allowed
    ]
    created = [_create_one(ctx, t, req.validate_only, seen) for t in allowed]
    return {"throttle_time_ms": 0, "topics": created + duplicates + denied}


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
    if not (ctx.authorize_cluster(Op.DELETE) or ctx.authorize(Op.DELETE, Res.TOPIC, name)):
        # the name is shown only to who may describe the topic, or asked it by name
        shown = name if topic_id in (None, ZERO_UUID) or ctx.authorize(Op.DESCRIBE, Res.TOPIC, name) else None
        error = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        return {"name": shown, "topic_id": topic_id or ZERO_UUID, "error_code": error, "error_message": None}
    try:
        topic = cluster.delete_topic(name)
    except ClusterError as exc:
        return {"name": name, "topic_id": topic_id or ZERO_UUID, "error_code": exc.code, "error_message": exc.message}
    return {"name": name, "topic_id": topic.topic_id, "error_code": ErrorCode.NONE, "error_message": None}


@handles(ApiKey.DELETE_TOPICS)
async def delete_topics(ctx: Context, req: Container) -> Body:
    if ctx.api_version >= 6:
        wanted = [(t.name, t.topic_id) for t in req.topics]
    else:
        wanted = [(name, None) for name in req.topic_names]
    # a name given more than once gets one INVALID_REQUEST answer and is not deleted, as in Kafka
    names = Counter(name for name, _ in wanted if name is not None)
    results = [_delete_one(ctx, name, topic_id) for name, topic_id in wanted if name is None or names[name] == 1]
    results += [
        {
            "name": name,
            "topic_id": ZERO_UUID,
            "error_code": ErrorCode.INVALID_REQUEST,
            "error_message": "Duplicate topic name.",
        }
        for name, n in names.items()
        if n > 1
    ]
    return {"throttle_time_ms": 0, "responses": results}


# --- CreatePartitions ------------------------------------------------------------------


def _check_assignments(ctx: Context, topic: Topic, count: int, assignments: list[list[int]]) -> None:
    """Kafka's ReplicationControlManager checks of a manual assignment for new partitions."""
    additional = count - len(topic.partitions)
    if len(assignments) != additional:
        raise ClusterError(
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            f"Attempted to add {additional} additional partition(s), but only {len(assignments)} "
            "assignment(s) were specified.",
        )
    rf = topic.replication_factor
    for i, replicas in enumerate(assignments):
        if not replicas:
            raise ClusterError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT, "The manual partition assignment includes an empty replica list."
            )
        previous = None
        for broker_id in sorted(replicas):
            if broker_id not in ctx.cluster.brokers:
                raise ClusterError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"The manual partition assignment includes broker {broker_id}, but no such broker is registered.",
                )
            if broker_id == previous:
                raise ClusterError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"The manual partition assignment includes the broker {broker_id} more than once.",
                )
            previous = broker_id
        if len(replicas) != rf:
            raise ClusterError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"The manual partition assignment includes a partition with {len(replicas)} replica(s), but this "
                f"is not consistent with previous partitions, which have {rf} replica(s).",
            )
        if not any(ctx.cluster.brokers[b].alive for b in replicas):
            raise ClusterError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                "All brokers specified in the manual partition assignment for partition "
                f"{len(topic.partitions) + i} are fenced or in controlled shutdown.",
            )


def _grow(ctx: Context, t: Container, validate_only: bool) -> Body:
    cluster = ctx.cluster
    if not ctx.authorize(Op.ALTER, Res.TOPIC, t.name):
        return {"name": t.name, "error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED, "error_message": None}
    try:
        topic = cluster.topics.get(t.name)
        if topic is None:
            raise ClusterError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None)  # type: ignore[arg-type]
        existing = len(topic.partitions)
        if t.count == existing:
            raise ClusterError(ErrorCode.INVALID_PARTITIONS, f"Topic already has {existing} partition(s).")
        if t.count < existing:
            raise ClusterError(
                ErrorCode.INVALID_PARTITIONS,
                f"The topic {t.name} currently has {existing} partition(s); {t.count} would not be an increase.",
            )
        assignments = None
        if t.assignments is not None:
            assignments = [list(a.broker_ids) for a in t.assignments]
            _check_assignments(ctx, topic, t.count, assignments)
        if not validate_only:
            cluster.add_partitions(t.name, t.count, assignments=assignments)
    except ClusterError as exc:
        return {"name": t.name, "error_code": exc.code, "error_message": exc.message}
    return {"name": t.name, "error_code": ErrorCode.NONE, "error_message": None}


def _additional_partitions(ctx: Context, topics: list[Container]) -> int:
    """The partitions a CreatePartitions request adds in all, counted as Kafka's controller counts them."""
    total = 0
    for t in topics:
        topic = ctx.cluster.topics.get(t.name)
        if topic is not None and t.count > len(topic.partitions):
            total += t.count - len(topic.partitions)
    return total


@handles(ApiKey.CREATE_PARTITIONS)
async def create_partitions(ctx: Context, req: Container) -> Body:
    counts = Counter(t.name for t in req.topics)
    results = [
        {"name": name, "error_code": ErrorCode.INVALID_REQUEST, "error_message": "Duplicate topic name."}
        for name, n in counts.items()
        if n > 1
    ]
    unique = [t for t in req.topics if counts[t.name] == 1]
    if _additional_partitions(ctx, unique) > MAX_PARTITIONS_PER_REQUEST:
        results += [
            {"name": t.name, "error_code": ErrorCode.POLICY_VIOLATION, "error_message": TOO_MANY_NEW_PARTITIONS}
            for t in unique
        ]
        return {"throttle_time_ms": 0, "results": results}
    results += [_grow(ctx, t, req.validate_only) for t in unique]
    return {"throttle_time_ms": 0, "results": results}


# --- DeleteRecords ---------------------------------------------------------------------


def _delete_records(ctx: Context, topic: str, p: Container) -> Body:
    def answer(code: ErrorCode, low: int = -1) -> Body:
        return {"partition_index": p.partition_index, "low_watermark": low, "error_code": code}

    if not ctx.authorize(Op.DELETE, Res.TOPIC, topic):
        return answer(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    try:
        partition: Partition = ctx.cluster.leader_partition(topic, p.partition_index, ctx.node_id)
    except ClusterError as exc:
        return answer(exc.code)
    if "delete" not in partition.settings.get_list("cleanup.policy"):
        return answer(ErrorCode.POLICY_VIOLATION)
    offset = partition.high_watermark if p.offset == -1 else p.offset
    if offset < 0 or offset > partition.high_watermark:
        return answer(ErrorCode.OFFSET_OUT_OF_RANGE)
    for lg in partition.logs.values():
        lg.advance_start(offset)
    return answer(ErrorCode.NONE, min(lg.log_start_offset for lg in partition.logs.values()))


@handles(ApiKey.DELETE_RECORDS)
async def delete_records(ctx: Context, req: Container) -> Body:
    return {
        "throttle_time_ms": 0,
        "topics": [
            {"name": name, "partitions": [_delete_records(ctx, name, p) for p in parts]}
            for name, parts in unique_partitions(req.topics, "name", "partitions", "partition_index")
        ],
    }
