"""The consumer group protocol's APIs (KIP-848): ConsumerGroupHeartbeat (68), ConsumerGroupDescribe (69).

Thin: the coordinator check (NOT_COORDINATOR), then `cluster.groups.consumer`
(kstub/cluster/consumer_group/) decides; this module only translates the
wire's shapes (topic ids, nullable fields) to and from it.

Authorization as KafkaApis checks it: a heartbeat needs READ on the group
(GROUP_AUTHORIZATION_FAILED) and DESCRIBE on every subscribed topic name
(TOPIC_AUTHORIZATION_FAILED), before the request is validated. Describe
needs DESCRIBE on each group (the refused groups are answered first), fills
authorized_operations from the ACLs, and answers a group whose (target)
assignment names a topic the principal may not describe
TOPIC_AUTHORIZATION_FAILED without its members. A regular expression
resolves only to the topics the member's principal may describe.
"""

from __future__ import annotations

from kstub.cluster.consumer_group import HeartbeatRequest
from kstub.cluster.consumer_group.membership import ConsumerGroupError
from kstub.cluster.consumer_group.model import Assignment
from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, Op, Res, handles
from .groups import NOT_REQUESTED, client_host

#: ConsumerGroupDescribe v1's member type of a member using the consumer protocol
CONSUMER_MEMBER = 1
#: ... and of a member using the classic protocol (a mixed group)
CLASSIC_MEMBER = 0


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
    if not ctx.authorize(Op.READ, Res.GROUP, req.group_id):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "member_epoch": 0}
    if req.subscribed_topic_names and not all(
        ctx.authorize(Op.DESCRIBE, Res.TOPIC, name) for name in set(req.subscribed_topic_names)
    ):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED, "member_epoch": 0}
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
        principal=ctx.principal,
        acl_host=ctx.client_host,
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
                "member_type": CLASSIC_MEMBER if m.classic is not None else CONSUMER_MEMBER,
            }
            for m in group.members.values()
        ],
        "authorized_operations": (
            ctx.authorized_operations(Res.GROUP, group_id) if include_operations else NOT_REQUESTED
        ),
    }


def _refused(group_id: str, error: ErrorCode, message: str | None = None) -> Body:
    return {"group_id": group_id, "error_code": error, "error_message": message, "group_state": "",
            "group_epoch": 0, "assignment_epoch": 0, "assignor_name": "", "members": [],
            "authorized_operations": NOT_REQUESTED}  # fmt: skip


def _hides_a_topic(ctx: Context, group: Body) -> bool:
    """Does the described group show a topic the principal may not describe?"""
    return any(
        not ctx.authorize(Op.DESCRIBE, Res.TOPIC, tp["topic_name"])
        for m in group["members"]
        for assignment in (m["assignment"], m["target_assignment"])
        for tp in assignment["topic_partitions"]
    )


@handles(ApiKey.CONSUMER_GROUP_DESCRIBE)
async def consumer_group_describe(ctx: Context, req: Container) -> Body:
    denied = [g for g in req.group_ids if not ctx.authorize(Op.DESCRIBE, Res.GROUP, g)]
    groups = [_refused(g, ErrorCode.GROUP_AUTHORIZATION_FAILED) for g in denied]
    for g in req.group_ids:
        if g in denied:
            continue
        described = _describe_one(ctx, g, req.include_authorized_operations)
        if _hides_a_topic(ctx, described):
            message = "The group has described topic(s) that the client is not authorized to describe."
            described = _refused(g, ErrorCode.TOPIC_AUTHORIZATION_FAILED, message)
        groups.append(described)
    return {"throttle_time_ms": 0, "groups": groups}


__all__ = ["consumer_group_describe", "consumer_group_heartbeat"]
