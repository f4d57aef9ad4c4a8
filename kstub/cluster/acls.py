"""ACLs and the authorizer, with the semantics of Kafka's StandardAuthorizer.

Enabled by ``authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer``
(the class name users paste from Kafka's docs). Then every request is checked
against the ACL bindings: an action (operation on a resource of one type and
name, by a principal from a host) is

- allowed if the principal is one of ``super.users`` (``User:a;User:b``);
- denied if a DENY binding matches it (DENY wins over ALLOW);
- allowed if an ALLOW binding matches it; an ALLOW for READ, WRITE, DELETE or
  ALTER also allows DESCRIBE, and an ALLOW for ALTER_CONFIGS allows
  DESCRIBE_CONFIGS (a DENY implies nothing); ALL matches every operation;
- otherwise denied when some binding names the resource (for anyone), and
  ``allow.everyone.if.no.acl.found`` when none does (default false).

A binding matches a resource by its pattern: LITERAL (the same name, or ``*``
for every name) or PREFIXED (names starting with it); a principal by equality
or ``User:*``; a host by equality or ``*``.

Without ``authorizer.class.name`` nothing is checked (as in Kafka) and the ACL
APIs answer SECURITY_DISABLED. The bindings are cluster metadata: one owner
(`ClusterState.acls`), kept in the data directory with the rest of the
metadata when there is one (kstub/cluster/disk_store.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

#: the class names `authorizer.class.name` accepts (Kafka 4's KRaft authorizer)
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
AUTHORIZER_NAMES = (STANDARD_AUTHORIZER, "StandardAuthorizer")
#: the one name of the CLUSTER resource
CLUSTER_NAME = "kafka-cluster"
WILDCARD = "*"
WILDCARD_PRINCIPAL = "User:*"


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14
    TWO_PHASE_COMMIT = 15


class Permission(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


def from_code(kind: type[IntEnum], code: int) -> Any:
    """Kafka's fromCode: a code it does not know is UNKNOWN."""
    try:
        return kind(code)
    except ValueError:
        return kind(0)


Op = AclOperation
#: the operations each resource type supports (what authorized_operations fields report)
SUPPORTED_OPERATIONS: dict[ResourceType, tuple[AclOperation, ...]] = {
    ResourceType.TOPIC: (
        Op.READ,
        Op.WRITE,
        Op.CREATE,
        Op.DELETE,
        Op.ALTER,
        Op.DESCRIBE,
        Op.DESCRIBE_CONFIGS,
        Op.ALTER_CONFIGS,
    ),
    ResourceType.GROUP: (Op.READ, Op.DELETE, Op.DESCRIBE, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS),
    ResourceType.CLUSTER: (
        Op.CREATE,
        Op.ALTER,
        Op.DESCRIBE,
        Op.CLUSTER_ACTION,
        Op.DESCRIBE_CONFIGS,
        Op.ALTER_CONFIGS,
        Op.IDEMPOTENT_WRITE,
    ),
    ResourceType.TRANSACTIONAL_ID: (Op.WRITE, Op.DESCRIBE, Op.TWO_PHASE_COMMIT),
    ResourceType.DELEGATION_TOKEN: (Op.DESCRIBE,),
    ResourceType.USER: (Op.CREATE_TOKENS, Op.DESCRIBE_TOKENS),
}
_IMPLIES_DESCRIBE = frozenset((Op.DESCRIBE, Op.READ, Op.WRITE, Op.DELETE, Op.ALTER))
_IMPLIES_DESCRIBE_CONFIGS = frozenset((Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS))


def operations_bits(operations: Iterable[AclOperation]) -> int:
    """An authorized_operations field: bit N set for operation code N."""
    bits = 0
    for op in operations:
        bits |= 1 << int(op)
    return bits


