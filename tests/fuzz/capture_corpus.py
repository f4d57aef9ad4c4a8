"""Capture real clients' requests for the APIs the protocol goldens lack, as fuzz seeds.

Run by hand from the repository root (the tests never run it)::

    .venv/bin/python tests/fuzz/capture_corpus.py            # every step
    .venv/bin/python tests/fuzz/capture_corpus.py confluent  # steps whose name starts so

It reuses ``tests/protocol/capture_session.py``'s `Recorder` (a kstub served
in-process, `ServerConnection.decode_request` wrapped to see every request
frame, each connection attributed to the step that opened it) and drives
consumer groups and admin clients through what the goldens' session does not
do: group membership and offsets (JoinGroup, SyncGroup, Heartbeat,
OffsetCommit, OffsetFetch, LeaveGroup), group administration (ListGroups,
DescribeGroups, OffsetDelete, DeleteGroups), configs (DescribeConfigs,
AlterConfigs, IncrementalAlterConfigs), CreatePartitions, DeleteRecords,
DescribeLogDirs, DescribeCluster, and (Kafka's Java consumer, run with
``java`` from the kafka-clients jars in /tmp/kprobe/lib or env KAFKA_LIB)
OffsetForLeaderEpoch; Kafka's CLI tools (DescribeTopicPartitions, ElectLeaders,
the SCRAM credential APIs); librdkafka on a SASL_PLAINTEXT cluster
(SaslHandshake, SaslAuthenticate); and librdkafka's transactional producer
and kafka-transactions.sh (the transaction APIs); a librdkafka member of the
consumer group protocol and kafka-consumer-groups.sh (KIP-848's APIs); kafka-acls.sh
(the ACL APIs).

The first frame of each (client, api, version) is written, without its size
prefix, to ``tests/fuzz/corpus/<client>_<api>_v<N>.bin``, unless
``tests/protocol/golden/`` already has that file.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "protocol"))

from capture_session import GOLDEN, TIMEOUT, Recorder, _deadline_loop  # noqa: E402

from kstub.embedded import EmbeddedCluster  # noqa: E402

CORPUS = HERE / "corpus"
TOPIC = "corpus-topic"
GROUP_TOPIC = "corpus-group-topic"


def setup(bootstrap: str) -> None:
    """The topics and records the other steps use (its own frames are not saved)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(TOPIC, 2, 1), NewTopic(GROUP_TOPIC, 2, 1)]).values():
        f.result(TIMEOUT)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for topic in (TOPIC, GROUP_TOPIC):
        for i in range(5):
            for partition in (0, 1):
                producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=partition)
    assert producer.flush(TIMEOUT) == 0


# -- kafka-python ------------------------------------------------------------------------------------------------


def kafka_python_admin(bootstrap: str) -> None:
    from kafka import TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_partitions({TOPIC: 3})
        topic = ConfigResource(ConfigResourceType.TOPIC, TOPIC)
        admin.describe_configs([topic])
        admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "0")], include_synonyms=True)
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, TOPIC, {"retention.ms": "3600000"})])
        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, TOPIC, {"retention.bytes": "100000000"})], incremental=False
        )
        admin.delete_records({TopicPartition(TOPIC, 0): 1})
        admin.describe_log_dirs()
        admin.describe_cluster()
    finally:
        admin.close()


def kafka_python_consumer(bootstrap: str) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        GROUP_TOPIC,
        bootstrap_servers=bootstrap,
        group_id="corpus-kafka-python",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        heartbeat_interval_ms=100,
    )
    try:
        got: list[Any] = []
        heartbeats_due = time.monotonic() + 1.5
        for _ in _deadline_loop("kafka-python group consumer"):
            for records in consumer.poll(timeout_ms=200).values():
                got.extend(records)
            if len(got) >= 10 and time.monotonic() > heartbeats_due:
                break
        consumer.commit()
        consumer.committed(next(iter(consumer.assignment())))
    finally:
        consumer.close()


def kafka_python_group_admin(bootstrap: str) -> None:
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.structs import OffsetAndMetadata

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    group = "corpus-kafka-python"
    try:
        admin.list_groups()
        admin.describe_groups([group])
        admin.list_group_offsets({group: None})
        admin.alter_group_offsets(group, {TopicPartition(GROUP_TOPIC, 0): OffsetAndMetadata(1, "", -1)})
        admin.delete_group_offsets(group, [TopicPartition(GROUP_TOPIC, 1)])
        admin.delete_groups([group])
    finally:
        admin.close()


# -- confluent-kafka (librdkafka) ------------------------------------------------------------------------------------


