"""The group membership APIs: JoinGroup (11), SyncGroup (14), Heartbeat (12),
LeaveGroup (13), DescribeGroups (15), ListGroups (16) and DeleteGroups (42).

Thin: each checks what Kafka checks before the coordinator (a valid group id,
and that this broker coordinates the group: NOT_COORDINATOR otherwise), hands
the request to `cluster.groups` (kstub/cluster/coordinator.py) and shapes its
answer for the request's version. JoinGroup and SyncGroup may wait there for
the rest of the group (long-polls bounded by the rebalance timeout).
"""

from __future__ import annotations

from kstub.cluster.groups import GroupState, JoinResult, SyncResult
from kstub.cluster.membership import JoinRequest, SyncRequest
from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, Op, Res, handles

#: DescribeGroups authorized operations without an authorizer: Kafka 4's group operations
#: READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS and ALTER_CONFIGS (groups have configs since KIP-848)
GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11)
NOT_REQUESTED = -(2**31)


def check_group(ctx: Context, group_id: str | None, *, allow_empty: bool = False) -> ErrorCode | None:
    """Kafka's validateGroupStatus: a valid group id, coordinated by this broker.

    The empty group id is allowed where Kafka allows it for compatibility
    (offsets, DescribeGroups, DeleteGroups).
    """
    if group_id is None or (not group_id and not allow_empty):
        return ErrorCode.INVALID_GROUP_ID
    if not ctx.cluster.groups.is_coordinator(group_id, ctx.node_id):
        return ErrorCode.NOT_COORDINATOR
    return None


def client_host(ctx: Context) -> str:
    """How Kafka shows a client's address (Java's InetAddress.toString)."""
    return "/" + ctx.peer.rsplit(":", 1)[0]


def _join_body(ctx: Context, r: JoinResult) -> Body:
    return {
        "throttle_time_ms": 0,
        "error_code": r.error,
        "generation_id": r.generation_id,
        "protocol_type": r.protocol_type,
        # nullable only from v7
        "protocol_name": r.protocol_name if ctx.api_version >= 7 else (r.protocol_name or ""),
        "leader": r.leader,
        "skip_assignment": r.skip_assignment,
        "member_id": r.member_id,
        "members": [
            {"member_id": member_id, "group_instance_id": instance_id, "metadata": metadata}
            for member_id, instance_id, metadata in r.members
        ],
    }


@handles(ApiKey.JOIN_GROUP)
async def join_group(ctx: Context, req: Container) -> Body:
    if not ctx.authorize(Op.READ, Res.GROUP, req.group_id):
        return _join_body(ctx, JoinResult(ErrorCode.GROUP_AUTHORIZATION_FAILED))
    error = check_group(ctx, req.group_id)
    if error is not None:
        return _join_body(ctx, JoinResult(error, req.member_id))
    v = ctx.api_version
    result = await ctx.cluster.groups.join(
        JoinRequest(
            group_id=req.group_id,
            member_id=req.member_id,
            instance_id=req.group_instance_id,
            client_id=ctx.client_id or "",
            client_host=client_host(ctx),
            session_timeout_ms=req.session_timeout_ms,
            rebalance_timeout_ms=req.rebalance_timeout_ms if v >= 1 else req.session_timeout_ms,
            protocol_type=req.protocol_type,
            protocols=[(p.name, p.metadata) for p in req.protocols],
            require_known_member_id=v >= 4,
            supports_skip_assignment=v >= 9,
        )
    )
    return _join_body(ctx, result)


def _sync_body(r: SyncResult) -> Body:
    return {
        "throttle_time_ms": 0,
        "error_code": r.error,
        "protocol_type": r.protocol_type,
        "protocol_name": r.protocol_name,
        "assignment": r.assignment,
    }


@handles(ApiKey.SYNC_GROUP)
async def sync_group(ctx: Context, req: Container) -> Body:
    if ctx.api_version >= 5 and (req.protocol_type is None or req.protocol_name is None):
        # v5 made both mandatory: Kafka refuses a request without them before anything else
        return _sync_body(SyncResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
    if not ctx.authorize(Op.READ, Res.GROUP, req.group_id):
        return _sync_body(SyncResult(ErrorCode.GROUP_AUTHORIZATION_FAILED))
    error = check_group(ctx, req.group_id)
    if error is not None:
        return _sync_body(SyncResult(error))
    result = await ctx.cluster.groups.sync(
        SyncRequest(
            group_id=req.group_id,
            generation_id=req.generation_id,
            member_id=req.member_id,
            instance_id=req.group_instance_id,
            protocol_type=req.protocol_type,
            protocol_name=req.protocol_name,
            assignments={a.member_id: a.assignment for a in req.assignments},
        )
    )
    return _sync_body(result)


@handles(ApiKey.HEARTBEAT)
async def heartbeat(ctx: Context, req: Container) -> Body:
    if not ctx.authorize(Op.READ, Res.GROUP, req.group_id):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED}
    error = check_group(ctx, req.group_id)
    if error is None:
        error = ctx.cluster.groups.heartbeat(req.group_id, req.generation_id, req.member_id, req.group_instance_id)
    return {"throttle_time_ms": 0, "error_code": error}


@handles(ApiKey.LEAVE_GROUP)
async def leave_group(ctx: Context, req: Container) -> Body:
    v = ctx.api_version
    error = check_group(ctx, req.group_id)
    if not ctx.authorize(Op.READ, Res.GROUP, req.group_id):
        error = ErrorCode.GROUP_AUTHORIZATION_FAILED
    if error is not None:
        return {"throttle_time_ms": 0, "error_code": error, "members": []}
    leaving = [(m.member_id, m.group_instance_id) for m in req.members] if v >= 3 else [(req.member_id, None)]
    error, results = ctx.cluster.groups.leave(req.group_id, leaving)
    if v < 3 and error == ErrorCode.NONE:
        # one member, one error: Kafka reports it at the top level
        error = next((e for _, _, e in results if e != ErrorCode.NONE), ErrorCode.NONE)
    return {
        "throttle_time_ms": 0,
        "error_code": error,
        "members": [{"member_id": m, "group_instance_id": i, "error_code": e} for m, i, e in results],
    }


