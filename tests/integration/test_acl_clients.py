"""ACLs with real clients over SASL/SCRAM and mutual TLS (docs/security.md, "ACLs").

A user without READ on a topic gets TOPIC_AUTHORIZATION_FAILED from
confluent-kafka, kafka-python, aiokafka and kcat (the Java client:
tests/tools/test_kafka_acls.py); once an admin (a super user) grants READ on
the topic and the group with the admin API, the same user consumes. A prefixed
ALLOW with a literal DENY behave as in Kafka. With mutual TLS the principal is
the certificate's, as ssl.principal.mapping.rules makes it. With --data-dir,
ACLs and SCRAM users survive a restart.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import confluent_kafka as ck
import kafka
import kafka.errors
import pytest
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

USERS = {"admin": "admin-secret", "alice": "alice-secret"}
AUTHORIZER = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:admin",
}
SCRAM = "SCRAM-SHA-512"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster(security_protocol="SASL_PLAINTEXT", users=USERS, config=AUTHORIZER) as c:
        yield c


def _config(cluster: Cluster, user: str) -> dict[str, str]:
    return cluster.client_config(user, USERS[user], mechanism=SCRAM)


def _admin(cluster: Cluster) -> AdminClient:
    return AdminClient(_config(cluster, "admin"))


def _topic_with_records(cluster: Cluster, count: int = 3) -> str:
    topic = f"acl-{uuid.uuid4().hex[:8]}"
    admin = _admin(cluster)  # kept: a collected client cancels its requests
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = ck.Producer(_config(cluster, "admin"))
    for i in range(count):
        producer.produce(topic, f"v{i}".encode())
    assert producer.flush(30) == 0
    return topic


def _allow(cluster: Cluster, *bindings: tuple[ResourceType, str, AclOperation, ResourcePatternType]) -> None:
    acls = [
        AclBinding(rtype, name, pattern, "User:alice", "*", op, AclPermissionType.ALLOW)
        for rtype, name, op, pattern in bindings
    ]
    admin = _admin(cluster)
    for future in admin.create_acls(acls, request_timeout=30).values():
        future.result(30)


def _confluent_consume(config: dict[str, str], topic: str, group: str, count: int) -> list[bytes] | ck.KafkaError:
    """The values read, or the first error the consumer reports."""
    consumer = ck.Consumer({**config, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    try:
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error() is not None:
                return message.error()
            got.append(message.value())
            if len(got) >= count:
                break
    finally:
        consumer.close()
    return got


LITERAL = ResourcePatternType.LITERAL


def test_confluent_consumer_needs_read(cluster: Cluster) -> None:
    topic = _topic_with_records(cluster)
    group = f"g-{topic}"
    _allow(cluster, (ResourceType.GROUP, group, AclOperation.READ, LITERAL))
    error = _confluent_consume(_config(cluster, "alice"), topic, group, 3)
    assert isinstance(error, ck.KafkaError)
    assert error.code() == ck.KafkaError.TOPIC_AUTHORIZATION_FAILED
    _allow(cluster, (ResourceType.TOPIC, topic, AclOperation.READ, LITERAL))
    assert _confluent_consume(_config(cluster, "alice"), topic, group, 3) == [b"v0", b"v1", b"v2"]


def test_confluent_producer_needs_write(cluster: Cluster) -> None:
    topic = _topic_with_records(cluster, 0)
    reports: list[ck.KafkaError | None] = []
    config = {**_config(cluster, "alice"), "enable.idempotence": False, "message.timeout.ms": 10000}
    producer = ck.Producer(config)
    producer.produce(topic, b"x", on_delivery=lambda err, msg: reports.append(err))
    producer.flush(30)
    assert [e.code() if e else None for e in reports] == [ck.KafkaError.TOPIC_AUTHORIZATION_FAILED]
    _allow(cluster, (ResourceType.TOPIC, topic, AclOperation.WRITE, LITERAL))
    producer = ck.Producer(config)
    reports.clear()
    producer.produce(topic, b"y", on_delivery=lambda err, msg: reports.append(err))
    producer.flush(30)
    assert reports == [None]


def test_prefixed_allow_and_literal_deny(cluster: Cluster) -> None:
    prefix = f"pre-{uuid.uuid4().hex[:6]}-"
    admin = _admin(cluster)
    open_topic, secret = f"{prefix}open", f"{prefix}secret"
    for t in (open_topic, secret):
        admin.create_topics([NewTopic(t, 1, 1)])[t].result(30)
    write = AclOperation.WRITE
    bindings = [
        AclBinding(
            ResourceType.TOPIC, prefix, ResourcePatternType.PREFIXED, "User:alice", "*", write, AclPermissionType.ALLOW
        ),
        AclBinding(ResourceType.TOPIC, secret, LITERAL, "User:alice", "*", write, AclPermissionType.DENY),
    ]
    for future in admin.create_acls(bindings, request_timeout=30).values():
        future.result(30)
    producer = ck.Producer({**_config(cluster, "alice"), "enable.idempotence": False, "message.timeout.ms": 10000})
    reports: dict[str, int | None] = {}
    for t in (open_topic, secret):
        producer.produce(t, b"x", on_delivery=lambda err, msg: reports.__setitem__(msg.topic(), err and err.code()))
    producer.flush(30)
    assert reports == {open_topic: None, secret: ck.KafkaError.TOPIC_AUTHORIZATION_FAILED}


def _describe_but_no_read(cluster: Cluster) -> tuple[str, str, dict[str, Any]]:
    """A topic with records that alice may DESCRIBE but not READ, a group she may READ, and her SASL settings
    (kafka-python's and aiokafka's names)."""
    topic = _topic_with_records(cluster)
    group = f"g-{topic}"
    _allow(
        cluster,
        (ResourceType.GROUP, group, AclOperation.READ, LITERAL),
        (ResourceType.TOPIC, topic, AclOperation.DESCRIBE, LITERAL),
    )
    settings = {
        "bootstrap_servers": _config(cluster, "alice")["bootstrap.servers"],
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": SCRAM,
        "sasl_plain_username": "alice",
        "sasl_plain_password": USERS["alice"],
    }
    return topic, group, settings


def test_kafka_python_consumer_needs_read(cluster: Cluster) -> None:
    # DESCRIBE but no READ on the topic: the fetch is refused (without DESCRIBE, Metadata hides the topic
    # and kafka-python only logs that it is not authorized)
    topic, group, sasl = _describe_but_no_read(cluster)
    settings = {**sasl, "group_id": group, "auto_offset_reset": "earliest", "consumer_timeout_ms": 15000}
    consumer = kafka.KafkaConsumer(topic, **settings)
    try:
        with pytest.raises(kafka.errors.TopicAuthorizationFailedError):
            for _ in consumer:
                break
    finally:
        consumer.close()
    _allow(cluster, (ResourceType.TOPIC, topic, AclOperation.READ, LITERAL))
    consumer = kafka.KafkaConsumer(topic, **settings)
    try:
        got = []
        for message in consumer:
            got.append(message.value)
            if len(got) == 3:
                break
    finally:
        consumer.close()
    assert got == [b"v0", b"v1", b"v2"]


def test_mutual_tls_principal() -> None:
    """The certificate's principal (mapped by ssl.principal.mapping.rules) is the one ACLs name."""
    config = {
        **AUTHORIZER,
        "super.users": "User:nobody",
        "allow.everyone.if.no.acl.found": "true",
        "ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]*),OU=([^,]*)(,.*)?$/$1@$2/U,DEFAULT",
    }
    with Cluster(security_protocol="SSL", config=config) as c:
        assert c.tls_dir is not None
        settings = {
            **c.client_config(),
            "ssl.certificate.location": f"{c.tls_dir}/client-cert.pem",
            "ssl.key.location": f"{c.tls_dir}/client-key.pem",
        }
        topic = f"tls-{uuid.uuid4().hex[:8]}"
        admin = AdminClient(settings)
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        deny = AclBinding(
            ResourceType.TOPIC, topic, LITERAL, "User:CLIENT@KSTUB", "*", AclOperation.WRITE, AclPermissionType.DENY
        )
        for future in admin.create_acls([deny], request_timeout=30).values():
            future.result(30)
        reports: list[int | None] = []
        producer = ck.Producer({**settings, "enable.idempotence": False, "message.timeout.ms": 10000})
        producer.produce(topic, b"x", on_delivery=lambda err, msg: reports.append(err and err.code()))
        producer.flush(30)
        assert reports == [ck.KafkaError.TOPIC_AUTHORIZATION_FAILED]


