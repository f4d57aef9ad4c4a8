"""The authorizer's decisions (kstub/cluster/acls.py), rule by rule, as Kafka's StandardAuthorizer decides."""

from __future__ import annotations

import pytest

from kstub.cluster.acls import (
    Acl,
    AclError,
    AclFilter,
    Authorizer,
    PatternType,
    Permission,
    ResourceType,
    operations_bits,
    validate_new,
)
from kstub.cluster.acls import AclOperation as Op
from kstub.cluster.config import BrokerConfig

ALICE = "User:alice"
TOPIC = ResourceType.TOPIC
LIT = PatternType.LITERAL
PRE = PatternType.PREFIXED
ALLOW = Permission.ALLOW
DENY = Permission.DENY


def acl(
    name: str,
    op: Op,
    permission: Permission = ALLOW,
    *,
    pattern: PatternType = LIT,
    principal: str = ALICE,
    host: str = "*",
    rtype: ResourceType = TOPIC,
) -> Acl:
    return Acl(rtype, name, pattern, principal, host, op, permission)


def authorizer(*acls: Acl, **kwargs: object) -> Authorizer:
    a = Authorizer(enabled=True, **kwargs)  # type: ignore[arg-type]
    a.add(acls)
    return a


def may(a: Authorizer, op: Op, name: str, principal: str = ALICE, host: str = "10.0.0.1") -> bool:
    return a.authorize(principal, host, op, TOPIC, name)


def test_disabled_allows_everything_and_enabled_denies_by_default() -> None:
    assert Authorizer().authorize(ALICE, "h", Op.WRITE, TOPIC, "t")
    assert not may(authorizer(), Op.READ, "t")
    assert may(authorizer(allow_if_no_acl=True), Op.READ, "t")


def test_allow_if_no_acl_only_where_no_binding_names_the_resource() -> None:
    a = authorizer(acl("t", Op.READ, principal="User:bob"), allow_if_no_acl=True)
    assert not may(a, Op.READ, "t")  # some binding names t: the default does not apply
    assert may(a, Op.READ, "other")


def test_deny_wins_and_prefixed_patterns() -> None:
    a = authorizer(acl("orders", Op.READ, pattern=PRE), acl("orders-secret", Op.READ, DENY))
    assert may(a, Op.READ, "orders-eu")
    assert may(a, Op.READ, "orders")  # a prefix takes in the name itself
    assert not may(a, Op.READ, "orders-secret")
    assert may(a, Op.READ, "orders-secret-2")  # the DENY is literal
    assert not may(a, Op.READ, "order")


def test_literal_wildcard_and_principal_wildcard() -> None:
    a = authorizer(acl("*", Op.WRITE, principal="User:*"))
    assert may(a, Op.WRITE, "anything", principal="User:carol")
    assert not may(a, Op.READ, "anything")


def test_implied_operations() -> None:
    a = authorizer(acl("t", Op.READ), acl("c", Op.ALTER_CONFIGS))
    assert may(a, Op.DESCRIBE, "t")
    assert not may(a, Op.WRITE, "t")
    assert may(a, Op.DESCRIBE_CONFIGS, "c")
    assert not may(a, Op.DESCRIBE, "c")
    # a DENY implies nothing: DENY READ leaves DESCRIBE to the ALLOW
    b = authorizer(acl("t", Op.ALL), acl("t", Op.READ, DENY))
    assert not may(b, Op.READ, "t")
    assert may(b, Op.DESCRIBE, "t")
    assert may(b, Op.WRITE, "t")


def test_hosts() -> None:
    a = authorizer(acl("t", Op.READ, host="10.0.0.1"))
    assert may(a, Op.READ, "t", host="10.0.0.1")
    assert not may(a, Op.READ, "t", host="10.0.0.2")


