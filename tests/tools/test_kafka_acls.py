"""kafka-acls against kstub: --add, --list and --remove, checked by another client (librdkafka's admin)."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from kstub import Cluster

from support.kafka_tools import tool, unique

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


def test_java_consumer_needs_read(tmp_path: Path) -> None:
    """Kafka's console consumer (the Java client) over SASL/SCRAM: TopicAuthorizationException, then records."""
    users = {"admin": "admin-secret", "alice": "alice-secret"}
    config = {**AUTHORIZER, "super.users": "User:admin"}
    with Cluster(security_protocol="SASL_PLAINTEXT", users=users, config=config) as cluster:
        admin_config = cluster.client_config("admin", users["admin"], mechanism="SCRAM-SHA-512")
        admin = AdminClient(admin_config)
        topic, group = unique("java-acl"), unique("java-group")
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        producer = Producer(admin_config)
        producer.produce(topic, b"hello")
        assert producer.flush(30) == 0
        properties = tmp_path / "alice.properties"
        properties.write_text(
            "security.protocol=SASL_PLAINTEXT\n"
            "sasl.mechanism=SCRAM-SHA-512\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required"
            ' username="alice" password="alice-secret";\n'
        )
        bootstrap = cluster.bootstrap_servers
        consume = ["--bootstrap-server", bootstrap, "--topic", topic, "--group", group, "--from-beginning"]
        consume += ["--max-messages", "1", "--timeout-ms", "30000", "--command-config", str(properties)]
        common = ["--bootstrap-server", bootstrap, "--command-config", str(properties)]
        # alice may not even manage ACLs herself
        refused = tool(
            "kafka-acls",
            *common,
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            topic,
            check=False,
        )
        assert "ClusterAuthorizationException" in refused.stdout + refused.stderr
        grant = AclBinding(
            ResourceType.GROUP,
            group,
            ResourcePatternType.LITERAL,
            "User:alice",
            "*",
            AclOperation.READ,
            AclPermissionType.ALLOW,
        )
        admin.create_acls([grant], request_timeout=30)[grant].result(30)
        denied = tool("kafka-console-consumer", *consume, check=False)
        # (the tool reports it and exits 0 after "Processed a total of 0 messages")
        assert "TopicAuthorizationException" in denied.stdout + denied.stderr
        read = AclBinding(
            ResourceType.TOPIC,
            topic,
            ResourcePatternType.LITERAL,
            "User:alice",
            "*",
            AclOperation.READ,
            AclPermissionType.ALLOW,
        )
        admin.create_acls([read], request_timeout=30)[read].result(30)
        assert tool("kafka-console-consumer", *consume).stdout.splitlines() == ["hello"]
