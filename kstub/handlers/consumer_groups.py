"""The consumer group protocol's APIs (KIP-848): ConsumerGroupHeartbeat (68), ConsumerGroupDescribe (69).

Thin: the coordinator check (NOT_COORDINATOR), then `cluster.groups.consumer`
(kstub/cluster/consumer_group/) decides; this module only translates the
wire's shapes (topic ids, nullable fields) to and from it.
"""

from __future__ import annotations

from construct import Container

from kstub.cluster.consumer_group import HeartbeatRequest
from kstub.cluster.consumer_group.membership import ConsumerGroupError
from kstub.cluster.consumer_group.model import Assignment
from kstub.protocol import ApiKey, ErrorCode

from .base import Body, Context, handles
from .groups import GROUP_OPERATIONS, NOT_REQUESTED, client_host

#: ConsumerGroupDescribe v1's member type of a member using the consumer protocol
CONSUMER_MEMBER = 1


def _wire(assignment: Assignment) -> list[Body]:
    return [
        {"topic_id": topic_id, "partitions": sorted(parts)}
        for topic_id, parts in sorted(assignment.items(), key=lambda kv: str(kv[0]))
    ]


@handles(ApiKey.CONSUMER_GROUP_HEARTBEAT)
async def consumer_group_heartbeat(ctx: Context, req: Container) -> Body:
    posed = ctx.cluster.kafka_version
    if posed is not None and not posed.consumer_group_protocol:
        # Kafka 3.7-3.9 advertised it but, with default settings, refused it this way (no new coordinator)
        return {"throttle_time_ms": 0, "error_code": ErrorCode.UNSUPPORTED_VERSION, "member_epoch": 0}
    coordinator = ctx.cluster.groups
    owned = None
    if req.topic_partitions is not None:
        owned = [(t.topic_id, list(t.partitions)) for t in req.topic_partitions]
    heartbeat = HeartbeatRequest(
        group_id=req.group_id,
        member_id=req.member_id,
        member_epoch=req.member_epoch,
        instance_id=req.instance_id,
        rack_id=req.rack_id,
        rebalance_timeout_ms=req.rebalance_timeout_ms,
        subscribed_topic_names=None if req.subscribed_topic_names is None else list(req.subscribed_topic_names),
        subscribed_topic_regex=req.subscribed_topic_regex,
        server_assignor=req.server_assignor,
        topic_partitions=owned,
        client_id=ctx.client_id or "",
        client_host=client_host(ctx),
        api_version=ctx.api_version,
    )
    try:  # as Kafka: an invalid request is refused before the coordinator is looked at
        coordinator.consumer.validate(heartbeat)
    except ConsumerGroupError as exc:
        return {"throttle_time_ms": 0, "error_code": exc.code, "error_message": exc.message, "member_epoch": 0}
    if not coordinator.is_coordinator(req.group_id, ctx.node_id):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.NOT_COORDINATOR, "member_epoch": 0}
    result = coordinator.consumer_heartbeat(heartbeat)
    return {
        "throttle_time_ms": 0,
        "error_code": result.error,
        "error_message": result.message,
        "member_id": result.member_id,
        "member_epoch": result.member_epoch,
        "heartbeat_interval_ms": result.heartbeat_interval_ms,
        "assignment": None if result.assignment is None else {"topic_partitions": _wire(result.assignment)},
    }


def _described(ctx: Context, assignment: Assignment) -> Body:
    names = {t.topic_id: t.name for t in ctx.cluster.topics.values()}
    return {
        "topic_partitions": [
            {"topic_id": topic_id, "topic_name": names.get(topic_id, ""), "partitions": sorted(parts)}
            for topic_id, parts in sorted(assignment.items(), key=lambda kv: names.get(kv[0], str(kv[0])))
        ]
    }


def _describe_one(ctx: Context, group_id: str, include_operations: bool) -> Body:
    empty: Body = {"group_id": group_id, "group_state": "", "group_epoch": 0, "assignment_epoch": 0,
                   "assignor_name": "", "members": [], "authorized_operations": NOT_REQUESTED}  # fmt: skip
    coordinator = ctx.cluster.groups
    if not coordinator.is_coordinator(group_id, ctx.node_id):
        return {**empty, "error_code": ErrorCode.NOT_COORDINATOR}
    try:
        group = coordinator.consumer_group(group_id)
    except ConsumerGroupError as exc:
        return {**empty, "error_code": exc.code, "error_message": exc.message}
    return {
        "error_code": ErrorCode.NONE,
        "group_id": group_id,
        "group_state": group.state.value,
        "group_epoch": group.group_epoch,
        "assignment_epoch": group.assignment_epoch,
        "assignor_name": coordinator.consumer.preferred_assignor(group),
        "members": [
            {
                "member_id": m.member_id,
                "instance_id": m.instance_id,
                "rack_id": m.rack_id,
                "member_epoch": m.member_epoch,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "subscribed_topic_names": list(m.subscribed_topic_names),
                "subscribed_topic_regex": m.subscribed_topic_regex or "",  # Kafka: "" when none
                "assignment": _described(ctx, m.owned()),  # with what it has yet to revoke, as Kafka shows it
                "target_assignment": _described(ctx, group.target.get(m.member_id, {})),
                "member_type": CONSUMER_MEMBER,
            }
            for m in group.members.values()
        ],
        "authorized_operations": GROUP_OPERATIONS if include_operations else NOT_REQUESTED,
    }


@handles(ApiKey.CONSUMER_GROUP_DESCRIBE)
async def consumer_group_describe(ctx: Context, req: Container) -> Body:
    return {
        "throttle_time_ms": 0,
        "groups": [_describe_one(ctx, g, req.include_authorized_operations) for g in req.group_ids],
    }


__all__ = ["consumer_group_describe", "consumer_group_heartbeat"]
