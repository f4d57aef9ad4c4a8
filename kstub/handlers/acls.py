"""DescribeAcls (29), CreateAcls (30), DeleteAcls (31): the ACL bindings (kstub/cluster/acls.py).

As Kafka 4 answers them: without an authorizer, SECURITY_DISABLED; a
principal without DESCRIBE (DescribeAcls) or ALTER (Create/DeleteAcls) on the
cluster gets CLUSTER_AUTHORIZATION_FAILED for the whole request. A binding
Kafka refuses to create gets INVALID_REQUEST with Kafka's message; creating a
binding that exists succeeds and changes nothing. A request carrying a code
Kafka does not know (UNKNOWN resource type, pattern, operation or
permission) fails to parse in Kafka, which closes the connection: kstub
closes it too. Versions 1-3, as Kafka 4 serves them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from kstub.cluster.acls import (
    Acl,
    AclError,
    AclFilter,
    AclOperation,
    PatternType,
    Permission,
    ResourceType,
    from_code,
    validate_new,
)
from kstub.protocol import ApiKey, Container, ErrorCode
from kstub.protocol.errors import RemoteProtocolError

from .base import Body, Context, handles

_NO_AUTHORIZER = "No Authorizer is configured."

T = TypeVar("T")


def _filter(f: Container) -> AclFilter:
    codes = (f.resource_type_filter, f.pattern_type_filter, f.operation, f.permission_type)
    _refuse_unknown(*codes)
    return _of_codes(AclFilter, f.resource_name_filter, f.principal_filter, f.host_filter, *codes)


def _of_codes(kind: Callable[..., T], name: str | None, principal: str | None, host: str | None, *codes: int) -> T:
    """An Acl or AclFilter from the wire's codes (resource type, pattern type, operation, permission)."""
    resource_type, pattern_type, operation, permission = codes
    return kind(
        from_code(ResourceType, resource_type),
        name,
        from_code(PatternType, pattern_type),
        principal,
        host,
        from_code(AclOperation, operation),
        from_code(Permission, permission),
    )


def _refuse_unknown(*codes: int) -> None:
    """Kafka's request classes refuse the UNKNOWN code itself (0) as they parse: the connection is closed.

    A code Kafka does not know at all becomes UNKNOWN after that check, and is
    answered (no binding matches it; creating or deleting with it is INVALID_REQUEST).
    """
    if 0 in codes:
        raise RemoteProtocolError(f"ACL request with UNKNOWN elements: {codes}")


def _cluster_denied(ctx: Context, op: AclOperation) -> str | None:
    if ctx.authorize_cluster(op):
        return None
    return f"Request needs {op.name} permission."


@handles(ApiKey.DESCRIBE_ACLS)
async def describe_acls(ctx: Context, req: Container) -> Body:
    flt = _filter(req)
    answer: Body = {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "resources": []}
    denied = _cluster_denied(ctx, AclOperation.DESCRIBE)
    if denied:
        return answer | {"error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": denied}
    if not ctx.cluster.acls.enabled:
        return answer | {
            "error_code": ErrorCode.SECURITY_DISABLED,
            "error_message": "No Authorizer is configured on the broker",
        }
    grouped: dict[tuple[ResourceType, str, PatternType], list[Acl]] = {}
    for acl in ctx.cluster.acls.describe(flt):
        grouped.setdefault((acl.resource_type, acl.name, acl.pattern_type), []).append(acl)
    answer["resources"] = [
        {
            "resource_type": rtype,
            "resource_name": name,
            "pattern_type": pattern,
            "acls": [
                {"principal": a.principal, "host": a.host, "operation": a.operation, "permission_type": a.permission}
                for a in acls
            ],
        }
        for (rtype, name, pattern), acls in grouped.items()
    ]
    return answer


def _not_a_binding(acl: Acl) -> bool:
    return (
        acl.resource_type == ResourceType.ANY
        or acl.pattern_type in (PatternType.ANY, PatternType.MATCH)
        or acl.operation == AclOperation.ANY
        or acl.permission == Permission.ANY
    )