@dataclass(frozen=True, slots=True)
class Acl:
    """One ACL binding: a resource pattern and an access control entry."""

    resource_type: ResourceType
    name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: AclOperation
    permission: Permission

    def covers(self, name: str) -> bool:
        """Whether this binding's pattern takes in the resource called `name`."""
        if self.pattern_type == PatternType.LITERAL:
            return self.name == name or self.name == WILDCARD
        return name.startswith(self.name)

    def to_json(self) -> list[Any]:
        return [
            int(self.resource_type),
            self.name,
            int(self.pattern_type),
            self.principal,
            self.host,
            int(self.operation),
            int(self.permission),
        ]

    @classmethod
    def from_json(cls, row: list[Any]) -> Acl:
        rtype, name, pattern, principal, host, op, permission = row
        return cls(
            ResourceType(rtype), name, PatternType(pattern), principal, host, AclOperation(op), Permission(permission)
        )


@dataclass(frozen=True, slots=True)
class AclFilter:
    """An ACL binding filter (DescribeAcls, DeleteAcls): None and ANY match anything."""

    resource_type: ResourceType
    name: str | None
    pattern_type: PatternType
    principal: str | None
    host: str | None
    operation: AclOperation
    permission: Permission

    def matches(self, acl: Acl) -> bool:
        if self.resource_type not in (ResourceType.ANY, acl.resource_type):
            return False
        if self.pattern_type not in (PatternType.ANY, PatternType.MATCH, acl.pattern_type):
            return False
        if self.name is not None:
            if self.pattern_type in (PatternType.ANY, acl.pattern_type):
                if self.name != acl.name:
                    return False
            elif not acl.covers(self.name):  # MATCH: the bindings that would apply to this name
                return False
        if self.principal is not None and self.principal != acl.principal:
            return False
        if self.host is not None and self.host != acl.host:
            return False
        if self.operation not in (AclOperation.ANY, acl.operation):
            return False
        return self.permission in (Permission.ANY, acl.permission)


class AclError(Exception):
    """A binding Kafka refuses to create, with its INVALID_REQUEST message."""


def validate_new(acl: Acl) -> None:
    """Kafka's checks of a binding to create (the broker's, then the controller's), in their order."""
    if acl.resource_type == ResourceType.CLUSTER and acl.name != CLUSTER_NAME:
        raise AclError(f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}")
    if not acl.name:
        raise AclError("Invalid empty resource name")
    if acl.resource_type in (ResourceType.UNKNOWN, ResourceType.ANY):
        raise AclError(f"Invalid resourceType {acl.resource_type.name}")
    if acl.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        raise AclError(f"Invalid patternType {acl.pattern_type.name}")
    if acl.operation in (AclOperation.UNKNOWN, AclOperation.ANY):
        raise AclError(f"Invalid operation {acl.operation.name}")
    if acl.permission not in (Permission.ALLOW, Permission.DENY):
        raise AclError(f"Invalid permissionType {acl.permission.name}")
    if ":" not in acl.principal:
        raise AclError(
            f"Could not parse principal from `{acl.principal}` "
            "(no colon is present separating the principal type from the principal name)"
        )


def _split_super_users(value: str | None) -> frozenset[str]:
    return frozenset(v.strip() for v in (value or "").split(";") if v.strip())