def test_acls_and_scram_users_survive_a_restart(tmp_path) -> None:
    """With --data-dir, ACL bindings and SCRAM users made through the admin API are kept across restarts."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    def start() -> Cluster:
        return Cluster(
            security_protocol="SASL_PLAINTEXT", users={"admin": USERS["admin"]}, config=AUTHORIZER, data_dir=tmp_path
        )

    binding = AclBinding(
        ResourceType.TOPIC, "kept", LITERAL, "User:dave", "*", AclOperation.READ, AclPermissionType.ALLOW
    )
    with start() as c:
        admin = AdminClient(_config(c, "admin"))
        upsert = UserScramCredentialUpsertion(
            "dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"dave-pw"
        )
        admin.alter_user_scram_credentials([upsert])["dave"].result(30)
        admin.create_acls([binding], request_timeout=30)[binding].result(30)
    with start() as c:
        admin = AdminClient(_config(c, "admin"))
        everything = AclBindingFilter(
            ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
        )
        assert admin.describe_acls(everything, request_timeout=30).result(30) == [binding]
        dave = AdminClient(c.client_config("dave", "dave-pw", mechanism=SCRAM))
        assert dave.list_topics(timeout=30).topics == {}  # authenticated; may describe no topic


def test_aiokafka_consumer_needs_read(cluster: Cluster) -> None:
    import asyncio

    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import TopicAuthorizationFailedError

    topic, group, settings = _describe_but_no_read(cluster)

    async def consume() -> list[bytes]:
        consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", group_id=group, **settings)
        await consumer.start()
        try:
            got: list[bytes] = []
            while len(got) < 3:
                message = await asyncio.wait_for(consumer.getone(), 30)
                got.append(message.value)
            return got
        finally:
            await consumer.stop()

    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(consume())
    _allow(cluster, (ResourceType.TOPIC, topic, AclOperation.READ, LITERAL))
    assert asyncio.run(consume()) == [b"v0", b"v1", b"v2"]


def test_kcat_consumer_needs_read(cluster: Cluster, kcat: str) -> None:
    """kcat (librdkafka, PLAIN: Debian's kcat cannot do SCRAM) reports the refused fetch, then reads once allowed."""
    import subprocess

    topic = _topic_with_records(cluster)
    _allow(cluster, (ResourceType.TOPIC, topic, AclOperation.DESCRIBE, LITERAL))
    config = cluster.client_config("alice", USERS["alice"], mechanism="PLAIN")
    options = [a for k, v in config.items() if k != "bootstrap.servers" for a in ("-X", f"{k}={v}")]
    command = [kcat, "-b", config["bootstrap.servers"], *options, "-C", "-t", topic, "-o", "beginning", "-e"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and refused.stdout == ""
    assert "Topic authorization failed" in refused.stderr, refused.stderr
    _allow(cluster, (ResourceType.TOPIC, topic, AclOperation.READ, LITERAL))
    consumed = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert consumed.stdout.splitlines() == ["v0", "v1", "v2"], consumed.stderr