def test_super_users_from_config() -> None:
    config = BrokerConfig(
        {
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin; User:ops",
            "allow.everyone.if.no.acl.found": "false",
        }
    )
    a = Authorizer.from_config(config)
    a.add([acl("t", Op.ALL, DENY, principal="User:*")])
    assert a.enabled
    assert a.authorize("User:ops", "h", Op.READ, TOPIC, "t")
    assert not a.authorize(ALICE, "h", Op.READ, TOPIC, "t")
    assert not Authorizer.from_config(BrokerConfig()).enabled
    with pytest.raises(ValueError, match=r"kafka\.security\.authorizer\.AclAuthorizer"):
        Authorizer.from_config(BrokerConfig({"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer"}))


def test_authorized_operations() -> None:
    a = authorizer(acl("t", Op.READ), acl("t", Op.ALTER_CONFIGS))
    assert a.authorized_operations(ALICE, "h", TOPIC, "t") == operations_bits(
        [Op.READ, Op.DESCRIBE, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS]
    )


def test_authorize_by_resource_type() -> None:
    assert authorizer(acl("x-", Op.WRITE, pattern=PRE)).authorize_by_resource_type(ALICE, "h", Op.WRITE, TOPIC)
    denied_prefix = authorizer(acl("x-1", Op.WRITE), acl("x-", Op.WRITE, DENY, pattern=PRE))
    assert not denied_prefix.authorize_by_resource_type(ALICE, "h", Op.WRITE, TOPIC)
    denied_all = authorizer(acl("x", Op.WRITE), acl("*", Op.WRITE, DENY))
    assert not denied_all.authorize_by_resource_type(ALICE, "h", Op.WRITE, TOPIC)
    assert not authorizer(acl("x", Op.READ)).authorize_by_resource_type(ALICE, "h", Op.WRITE, TOPIC)


def _filter(**kw: object) -> AclFilter:
    base: dict = dict(
        resource_type=ResourceType.ANY,
        name=None,
        pattern_type=PatternType.ANY,
        principal=None,
        host=None,
        operation=Op.ANY,
        permission=Permission.ANY,
    )
    return AclFilter(**{**base, **kw})


def test_filters() -> None:
    lit, pre, star = acl("orders-1", Op.READ), acl("orders-", Op.READ, pattern=PRE), acl("*", Op.READ)
    a = authorizer(lit, pre, star, acl("g", Op.READ, rtype=ResourceType.GROUP))
    assert len(a.describe(_filter())) == 4
    assert a.describe(_filter(resource_type=TOPIC, name="orders-1")) == [lit]  # ANY: exact names
    assert a.describe(_filter(resource_type=TOPIC, name="orders-1", pattern_type=PatternType.MATCH)) == [
        lit,
        pre,
        star,
    ]
    assert a.describe(_filter(pattern_type=PRE)) == [pre]
    assert a.delete(_filter(resource_type=ResourceType.GROUP)) == [acl("g", Op.READ, rtype=ResourceType.GROUP)]
    assert len(a) == 3


@pytest.mark.parametrize(
    ("binding", "message"),
    [
        (acl("other", Op.ALTER, rtype=ResourceType.CLUSTER), "The only valid name for the CLUSTER resource is"),
        (acl("", Op.READ), "Invalid empty resource name"),
        (acl("t", Op.READ, rtype=ResourceType.ANY), "Invalid resourceType ANY"),
        (acl("t", Op.READ, pattern=PatternType.MATCH), "Invalid patternType MATCH"),
        (acl("t", Op.ANY), "Invalid operation ANY"),
        (acl("t", Op.READ, Permission.ANY), "Invalid permissionType ANY"),
        (acl("t", Op.READ, principal="alice"), "Could not parse principal from `alice`"),
    ],
)
def test_validation(binding: Acl, message: str) -> None:
    with pytest.raises(AclError, match=message):
        validate_new(binding)


def test_snapshot_round_trip() -> None:
    a = authorizer(acl("t", Op.READ), acl("p", Op.WRITE, DENY, pattern=PRE, host="1.2.3.4"))
    b = Authorizer(enabled=True)
    b.restore(a.snapshot())
    assert b.bindings() == a.bindings()