class Authorizer:
    """The cluster's ACL bindings and the decisions made from them."""

    def __init__(self, enabled: bool = False, super_users: Iterable[str] = (), allow_if_no_acl: bool = False) -> None:
        self.enabled = enabled
        self.super_users = frozenset(super_users)
        self.allow_if_no_acl = allow_if_no_acl
        #: the bindings, in creation order (a dict as an ordered set)
        self._acls: dict[Acl, None] = {}
        self._by_type: dict[ResourceType, list[Acl]] = {}

    @classmethod
    def from_config(cls, config: Any) -> Authorizer:
        """From broker settings: authorizer.class.name, super.users, allow.everyone.if.no.acl.found."""
        name = (config.raw("authorizer.class.name") or "").strip()
        if name and name not in AUTHORIZER_NAMES:
            raise ValueError(f"authorizer.class.name: kstub implements {STANDARD_AUTHORIZER} only, not {name!r}")
        allow = (config.raw("allow.everyone.if.no.acl.found") or "false").strip().lower() == "true"
        return cls(bool(name), _split_super_users(config.raw("super.users")), allow)

    # --- the bindings -------------------------------------------------------

    def __len__(self) -> int:
        return len(self._acls)

    def bindings(self) -> list[Acl]:
        return list(self._acls)

    def add(self, acls: Iterable[Acl]) -> None:
        for acl in acls:
            if acl not in self._acls:
                self._acls[acl] = None
                self._by_type.setdefault(acl.resource_type, []).append(acl)

    def describe(self, flt: AclFilter) -> list[Acl]:
        return [acl for acl in self._acls if flt.matches(acl)]

    def delete(self, flt: AclFilter) -> list[Acl]:
        gone = self.describe(flt)
        for acl in gone:
            del self._acls[acl]
            self._by_type[acl.resource_type].remove(acl)
        return gone

    def snapshot(self) -> list[list[Any]]:
        return [acl.to_json() for acl in self._acls]

    def restore(self, rows: Iterable[list[Any]]) -> None:
        self._acls.clear()
        self._by_type.clear()
        self.add(Acl.from_json(row) for row in rows)

    # --- decisions ----------------------------------------------------------

    def authorize(self, principal: str, host: str, op: AclOperation, rtype: ResourceType, name: str) -> bool:
        """May `principal`, connected from `host`, do `op` on the resource `rtype` `name`?"""
        if not self.enabled or principal in self.super_users:
            return True
        named = False
        allowed = False
        for acl in self._by_type.get(rtype, ()):
            if not acl.covers(name):
                continue
            named = True
            if acl.principal != principal and acl.principal != WILDCARD_PRINCIPAL:
                continue
            if acl.host != WILDCARD and acl.host != host:
                continue
            if acl.operation != Op.ALL:
                if acl.permission == Permission.ALLOW:
                    if op == Op.DESCRIBE:
                        if acl.operation not in _IMPLIES_DESCRIBE:
                            continue
                    elif op == Op.DESCRIBE_CONFIGS:
                        if acl.operation not in _IMPLIES_DESCRIBE_CONFIGS:
                            continue
                    elif acl.operation != op:
                        continue
                elif acl.operation != op:
                    continue
            if acl.permission == Permission.DENY:
                return False
            allowed = True
        if allowed:
            return True
        return False if named else self.allow_if_no_acl

    def authorized_operations(self, principal: str, host: str, rtype: ResourceType, name: str) -> int:
        """The authorized_operations bit field: the supported operations `principal` may do on the resource."""
        ops = SUPPORTED_OPERATIONS[rtype]
        return operations_bits(op for op in ops if self.authorize(principal, host, op, rtype, name))

    def authorize_by_resource_type(self, principal: str, host: str, op: AclOperation, rtype: ResourceType) -> bool:
        """Kafka's authorizeByResourceType: may the principal do `op` on some resource of this type?

        Allowed if it may on a resource named by no binding (super users, the
        default rule), or if an ALLOW binding (LITERAL or PREFIXED) for the
        operation is not cancelled by a DENY on the same literal name or a
        DENY prefix of it; a DENY on every name (LITERAL ``*``) refuses.
        """
        if self.authorize(principal, host, op, rtype, "hardcode"):
            return True
        deny_literal: set[str] = set()
        deny_prefix: set[str] = set()
        allow: list[tuple[PatternType, str]] = []
        for acl in self._by_type.get(rtype, ()):
            if acl.host not in (host, WILDCARD) or acl.principal not in (principal, WILDCARD_PRINCIPAL):
                continue
            if acl.operation not in (op, Op.ALL):
                continue
            if acl.permission == Permission.DENY:
                if acl.pattern_type == PatternType.LITERAL:
                    if acl.name == WILDCARD:
                        return False
                    deny_literal.add(acl.name)
                else:
                    deny_prefix.add(acl.name)
            elif acl.pattern_type == PatternType.LITERAL and acl.name == WILDCARD:
                return True
            else:
                allow.append((acl.pattern_type, acl.name))
        for pattern, name in allow:
            if pattern == PatternType.LITERAL and name in deny_literal:
                continue
            if not any(name[:i] in deny_prefix for i in range(1, len(name) + 1)):
                return True
        return False
