"""DescribeClientQuotas (48) and AlterClientQuotas (49), validated as Kafka 4.4 validates them.

Quotas live in the cluster state (kstub/cluster/quotas.py); the byte-rate
ones throttle Produce and Fetch there. AlterClientQuotas answers each entry
on its own: an empty entity, an unknown entity type, an empty name, an ip
combined with a user or client id, an ip that is not an address, a key the
entity kind does not take, a value that is not above 0 (or fractional, or too
large, for the whole-number keys) or a key given twice is INVALID_REQUEST.
DescribeClientQuotas filters by components (exact name, the default entity,
or any named entity; strict: the entity has exactly those types); an unknown
entity type is UNSUPPORTED_VERSION, an unknown match type, a bad match string
or a type given twice INVALID_REQUEST, for the whole request.

Authorization as Kafka's: DescribeClientQuotas needs DESCRIBE_CONFIGS on the
cluster, AlterClientQuotas ALTER_CONFIGS on it (CLUSTER_AUTHORIZATION_FAILED:
the whole request, each entry echoed as sent).
"""

from __future__ import annotations

import ipaddress

from kstub.cluster.quotas import CLIENT_ID, CLIENT_KEYS, IP, IP_KEYS, USER, Entity
from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, Op, handles

EXACT, DEFAULT, SPECIFIED = 0, 1, 2
_LONG_MAX = 2**63 - 1


def _java_hash_order(kind: str) -> int:
    """Where Java's HashMap (16 buckets) puts `kind`: Kafka echoes entities from such a map."""
    h = 0
    for ch in kind:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return (h ^ (h >> 16)) & 15


def _echo(entity: Entity) -> list[Body]:
    return [{"entity_type": k, "entity_name": n} for k, n in sorted(entity, key=lambda p: _java_hash_order(p[0]))]


class _Invalid(Exception):
    def __init__(self, message: str, code: ErrorCode = ErrorCode.INVALID_REQUEST) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _entity(parts: list[Container]) -> Entity:
    if not parts:
        raise _Invalid("Invalid empty client quota entity")
    found: dict[str, str | None] = {}
    for part in parts:
        kind, name = part.entity_type, part.entity_name
        if kind not in (USER, CLIENT_ID, IP):
            raise _Invalid(f"Unhandled client quota entity type: {kind}")
        if name == "":
            raise _Invalid(f"Empty {kind} not supported")
        if kind == IP and name is not None:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                raise _Invalid(f"{name} is not a valid IP or resolvable host.") from None
        found[kind] = name  # a type named again: the last one counts, as in Kafka's map
    if IP in found and len(found) > 1:
        raise _Invalid("Invalid quota entity combination, IP entity should not be combined with User or ClientId")
    return frozenset(found.items())


def _ops(entity: Entity, ops: list[Container]) -> list[tuple[str, float, bool]]:
    keys = IP_KEYS if any(kind == IP for kind, _ in entity) else CLIENT_KEYS
    seen: set[str] = set()
    out = []
    for op in ops:
        if op.key in seen:
            raise _Invalid(f"Ignoring duplicate key {op.key}")
        seen.add(op.key)
        if op.key not in keys:
            raise _Invalid(f"Invalid configuration key {op.key}")
        if not op.remove:
            value = op.value
            if keys[op.key]:
                if value != int(value):
                    raise _Invalid(f"{op.key} cannot be a fractional value.")
                if value > _LONG_MAX:
                    raise _Invalid(f"Proposed value for {op.key} is too large for a LONG.")
            if value <= 0:
                raise _Invalid(f"Quota {op.key} must be greater than 0")
        out.append((op.key, op.value, op.remove))
    return out


@handles(ApiKey.ALTER_CLIENT_QUOTAS)
async def alter_client_quotas(ctx: Context, req: Container) -> Body:
    answers = []
    store = ctx.cluster.client_quotas
    denied = not ctx.authorize_cluster(Op.ALTER_CONFIGS)
    for entry in req.entries:
        echo = [{"entity_type": e.entity_type, "entity_name": e.entity_name} for e in entry.entity]
        if denied:
            error = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
            answers.append({"error_code": error, "error_message": "Cluster authorization failed.", "entity": echo})
            continue
        try:
            entity = _entity(entry.entity)
            ops = _ops(entity, entry.ops)
        except _Invalid as exc:
            answers.append({"error_code": exc.code, "error_message": exc.message, "entity": echo})
            continue
        if not req.validate_only:
            store.alter(entity, ops)
        answers.append({"error_code": ErrorCode.NONE, "error_message": None, "entity": _echo(entity)})
    return {"throttle_time_ms": 0, "entries": answers}


def _filter(components: list[Container]) -> list[tuple[str, int, str | None]]:
    seen: set[str] = set()
    out = []
    for c in components:
        if c.entity_type not in (USER, CLIENT_ID, IP):
            raise _Invalid(f"Unsupported entity type {c.entity_type}", ErrorCode.UNSUPPORTED_VERSION)
        if c.entity_type in seen:
            raise _Invalid(f"Entity type {c.entity_type} cannot appear more than once in the filter.")
        seen.add(c.entity_type)
        if c.match_type == EXACT and c.match is None:
            raise _Invalid("Request specified MATCH_TYPE_EXACT, but set match string to null.")
        if c.match_type == DEFAULT and c.match is not None:
            raise _Invalid("Request specified MATCH_TYPE_DEFAULT, but also specified a match string.")
        if c.match_type not in (EXACT, DEFAULT, SPECIFIED):
            raise _Invalid(f"Unknown match type {c.match_type}")
        out.append((c.entity_type, c.match_type, c.match))
    return out


def _matches(entity: Entity, components: list[tuple[str, int, str | None]], strict: bool) -> bool:
    names = dict(entity)
    if strict and set(names) != {kind for kind, _, _ in components}:
        return False
    for kind, match_type, match in components:
        if kind not in names:
            return False
        name = names[kind]
        if match_type == EXACT and name != match:
            return False
        if match_type == DEFAULT and name is not None:
            return False
        if match_type == SPECIFIED and name is None:
            return False
    return True


@handles(ApiKey.DESCRIBE_CLIENT_QUOTAS)
async def describe_client_quotas(ctx: Context, req: Container) -> Body:
    if not ctx.authorize_cluster(Op.DESCRIBE_CONFIGS):
        error = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        return {"throttle_time_ms": 0, "error_code": error, "error_message": "Cluster authorization failed.",
                "entries": None}  # fmt: skip
    try:
        components = _filter(req.components)
    except _Invalid as exc:
        return {"throttle_time_ms": 0, "error_code": exc.code, "error_message": exc.message, "entries": None}
    entries = [
        {
            "entity": _echo(entity),
            "values": [{"key": k, "value": v} for k, v in values.items()],
        }
        for entity, values in ctx.cluster.client_quotas.entities.items()
        if _matches(entity, components, req.strict)
    ]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "entries": entries}