def confluent_admin(bootstrap: str) -> None:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        NewPartitions,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap})

    def wait(futures: Any) -> None:
        for f in futures.values() if isinstance(futures, dict) else [futures]:
            f.result(TIMEOUT)

    topic = ConfigResource(ResourceType.TOPIC, TOPIC)
    wait(admin.describe_configs([topic], request_timeout=TIMEOUT))
    wait(admin.alter_configs([ConfigResource(ResourceType.TOPIC, TOPIC, set_config={"retention.ms": "7200000"})]))
    entry = ConfigEntry("retention.ms", "10800000", incremental_operation=AlterConfigOpType.SET)
    wait(admin.incremental_alter_configs([ConfigResource(ResourceType.TOPIC, TOPIC, incremental_configs=[entry])]))
    wait(admin.create_partitions([NewPartitions(TOPIC, 4)]))
    wait(admin.delete_records([TopicPartition(TOPIC, 1, 1)]))
    wait(admin.describe_cluster())


def confluent_consumer(bootstrap: str) -> None:
    """Two group members one after the other: the second resumes from a commit carrying a leader epoch,
    which librdkafka validates with OffsetForLeaderEpoch."""
    from confluent_kafka import Consumer

    for _ in range(2):
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "corpus-confluent",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "heartbeat.interval.ms": 100,
            }
        )
        try:
            consumer.subscribe([GROUP_TOPIC])
            got = 0
            heartbeats_due = time.monotonic() + 1.5
            for _ in _deadline_loop("confluent-kafka group consumer"):
                msg = consumer.poll(0.2)
                if msg is not None and msg.error() is None:
                    got += 1
                    if got == 3:
                        consumer.commit(msg, asynchronous=False)
                if got >= 3 and time.monotonic() > heartbeats_due:
                    break
            consumer.committed(consumer.assignment(), timeout=TIMEOUT)
        finally:
            consumer.close()


def confluent_group_admin(bootstrap: str) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    group = "corpus-confluent"
    admin.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
    for f in admin.describe_consumer_groups([group], request_timeout=TIMEOUT).values():
        f.result(TIMEOUT)
    for f in admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)]).values():
        f.result(TIMEOUT)
    offsets = [ConsumerGroupTopicPartitions(group, [TopicPartition(GROUP_TOPIC, 0, 2)])]
    for f in admin.alter_consumer_group_offsets(offsets).values():
        f.result(TIMEOUT)
    for f in admin.delete_consumer_groups([group], request_timeout=TIMEOUT).values():
        f.result(TIMEOUT)


# -- aiokafka --------------------------------------------------------------------------------------------------------