@handles(ApiKey.CREATE_ACLS)
async def create_acls(ctx: Context, req: Container) -> Body:
    creations = [(c, (c.resource_type, c.resource_pattern_type, c.operation, c.permission_type)) for c in req.creations]
    for _, codes in creations:
        _refuse_unknown(*codes)
    acls = [_of_codes(Acl, c.resource_name, c.principal, c.host, *codes) for c, codes in creations]
    denied = _cluster_denied(ctx, AclOperation.ALTER)
    if denied or not ctx.cluster.acls.enabled:
        error = ErrorCode.CLUSTER_AUTHORIZATION_FAILED if denied else ErrorCode.SECURITY_DISABLED
        result = {"error_code": error, "error_message": denied or _NO_AUTHORIZER}
        return {"throttle_time_ms": 0, "results": [result for _ in acls]}
    if any(_not_a_binding(acl) for acl in acls):
        # Kafka cannot even make bindings of these (ANY and MATCH are for filters): the whole request fails
        result = {"error_code": ErrorCode.UNKNOWN_SERVER_ERROR, "error_message": None}
        return {"throttle_time_ms": 0, "results": [result for _ in acls]}
    results: list[Body] = []
    valid: list[Acl] = []
    for acl in acls:
        try:
            validate_new(acl)
        except AclError as exc:
            results.append({"error_code": ErrorCode.INVALID_REQUEST, "error_message": str(exc)})
            continue
        valid.append(acl)
        results.append({"error_code": ErrorCode.NONE, "error_message": ""})  # Kafka's answer: empty, not null
    if valid:
        ctx.cluster.acls.add(valid)
        ctx.cluster.store.save_metadata(ctx.cluster)
    return {"throttle_time_ms": 0, "results": results}


def _unknown_filter(flt: AclFilter) -> str | None:
    """Kafka's controller refuses a deletion filter with a code it does not know."""
    if flt.resource_type == ResourceType.UNKNOWN or flt.pattern_type == PatternType.UNKNOWN:
        return "Unknown patternFilter."
    if flt.operation == AclOperation.UNKNOWN or flt.permission == Permission.UNKNOWN:
        return "Unknown entryFilter."
    return None


@handles(ApiKey.DELETE_ACLS)
async def delete_acls(ctx: Context, req: Container) -> Body:
    filters = [_filter(f) for f in req.filters]
    denied = _cluster_denied(ctx, AclOperation.ALTER)
    if denied or not ctx.cluster.acls.enabled:
        error = ErrorCode.CLUSTER_AUTHORIZATION_FAILED if denied else ErrorCode.SECURITY_DISABLED
        result = {"error_code": error, "error_message": denied or _NO_AUTHORIZER, "matching_acls": []}
        return {"throttle_time_ms": 0, "filter_results": [result for _ in filters]}
    results: list[Body] = []
    changed = False
    for flt in filters:
        unknown = _unknown_filter(flt)
        if unknown:
            results.append({"error_code": ErrorCode.INVALID_REQUEST, "error_message": unknown, "matching_acls": []})
            continue
        gone = ctx.cluster.acls.delete(flt)
        changed = changed or bool(gone)
        results.append(
            {
                "error_code": ErrorCode.NONE,
                "error_message": None,
                "matching_acls": [
                    {
                        "error_code": ErrorCode.NONE,
                        "error_message": None,
                        "resource_type": a.resource_type,
                        "resource_name": a.name,
                        "pattern_type": a.pattern_type,
                        "principal": a.principal,
                        "host": a.host,
                        "operation": a.operation,
                        "permission_type": a.permission,
                    }
                    for a in gone
                ],
            }
        )
    if changed:
        ctx.cluster.store.save_metadata(ctx.cluster)
    return {"throttle_time_ms": 0, "filter_results": results}
