"""kafka-acls against kstub: --add, --list and --remove, checked by another client (librdkafka's admin)."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import (
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from support.kafka_tools import tool

AUTHORIZER = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:ANONYMOUS",
}


def _bindings(bootstrap: str) -> set[tuple[str, str, str, str, str, str]]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    everything = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    found = admin.describe_acls(everything, request_timeout=30).result(30)
    return {
        (b.restype.name, b.name, b.resource_pattern_type.name, b.principal, b.operation.name, b.permission_type.name)
        for b in found
    }


@pytest.mark.kstub(config=AUTHORIZER)
def test_add_list_remove(bootstrap: str) -> None:
    common = ["--bootstrap-server", bootstrap]
    tool("kafka-acls", *common, "--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "orders")
    tool(
        "kafka-acls",
        *common,
        "--add",
        "--deny-principal",
        "User:bob",
        "--operation",
        "Read",
        "--group",
        "app-",
        "--resource-pattern-type",
        "prefixed",
    )
    assert _bindings(bootstrap) == {
        ("TOPIC", "orders", "LITERAL", "User:alice", "READ", "ALLOW"),
        ("GROUP", "app-", "PREFIXED", "User:bob", "READ", "DENY"),
    }
    listed = tool("kafka-acls", *common, "--list", "--topic", "orders").stdout
    assert "ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)" in listed
    assert "(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)" in listed
    assert "User:bob" not in listed

    tool("kafka-acls", *common, "--remove", "--force", "--group", "app-", "--resource-pattern-type", "prefixed")
    assert _bindings(bootstrap) == {("TOPIC", "orders", "LITERAL", "User:alice", "READ", "ALLOW")}


def test_without_an_authorizer_the_tool_says_security_is_disabled(bootstrap: str) -> None:
    refused = tool("kafka-acls", "--bootstrap-server", bootstrap, "--list", check=False)
    assert "SecurityDisabledException" in refused.stdout + refused.stderr