def aiokafka_consumer(bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer

    async def main() -> None:
        consumer = AIOKafkaConsumer(
            GROUP_TOPIC,
            bootstrap_servers=bootstrap,
            group_id="corpus-aiokafka",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            heartbeat_interval_ms=100,
        )
        await consumer.start()
        try:
            got: list[Any] = []
            heartbeats_due = time.monotonic() + 1.5
            for _ in _deadline_loop("aiokafka group consumer"):
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    got.extend(records)
                if len(got) >= 10 and time.monotonic() > heartbeats_due:
                    break
            await consumer.commit()
            await consumer.committed(next(iter(consumer.assignment())))
        finally:
            await consumer.stop()

    asyncio.run(main())


# -- the Java client ------------------------------------------------------------------------------------------------

KAFKA_LIB = Path("/tmp/kprobe/lib")


def java_consumer(bootstrap: str) -> None:
    """Kafka's own consumer, seeking with a leader epoch: it validates the position with OffsetForLeaderEpoch.

    Needs ``java`` and kafka-clients' jars (``KAFKA_LIB``, or the directory in env KAFKA_LIB).
    """
    lib = Path(os.environ.get("KAFKA_LIB", KAFKA_LIB))
    if shutil.which("java") is None or not list(lib.glob("kafka-clients-*.jar")):
        raise RuntimeError(f"needs java and kafka-clients jars in {lib}")
    subprocess.run(
        ["java", "-cp", f"{lib}/*", str(HERE / "CaptureJavaConsumer.java"), bootstrap, GROUP_TOPIC],
        check=True,
        timeout=120,
        capture_output=True,
    )


def java_tools(bootstrap: str) -> None:
    """Kafka's own CLI tools (the pinned jars): DescribeTopicPartitions, ElectLeaders, the SCRAM credential APIs,
    the client quota APIs and ListConfigResources."""
    from kstub.compat.realkafka import run_tool

    b = ["--bootstrap-server", bootstrap]
    run_tool("kafka-topics", [*b, "--describe", "--topic", TOPIC])
    run_tool("kafka-leader-election", [*b, "--election-type", "PREFERRED", "--all-topic-partitions"])
    scram = "SCRAM-SHA-256=[iterations=4096,password=corpus-secret]"
    user = ["--entity-type", "users", "--entity-name", "corpus"]
    run_tool("kafka-configs", [*b, "--alter", "--add-config", scram, *user])
    run_tool("kafka-configs", [*b, "--describe", *user])
    clients = ["--entity-type", "clients", "--entity-name", "corpus-client"]
    run_tool("kafka-configs", [*b, "--alter", "--add-config", "producer_byte_rate=1048576", *clients])
    run_tool("kafka-configs", [*b, "--describe", *clients])  # DescribeClientQuotas
    run_tool("kafka-configs", [*b, "--describe", "--entity-type", "client-metrics"])  # ListConfigResources


def java_transactions_tool(bootstrap: str) -> None:
    """kafka-transactions (the pinned jars): DescribeProducers."""
    from kstub.compat.realkafka import run_tool

    run_tool("kafka-transactions", ["--bootstrap-server", bootstrap, "describe-producers", "--topic", TOPIC,
                                    "--partition", "0"])  # fmt: skip


def confluent_transactions(bootstrap: str) -> None:
    """librdkafka's transactional producer: InitProducerId with a transactional id, AddPartitionsToTxn,
    AddOffsetsToTxn, TxnOffsetCommit and EndTxn (a commit, then an abort)."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "corpus-txn", "enable.auto.commit": False})
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "corpus-txn"})
    producer.init_transactions(TIMEOUT)
    for commit in (True, False):
        producer.begin_transaction()
        producer.produce(TOPIC, b"in a transaction", partition=0)
        offsets = [TopicPartition(TOPIC, 0, 1)]
        producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), TIMEOUT)
        if commit:
            producer.commit_transaction(TIMEOUT)
        else:
            producer.abort_transaction(TIMEOUT)
    consumer.close()


def java_transactions(bootstrap: str) -> None:
    """kafka-transactions.sh: ListTransactions and DescribeTransactions (after confluent_transactions)."""
    from kstub.compat.realkafka import run_tool

    b = ["--bootstrap-server", bootstrap]
    run_tool("kafka-transactions", [*b, "list"])
    run_tool("kafka-transactions", [*b, "describe", "--transactional-id", "corpus-txn"])


def confluent_consumer_protocol(bootstrap: str) -> None:
    """A member of the consumer group protocol (KIP-848): ConsumerGroupHeartbeat, and OffsetCommit/OffsetFetch
    at the versions with member epochs."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "corpus-consumer-protocol",
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([GROUP_TOPIC])
        for _ in _deadline_loop("confluent-kafka consumer protocol member"):
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                consumer.commit(msg, asynchronous=False)
                break
    finally:
        consumer.close()


def java_consumer_groups(bootstrap: str) -> None:
    """kafka-consumer-groups.sh on a group of the consumer protocol: ConsumerGroupDescribe."""
    from kstub.compat.realkafka import run_tool

    b = ["--bootstrap-server", bootstrap]
    run_tool("kafka-consumer-groups", [*b, "--describe", "--group", "corpus-consumer-protocol"])
    run_tool("kafka-consumer-groups", [*b, "--describe", "--group", "corpus-consumer-protocol", "--members"])


def java_acls(bootstrap: str) -> None:
    """kafka-acls.sh: CreateAcls, DescribeAcls and DeleteAcls (a cluster with an authorizer: without one the tool
    stops at DescribeAcls's SECURITY_DISABLED)."""
    from kstub.compat.realkafka import run_tool

    b = ["--bootstrap-server", bootstrap]
    acl = ["--allow-principal", "User:corpus", "--operation", "Read", "--topic", TOPIC]
    run_tool("kafka-acls", [*b, "--add", *acl])
    run_tool("kafka-acls", [*b, "--list"])
    run_tool("kafka-acls", [*b, "--remove", "--force", *acl])


def java_reassign(bootstrap: str) -> None:
    """kafka-reassign-partitions.sh: AlterPartitionReassignments (--execute) and ListPartitionReassignments (--list)."""
    import json
    import tempfile

    from kstub.compat.realkafka import run_tool

    b = ["--bootstrap-server", bootstrap]
    plan = {"version": 1, "partitions": [{"topic": TOPIC, "partition": 0, "replicas": [0]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(plan, f)
        f.flush()
        run_tool("kafka-reassign-partitions", [*b, "--execute", "--reassignment-json-file", f.name])
    run_tool("kafka-reassign-partitions", [*b, "--list"])


def confluent_sasl(bootstrap: str) -> None:
    """SaslHandshake, SaslAuthenticate and DescribeUserScramCredentials from librdkafka (a SASL_PLAINTEXT cluster)."""
    from confluent_kafka.admin import AdminClient

    for mechanism in ("PLAIN", "SCRAM-SHA-256"):
        conf = {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism}
        admin = AdminClient({**conf, "sasl.username": "corpus", "sasl.password": "corpus-secret"})
        admin.list_topics(timeout=TIMEOUT)
    admin.describe_user_scram_credentials(["corpus"])["corpus"].result(TIMEOUT)  # DescribeUserScramCredentials


# the names are the capture's client names (kafka-python and aiokafka put them in their client_id: see Recorder)
STEPS: list[tuple[str, Callable[[str], None]]] = [
    ("setup", setup),
    ("kafka-python-admin", kafka_python_admin),
    ("kafka-python-consumer", kafka_python_consumer),
    ("kafka-python-admin", kafka_python_group_admin),
    ("confluent-kafka-admin", confluent_admin),
    ("confluent-kafka-consumer", confluent_consumer),
    ("confluent-kafka-admin", confluent_group_admin),
    ("aiokafka-consumer", aiokafka_consumer),
    ("java-consumer", java_consumer),
    ("java-tools", java_tools),
    ("java-transactions-tool", java_transactions_tool),
    ("confluent-kafka-transactions", confluent_transactions),
    ("java-transactions", java_transactions),
    ("confluent-kafka-consumer-protocol", confluent_consumer_protocol),
    ("java-consumer-groups", java_consumer_groups),
    ("java-reassign", java_reassign),
]

#: steps run against a cluster with Kafka's StandardAuthorizer (the anonymous plaintext user is a super user)
ACL_STEPS: list[tuple[str, Callable[[str], None]]] = [
    ("java-acls", java_acls),
]
ACL_CONFIG = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:ANONYMOUS",
}

#: steps run against a second cluster, whose one listener is SASL_PLAINTEXT (user corpus, password corpus-secret)
SASL_STEPS: list[tuple[str, Callable[[str], None]]] = [
    ("confluent-kafka-sasl", confluent_sasl),
]


def main(argv: list[str]) -> int:
    def chosen(steps: list[tuple[str, Callable[[str], None]]]) -> list[tuple[str, Callable[[str], None]]]:
        return [(name, fn) for name, fn in steps if not argv or any(name.startswith(a) for a in argv)]

    recorder = Recorder()
    recorder.install()
    failed = 0

    def run(steps: list[tuple[str, Callable[[str], None]]], bootstrap: str) -> None:
        nonlocal failed
        for name, fn in steps:
            start = time.monotonic()
            recorder.step = name
            try:
                fn(bootstrap)
            except Exception as exc:  # report and go on with the other clients
                print(f"{name} {fn.__name__}: FAILED: {exc!r}", file=sys.stderr)
                failed += 1
            finally:
                recorder.step = None
            print(f"{name} {fn.__name__}: done in {time.monotonic() - start:.1f}s", file=sys.stderr)

    try:
        steps = chosen(STEPS)
        if steps:
            with EmbeddedCluster(brokers=1, config={"group.initial.rebalance.delay.ms": "0"}) as cluster:
                if not any(name == "setup" for name, _ in steps):
                    setup(cluster.bootstrap_servers)  # the topics the other steps use
                run(steps, cluster.bootstrap_servers)
        steps = chosen(ACL_STEPS)
        if steps:
            with EmbeddedCluster(brokers=1, config=ACL_CONFIG) as cluster:
                setup(cluster.bootstrap_servers)
                run(steps, cluster.bootstrap_servers)
        steps = chosen(SASL_STEPS)
        if steps:
            users = {"corpus": "corpus-secret"}
            with EmbeddedCluster(brokers=1, security_protocol="SASL_PLAINTEXT", users=users) as cluster:
                run(steps, cluster.bootstrap_servers)
    finally:
        recorder.uninstall()
    CORPUS.mkdir(exist_ok=True)
    total = 0
    for captured in sorted(recorder.saved.values(), key=lambda c: c.path.name):
        name = captured.path.name
        if captured.client == "setup" or (GOLDEN / name).exists():
            continue
        (CORPUS / name).write_bytes(captured.frame)
        total += len(captured.frame)
        print(f"corpus/{name} ({len(captured.frame)} bytes, client_id {captured.client_id!r})")
    for line in recorder.mismatched:
        print(f"not saved (client_id of another step): {line}", file=sys.stderr)
    print(f"{total} bytes", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