def _describe_one(ctx: Context, group_id: str, include_operations: bool) -> Body:
    operations = ctx.authorized_operations(Res.GROUP, group_id) if include_operations else NOT_REQUESTED
    error = check_group(ctx, group_id, allow_empty=True)
    if error is not None:
        return {
            "error_code": error,
            "group_id": group_id,
            "group_state": "",
            "protocol_type": "",
            "protocol_data": "",
            "members": [],
            "authorized_operations": operations,
        }
    summary = ctx.cluster.groups.describe(group_id)
    if summary.state is GroupState.DEAD and ctx.api_version >= 6:
        # KIP-1043: from v6 a group that does not exist is an error, not an empty Dead group
        return {
            "error_code": ErrorCode.GROUP_ID_NOT_FOUND,
            "error_message": (
                f"Group {group_id} is not a classic group."
                if group_id in ctx.cluster.groups.consumer.groups
                else f"Group {group_id} not found."
            ),
            "group_id": group_id,
            "group_state": GroupState.DEAD.value,
            "protocol_type": "",
            "protocol_data": "",
            "members": [],
            "authorized_operations": NOT_REQUESTED,  # none, even when asked, as Kafka answers
        }
    stable = summary.state is GroupState.STABLE
    return {
        "error_code": ErrorCode.NONE,
        "group_id": group_id,
        "group_state": summary.state.value,
        "protocol_type": summary.protocol_type,
        "protocol_data": summary.protocol_data,
        "members": [
            {
                "member_id": m.member_id,
                "group_instance_id": m.instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                # Kafka shows the metadata of a stable group's members only, their assignments always
                # (the last generation's, until a rebalance from CompletingRebalance clears them)
                "member_metadata": m.metadata(summary.protocol_data) if stable else b"",
                "member_assignment": m.assignment,
            }
            for m in summary.members
        ],
        "authorized_operations": operations,
    }


@handles(ApiKey.DESCRIBE_GROUPS)
async def describe_groups(ctx: Context, req: Container) -> Body:
    # groups the principal may not describe are answered first, as Kafka does
    denied = [g for g in req.groups if not ctx.authorize(Op.DESCRIBE, Res.GROUP, g)]
    return {
        "throttle_time_ms": 0,
        "groups": [_denied_group(g) for g in denied]
        + [_describe_one(ctx, g, req.include_authorized_operations) for g in req.groups if g not in denied],
    }


def _denied_group(group_id: str) -> Body:
    return {
        "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED,
        "group_id": group_id,
        "group_state": "",
        "protocol_type": "",
        "protocol_data": "",
        "members": [],
        "authorized_operations": NOT_REQUESTED,
    }


@handles(ApiKey.LIST_GROUPS)
async def list_groups(ctx: Context, req: Container) -> Body:
    states = None
    if req.states_filter:
        # unknown names match nothing, as in Kafka
        states = [s for s in (GroupState.parse(name) for name in req.states_filter) if s is not None]
    coordinator = ctx.cluster.groups
    consumer = coordinator.consumer.groups
    listed = [
        {"group_id": g.group_id, "protocol_type": g.protocol_type or "", "group_state": g.state.value,
         "group_type": "classic"}
        for g in coordinator.list_groups(ctx.node_id, states)
        if g.group_id not in consumer  # the offsets of a consumer group (kstub/cluster/coordinator.py)
    ]  # fmt: skip
    wanted_states = None if not req.states_filter else {name.lower() for name in req.states_filter}
    listed += [
        {"group_id": g.group_id, "protocol_type": "consumer", "group_state": g.state.value, "group_type": "consumer"}
        for g in consumer.values()
        if coordinator.is_coordinator(g.group_id, ctx.node_id)
        and (wanted_states is None or g.state.value.lower() in wanted_states)
    ]
    if not ctx.authorize_cluster(Op.DESCRIBE):  # without DESCRIBE on the cluster: the groups it may describe
        listed = [g for g in listed if ctx.authorize(Op.DESCRIBE, Res.GROUP, g["group_id"])]
    if req.types_filter:  # v5 (KIP-848): classic, consumer; case-insensitive
        types = {name.lower() for name in req.types_filter}
        listed = [g for g in listed if g["group_type"] in types]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "groups": listed}


@handles(ApiKey.DELETE_GROUPS)
async def delete_groups(ctx: Context, req: Container) -> Body:
    results, denied = [], []
    for group_id in dict.fromkeys(req.groups_names):  # a group named twice is answered once, as in Kafka
        if not ctx.authorize(Op.DELETE, Res.GROUP, group_id):  # answered after the others, as Kafka does
            denied.append({"group_id": group_id, "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED})
            continue
        error = check_group(ctx, group_id, allow_empty=True)
        if error is None and group_id in ctx.cluster.groups.consumer.groups:
            error = ctx.cluster.groups.consumer.delete(group_id)
            if error == ErrorCode.NONE and group_id in ctx.cluster.groups.groups:
                ctx.cluster.groups.delete_group(group_id)  # its committed offsets
        elif error is None:
            error = ctx.cluster.groups.delete_group(group_id)
        results.append({"group_id": group_id, "error_code": error})
    return {"throttle_time_ms": 0, "results": results + denied}
