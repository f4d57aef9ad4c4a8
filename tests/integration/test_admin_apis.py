"""Topic lifecycle and configs through real admin clients: CreatePartitions, Describe/Alter configs,
DeleteRecords, DescribeCluster, DescribeLogDirs.

kafka-python's KafkaAdminClient and confluent-kafka's AdminClient drive each
API end to end; a raw client covers the error cases the admin clients check
themselves before sending.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions
from confluent_kafka.admin import NewTopic as CNewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition
from kafka.admin import ConfigResource as KConfigResource
from kafka.admin import ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.admin import NewPartitions as KNewPartitions
from kafka.errors import InvalidPartitionsError
from kafka.record.default_records import DefaultRecordBatchBuilder

from kstub.protocol import ErrorCode

from support.raw import RawClient

TIMEOUT = 30


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def kp_admin(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    yield admin
    admin.close()


@pytest.fixture
def cf_admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


@pytest.fixture
def raw(bootstrap):
    with RawClient(bootstrap) as c:
        yield c


def partition_counts(raw: RawClient, topic: str) -> list[tuple[int, int, list[int]]]:
    body = raw.request(3, 12, {"topics": [{"name": topic}], "allow_auto_topic_creation": False})
    return sorted((p.partition_index, p.leader_id, list(p.replica_nodes)) for p in body.topics[0].partitions)


def cf_produce(bootstrap: str, topic: str, values: list[bytes], **kw) -> list[tuple[int, int]]:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **{k: v for k, v in kw.items() if "." in k}})
    acked: list[tuple[int, int]] = []
    errors: list[object] = []

    def done(err, msg):
        if err:
            errors.append(err)
        else:
            acked.append((msg.partition(), msg.offset()))

    for i, v in enumerate(values):
        extra = {"partition": kw["partition"]} if "partition" in kw else {}
        if "timestamps" in kw:
            extra["timestamp"] = kw["timestamps"][i]
        producer.produce(topic, v, on_delivery=done, **extra)
    assert producer.flush(TIMEOUT) == 0
    assert not errors, errors
    return acked


# --- CreatePartitions ------------------------------------------------------------------------


def test_create_partitions_3_to_6_and_every_partition_serves_data(kp_admin, bootstrap):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 3, 1)])
    kp_admin.create_partitions({topic: KNewPartitions(6)})

    producer = KafkaProducer(bootstrap_servers=bootstrap)
    assert producer.partitions_for(topic) == set(range(6))
    for p in range(6):
        producer.send(topic, value=f"to-{p}".encode(), partition=p).get(timeout=TIMEOUT)
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, consumer_timeout_ms=10_000)
    assert consumer.partitions_for_topic(topic) == set(range(6))
    tps = [KTopicPartition(topic, p) for p in range(6)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    got = {}
    deadline = time.monotonic() + TIMEOUT
    while len(got) < 6 and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500).items():
            for r in records:
                got[tp.partition] = r.value
    consumer.close()
    assert got == {p: f"to-{p}".encode() for p in range(6)}


def test_a_subscribed_group_gets_data_from_the_new_partitions(kp_admin, bootstrap):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 3, 1)])
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=unique("g"),
        auto_offset_reset="earliest",
        metadata_max_age_ms=500,
        consumer_timeout_ms=20_000,
    )
    consumer.poll(timeout_ms=2000)
    kp_admin.create_partitions({topic: KNewPartitions(6)})
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for p in range(6):
        producer.send(topic, value=f"to-{p}".encode(), partition=p).get(timeout=TIMEOUT)
    producer.close()
    seen = set()
    deadline = time.monotonic() + TIMEOUT
    while len(seen) < 6 and time.monotonic() < deadline:
        # long polls: kafka-python 3.0 can lose a rebalance that outlasts a short poll (see test_groups_clients)
        for tp, records in consumer.poll(timeout_ms=2000).items():
            if records:
                seen.add(tp.partition)
    consumer.close()
    assert seen == set(range(6))


def test_partitions_never_shrink(kp_admin, cf_admin):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 3, 1)])
    with pytest.raises(InvalidPartitionsError, match="currently has 3 partition"):
        kp_admin.create_partitions({topic: KNewPartitions(2)})
    with pytest.raises(KafkaException) as excinfo:
        cf_admin.create_partitions([NewPartitions(topic, 2)])[topic].result(TIMEOUT)
    err = excinfo.value.args[0]
    assert err.code() == ErrorCode.INVALID_PARTITIONS
    assert err.str() == f"The topic {topic} currently has 3 partition(s); 2 would not be an increase."
    with pytest.raises(KafkaException, match=r"Topic already has 3 partition\(s\)"):
        cf_admin.create_partitions([NewPartitions(topic, 3)])[topic].result(TIMEOUT)
    cf_admin.create_partitions([NewPartitions(topic, 4)])[topic].result(TIMEOUT)


def test_create_partitions_validate_only_changes_nothing(kp_admin, raw):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 2, 1)])
    kp_admin.create_partitions({topic: KNewPartitions(5)}, validate_only=True)
    assert len(partition_counts(raw, topic)) == 2


@pytest.mark.kstub(brokers=3)
def test_new_partitions_get_replicas_and_leaders(kp_admin, raw):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 2, 2)])
    kp_admin.create_partitions({topic: KNewPartitions(5)})
    parts = partition_counts(raw, topic)
    assert [p for p, _, _ in parts] == [0, 1, 2, 3, 4]
    for _, leader, replicas in parts:
        assert len(replicas) == 2 and len(set(replicas)) == 2 and leader == replicas[0]
    assert {leader for _, leader, _ in parts} == {0, 1, 2}  # leaders spread over the brokers


@pytest.mark.kstub(brokers=3)
def test_create_partitions_errors_as_kafkas_controller_gives_them(kp_admin, raw):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 1, 2)])

    def grow(count: int, assignments=None, name: str = topic, *, validate_only: bool = False) -> tuple[int, str | None]:
        body = raw.request(
            37,
            3,
            {
                "topics": [{"name": name, "count": count, "assignments": assignments}],
                "timeout_ms": 5000,
                "validate_only": validate_only,
            },
        )
        return body.results[0].error_code, body.results[0].error_message

    assert grow(3, name="no-such-topic") == (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None)
    code, msg = grow(3, [{"broker_ids": [0, 1]}])
    assert code == ErrorCode.INVALID_REPLICA_ASSIGNMENT
    assert msg == "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."
    code, msg = grow(2, [{"broker_ids": [0, 7]}])
    assert (code, msg) == (
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        "The manual partition assignment includes broker 7, but no such broker is registered.",
    )
    assert "more than once" in grow(2, [{"broker_ids": [1, 1]}])[1]
    assert "includes a partition with 1 replica(s)" in grow(2, [{"broker_ids": [1]}])[1]
    assert "empty replica list" in grow(2, [{"broker_ids": []}])[1]
    assert grow(3, [{"broker_ids": [2, 1]}, {"broker_ids": [1, 0]}]) == (ErrorCode.NONE, None)
    assert partition_counts(raw, topic)[1:] == [(1, 2, [2, 1]), (2, 1, [1, 0])]

    body = raw.request(
        37,
        0,
        {
            "topics": [
                {"name": topic, "count": 9, "assignments": None},
                {"name": topic, "count": 9, "assignments": None},
            ],
            "timeout_ms": 5000,
            "validate_only": False,
        },
    )
    assert [(r.name, r.error_code, r.error_message) for r in body.results] == [
        (topic, ErrorCode.INVALID_REQUEST, "Duplicate topic name.")
    ]
    assert len(partition_counts(raw, topic)) == 3


# --- DescribeConfigs ---------------------------------------------------------------------------


@pytest.mark.kstub(config={"log.retention.hours": "2", "log.segment.bytes": "5000000"})
def test_describe_configs_sources_and_synonyms_with_kafka_python(kp_admin):
    topic = unique()
    kp_admin.create_topics(
        [NewTopic(topic, 1, 1, topic_configs={"retention.bytes": "1000", "cleanup.policy": "delete"})]
    )
    resource = KConfigResource(ConfigResourceType.TOPIC, topic)
    configs = kp_admin.describe_configs([resource], include_synonyms=True, config_filter="all")["topic"][topic]
    assert configs["retention.bytes"]["value"] == "1000"
    assert configs["retention.bytes"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert [s["source"] for s in configs["retention.bytes"]["synonyms"]] == ["DYNAMIC_TOPIC_CONFIG", "DEFAULT_CONFIG"]
    assert configs["segment.bytes"]["value"] == "5000000"
    assert configs["segment.bytes"]["config_source"] == "STATIC_BROKER_CONFIG"
    assert configs["segment.bytes"]["synonyms"] == [
        {"name": "log.segment.bytes", "value": "5000000", "source": "STATIC_BROKER_CONFIG"},
        {"name": "log.segment.bytes", "value": "1073741824", "source": "DEFAULT_CONFIG"},
    ]
    # retention.ms follows log.retention.hours, but as in Kafka it lists no synonyms (log.retention.ms is unset)
    assert configs["retention.ms"]["value"] == str(2 * 3_600_000)
    assert (configs["retention.ms"]["config_source"], configs["retention.ms"]["synonyms"]) == ("DEFAULT_CONFIG", [])
    assert configs["retention.ms"]["config_type"] == "LONG"
    assert configs["cleanup.policy"]["config_type"] == "LIST"
    # the default filter ("modified") keeps only the topic's own overrides
    modified = kp_admin.describe_configs([resource])["topic"][topic]
    assert set(modified) == {"retention.bytes", "cleanup.policy"}


@pytest.mark.kstub(config={"log.retention.hours": "2"})
def test_describe_configs_with_confluent(cf_admin):
    topic = unique()
    cf_admin.create_topics([CNewTopic(topic, 1, 1, config={"flush.ms": "10"})])[topic].result(TIMEOUT)
    configs = cf_admin.describe_configs([ConfigResource("topic", topic)])[ConfigResource("topic", topic)].result(
        TIMEOUT
    )
    assert configs["flush.ms"].value == "10" and configs["flush.ms"].source == 1  # TOPIC_CONFIG
    assert configs["retention.ms"].value == "7200000" and configs["retention.ms"].source == 5
    assert configs["max.message.bytes"].synonyms["message.max.bytes"].value == "1048588"
    broker = cf_admin.describe_configs([ConfigResource("broker", "0")])[ConfigResource("broker", "0")].result(TIMEOUT)
    assert broker["log.retention.hours"].value == "2" and broker["log.retention.hours"].source == 4
    assert broker["log.retention.hours"].is_read_only
    assert not broker["log.retention.ms"].is_read_only and broker["log.retention.ms"].value is None


def test_describe_configs_errors_and_filters(raw, kp_admin):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "5000"})])
    body = raw.request(
        32,
        4,
        {
            "resources": [
                {"resource_type": 2, "resource_name": topic, "configuration_keys": ["retention.ms", "no.such"]},
                {"resource_type": 2, "resource_name": "missing-topic", "configuration_keys": None},
                {"resource_type": 2, "resource_name": "bad/name", "configuration_keys": None},
                {"resource_type": 4, "resource_name": "7", "configuration_keys": None},
                {"resource_type": 4, "resource_name": "x", "configuration_keys": None},
                {"resource_type": 8, "resource_name": "", "configuration_keys": None},
                {"resource_type": 8, "resource_name": "0", "configuration_keys": ["kstub"]},
                {"resource_type": 99, "resource_name": "z", "configuration_keys": None},
            ],
            "include_synonyms": False,
            "include_documentation": True,
        },
    )
    r = body.results
    assert [(c.name, c.value, c.config_source) for c in r[0].configs] == [("retention.ms", "5000", 1)]
    assert r[0].configs[0].documentation  # asked for, and given
    assert r[1].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION and r[1].configs == []
    assert r[2].error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
    assert (r[3].error_code, r[3].error_message) == (
        ErrorCode.INVALID_REQUEST,
        "Unexpected broker id, expected 0 or empty string, but received 7",
    )
    assert (r[4].error_code, r[4].error_message) == (
        ErrorCode.INVALID_REQUEST,
        "Broker id must be an integer, but it is: x",
    )
    assert (r[5].error_code, r[5].error_message) == (ErrorCode.INVALID_REQUEST, "Broker id must not be empty")
    assert r[6].error_code == ErrorCode.NONE and [c.config_source for c in r[6].configs] == [6]
    assert r[7].error_code == ErrorCode.INVALID_REQUEST
    # v0 has no sources, but says which values are defaults
    v0 = raw.request(32, 0, {"resources": [{"resource_type": 2, "resource_name": topic, "configuration_keys": None}]})
    flags = {c.name: c.is_default for c in v0.results[0].configs}
    assert flags["retention.ms"] is False and flags["segment.bytes"] is True


# --- AlterConfigs / IncrementalAlterConfigs ------------------------------------------------------


def test_alter_configs_replaces_the_whole_set(kp_admin, raw):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "5000", "flush.ms": "10"})])
    lookup = [KConfigResource(ConfigResourceType.TOPIC, topic)]
    # kafka-python's legacy path re-sends the other overrides, knowing AlterConfigs replaces the whole set
    resource = KConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.bytes": "777"})
    assert kp_admin.alter_configs([resource], incremental=False) == {"topic": {topic: "OK"}}
    modified = kp_admin.describe_configs(lookup)["topic"][topic]
    assert {k: v["value"] for k, v in modified.items()} == {
        "retention.ms": "5000",
        "flush.ms": "10",
        "retention.bytes": "777",
    }
    # sent alone, one key replaces them all
    body = raw.request(
        33,
        2,
        {
            "resources": [
                {"resource_type": 2, "resource_name": topic, "configs": [{"name": "segment.ms", "value": "60000"}]}
            ],
            "validate_only": False,
        },
    )
    assert body.responses[0].error_code == ErrorCode.NONE
    modified = kp_admin.describe_configs(lookup)["topic"][topic]
    assert {k: v["value"] for k, v in modified.items()} == {"segment.ms": "60000"}


def test_incremental_alter_configs_with_confluent(cf_admin):
    topic = unique()
    cf_admin.create_topics([CNewTopic(topic, 1, 1, config={"retention.ms": "5000"})])[topic].result(TIMEOUT)
    resource = ConfigResource(
        "topic",
        topic,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
            ConfigEntry("segment.bytes", "100000", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    for f in cf_admin.incremental_alter_configs([resource]).values():
        f.result(TIMEOUT)
    configs = cf_admin.describe_configs([ConfigResource("topic", topic)])[ConfigResource("topic", topic)].result(
        TIMEOUT
    )
    assert configs["cleanup.policy"].value == "delete,compact"
    assert configs["retention.ms"].value == "604800000" and configs["retention.ms"].source == 5
    assert configs["segment.bytes"].value == "100000" and configs["segment.bytes"].source == 1
    subtract = ConfigResource(
        "topic",
        topic,
        incremental_configs=[ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT)],
    )
    for f in cf_admin.incremental_alter_configs([subtract]).values():
        f.result(TIMEOUT)
    configs = cf_admin.describe_configs([ConfigResource("topic", topic)])[ConfigResource("topic", topic)].result(
        TIMEOUT
    )
    assert configs["cleanup.policy"].value == "compact"
    bad = ConfigResource(
        "topic",
        topic,
        incremental_configs=[ConfigEntry("retention.ms", "-9", incremental_operation=AlterConfigOpType.SET)],
    )
    with pytest.raises(KafkaException) as excinfo:
        for f in cf_admin.incremental_alter_configs([bad]).values():
            f.result(TIMEOUT)
    err = excinfo.value.args[0]
    assert err.code() == ErrorCode.INVALID_CONFIG
    assert err.str() == "Invalid value -9 for configuration retention.ms: Value must be at least -1"


def test_alter_configs_bad_inputs_get_kafkas_errors(raw, kp_admin):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 1, 1)])

    def incremental(*resources, validate_only: bool = False):
        body = raw.request(44, 1, {"resources": list(resources), "validate_only": validate_only})
        return [(r.error_code, r.error_message) for r in body.responses]

    def res(name=topic, rtype=2, *configs):
        return {"resource_type": rtype, "resource_name": name, "configs": list(configs)}

    def op(name, value, operation=0):
        return {"name": name, "config_operation": operation, "value": value}

    assert incremental(res(topic, 2, op("no.such", "1"))) == [
        (ErrorCode.INVALID_CONFIG, "Unknown topic config name: no.such")
    ]
    assert incremental(res(topic, 2, op("segment.bytes", "1", 2))) == [
        (ErrorCode.INVALID_CONFIG, "Can't APPEND to key segment.bytes because its type is not LIST.")
    ]
    assert incremental(res(topic, 2, op("retention.ms", None))) == [
        (ErrorCode.INVALID_REQUEST, "Null value not supported for : retention.ms")
    ]
    assert incremental(res(topic, 2, op("retention.ms", "1"), op("retention.ms", "2"))) == [
        (ErrorCode.INVALID_REQUEST, "Error due to duplicate config keys")
    ]
    assert incremental(res(topic, 2, op("retention.ms", "1", 9))) == [
        (ErrorCode.INVALID_REQUEST, "Unknown operations type 9")
    ]
    assert (
        incremental(res(topic, 2), res(topic, 2))
        == [
            (ErrorCode.INVALID_REQUEST, "Each resource must appear at most once."),
        ]
        * 2
    )
    assert incremental(res("missing-topic", 2, op("retention.ms", "1"))) == [
        (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None)
    ]
    assert incremental(res("", 2, op("retention.ms", "1")))[0][0] == ErrorCode.INVALID_REQUEST
    assert incremental(res("g", 32, op("x", "1"))) == [(ErrorCode.INVALID_REQUEST, "Unknown resource type 32")]
    # validate_only checks but changes nothing
    assert incremental(res(topic, 2, op("retention.ms", "1234")), validate_only=True) == [(ErrorCode.NONE, None)]
    assert kp_admin.describe_configs([KConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic] == {}
    # legacy AlterConfigs
    body = raw.request(
        33,
        0,
        {"resources": [res(topic, 2, {"name": "retention.ms", "value": "soon"})], "validate_only": False},
    )
    assert (body.responses[0].error_code, body.responses[0].error_message) == (
        ErrorCode.INVALID_CONFIG,
        "Invalid value soon for configuration retention.ms: Not a number of type LONG",
    )


def test_dynamic_broker_defaults(raw, kp_admin, cf_admin):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 1, 1)])
    # the cluster-wide default (resource name ""): neither admin client sends an empty broker name
    body = raw.request(
        44,
        1,
        {
            "resources": [
                {
                    "resource_type": 4,
                    "resource_name": "",
                    "configs": [{"name": "log.retention.ms", "config_operation": 0, "value": "60000"}],
                }
            ],
            "validate_only": False,
        },
    )
    assert body.responses[0].error_code == ErrorCode.NONE
    configs = cf_admin.describe_configs([ConfigResource("topic", topic)])[ConfigResource("topic", topic)].result(
        TIMEOUT
    )
    assert configs["retention.ms"].value == "60000" and configs["retention.ms"].source == 3  # DYNAMIC_DEFAULT
    # a broker's own setting outranks the default
    own = ConfigResource(
        "broker",
        "0",
        incremental_configs=[ConfigEntry("log.retention.ms", "70000", incremental_operation=AlterConfigOpType.SET)],
    )
    for f in cf_admin.incremental_alter_configs([own]).values():
        f.result(TIMEOUT)
    configs = cf_admin.describe_configs([ConfigResource("topic", topic)])[ConfigResource("topic", topic)].result(
        TIMEOUT
    )
    assert configs["retention.ms"].value == "70000" and configs["retention.ms"].source == 2  # DYNAMIC_BROKER
    broker = cf_admin.describe_configs([ConfigResource("broker", "0")])[ConfigResource("broker", "0")].result(TIMEOUT)
    assert broker["log.retention.ms"].value == "70000" and broker["log.retention.ms"].source == 2
    body = raw.request(
        44,
        1,
        {
            "resources": [
                {
                    "resource_type": 4,
                    "resource_name": "",
                    "configs": [{"name": "log.retention.hours", "config_operation": 0, "value": "1"}],
                }
            ],
            "validate_only": False,
        },
    )
    assert (body.responses[0].error_code, body.responses[0].error_message) == (
        ErrorCode.INVALID_REQUEST,
        "Cannot update these configs dynamically: Set(log.retention.hours)",
    )


def test_altered_configs_apply_at_once(kp_admin, bootstrap):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 1, 1)])
    cf_produce(bootstrap, topic, [b"x" * 2000])
    kp_admin.alter_configs(
        [KConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": "1000"})], incremental=True
    )
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 100000, "retries": 0})
    errors = []
    producer.produce(topic, b"x" * 2000, on_delivery=lambda err, msg: errors.append(err))
    producer.flush(TIMEOUT)
    assert errors[0] is not None and errors[0].code() == ErrorCode.MESSAGE_TOO_LARGE
    kp_admin.alter_configs(
        [KConfigResource(ConfigResourceType.TOPIC, topic, configs={"message.timestamp.type": "LogAppendTime"})],
        incremental=True,
    )
    before = int(time.time() * 1000)
    cf_produce(bootstrap, topic, [b"late"], timestamps=[1000])
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g")})
    consumer.assign([TopicPartition(topic, 0, 1)])
    msg = consumer.poll(TIMEOUT)
    consumer.close()
    assert msg.value() == b"late"
    kind, ts = msg.timestamp()
    assert kind == 2 and ts >= before  # TIMESTAMP_LOG_APPEND_TIME, stamped by the broker


# --- DeleteRecords ------------------------------------------------------------------------------


def test_delete_records_with_confluent(cf_admin, kp_admin, bootstrap):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 2, 1)])
    cf_produce(bootstrap, topic, [f"m{i}".encode() for i in range(20)], partition=0)
    result = cf_admin.delete_records([TopicPartition(topic, 0, 12)])
    deleted = result[TopicPartition(topic, 0, 12)].result(TIMEOUT)
    assert deleted.low_watermark == 12
    # the earliest offset moved; a consumer from the beginning starts there
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g"), "auto.offset.reset": "earliest"})
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT)
    assert (low, high) == (12, 20)
    consumer.assign([TopicPartition(topic, 0, -2)])  # OFFSET_BEGINNING
    msg = consumer.poll(TIMEOUT)
    consumer.close()
    assert (msg.offset(), msg.value()) == (12, b"m12")
    # -1 means the high watermark; beyond it is OFFSET_OUT_OF_RANGE
    everything = cf_admin.delete_records([TopicPartition(topic, 0, -1)])
    assert next(iter(everything.values())).result(TIMEOUT).low_watermark == 20
    with pytest.raises(KafkaException) as excinfo:
        next(iter(cf_admin.delete_records([TopicPartition(topic, 1, 5)]).values())).result(TIMEOUT)
    assert excinfo.value.args[0].code() == ErrorCode.OFFSET_OUT_OF_RANGE


def test_delete_records_with_kafka_python_and_raw_errors(kp_admin, raw, bootstrap):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 1, 1)])
    compacted = unique("c")
    kp_admin.create_topics([NewTopic(compacted, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    cf_produce(bootstrap, topic, [b"a", b"b", b"c"])
    out = kp_admin.delete_records({KTopicPartition(topic, 0): 2})
    assert out[KTopicPartition(topic, 0)]["low_watermark"] == 2
    body = raw.request(
        21,
        2,
        {
            "topics": [
                {
                    "name": topic,
                    "partitions": [{"partition_index": 0, "offset": 1}, {"partition_index": 5, "offset": 0}],
                },
                {"name": compacted, "partitions": [{"partition_index": 0, "offset": 0}]},
            ],
            "timeout_ms": 5000,
        },
    )
    got = [(t.name, p.partition_index, p.error_code, p.low_watermark) for t in body.topics for p in t.partitions]
    assert got == [
        (topic, 0, ErrorCode.NONE, 2),  # already below the log start: nothing moves
        (topic, 5, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1),
        (compacted, 0, ErrorCode.POLICY_VIOLATION, -1),
    ]
    body = raw.request(
        21, 2, {"topics": [{"name": topic, "partitions": [{"partition_index": 0, "offset": -7}]}], "timeout_ms": 5000}
    )
    assert (body.topics[0].partitions[0].error_code, body.topics[0].partitions[0].low_watermark) == (
        ErrorCode.OFFSET_OUT_OF_RANGE,
        -1,
    )


# --- DescribeCluster / DescribeLogDirs ----------------------------------------------------------


@pytest.mark.kstub(brokers=3)
def test_describe_cluster(kp_admin, kstub_cluster, raw):
    info = kp_admin.describe_cluster()
    assert info["cluster_id"] == kstub_cluster.cluster.cluster_id
    assert info["controller_id"] == 0
    assert sorted((b["broker_id"], b["port"]) for b in info["brokers"]) == sorted(
        (b.node_id, b.port) for b in kstub_cluster.brokers
    )
    body = raw.request(60, 1, {"include_cluster_authorized_operations": False, "endpoint_type": 2})
    assert body.error_code == ErrorCode.MISMATCHED_ENDPOINT_TYPE
    body = raw.request(60, 1, {"include_cluster_authorized_operations": False, "endpoint_type": 7})
    assert (body.error_code, body.error_message) == (ErrorCode.UNSUPPORTED_ENDPOINT_TYPE, "Unsupported endpoint type 7")
    body = raw.request(60, 0, {"include_cluster_authorized_operations": False})
    assert body.error_code == ErrorCode.NONE and body.cluster_authorized_operations == -(2**31)


def test_describe_log_dirs(kp_admin, bootstrap):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 2, 1)])
    cf_produce(bootstrap, topic, [b"x" * 100] * 10, partition=1)
    dirs = kp_admin.describe_log_dirs()
    [broker] = dirs
    [log_dir] = broker["log_dirs"]
    sizes = {
        p["partition_index"]: p["partition_size"]
        for t in log_dir["topics"]
        if t["name"] == topic
        for p in t["partitions"]
    }
    assert sizes[0] == 0 and sizes[1] > 1000


def test_a_compacted_topic_refuses_records_without_a_key(kp_admin, bootstrap, raw):
    topic = unique()
    kp_admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    producer = Producer({"bootstrap.servers": bootstrap, "retries": 0, "linger.ms": 0})
    results = []
    producer.produce(topic, b"v", key=b"k", on_delivery=lambda err, msg: results.append(err))
    assert producer.flush(TIMEOUT) == 0
    producer.produce(topic, b"v", on_delivery=lambda err, msg: results.append(err))
    assert producer.flush(TIMEOUT) == 0
    assert results[0] is None
    assert results[1].code() == ErrorCode.INVALID_RECORD
    # the per-record errors, as Kafka's LogValidator words them
    builder = DefaultRecordBatchBuilder(2, 0, False, -1, -1, -1, 1 << 20)
    builder.append(0, 1_700_000_000_000, b"k", b"v", [])
    builder.append(1, 1_700_000_000_000, None, b"v", [])
    body = raw.request(
        0,
        9,
        {
            "acks": -1,
            "timeout_ms": 5000,
            "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": bytes(builder.build())}]}],
        },
    )
    p = body.responses[0].partition_responses[0]
    message = f"Compacted topic cannot accept message without key in topic partition {topic}-0."
    assert p.error_code == ErrorCode.INVALID_RECORD
    assert [(e.batch_index, e.batch_index_error_message) for e in p.record_errors] == [(1, message)]
    assert p.error_message == (
        "One or more records have been rejected due to 1 record errors in total, and only showing the first "
        f"three errors at most: [RecordError(batchIndex=1, message='{message}')]"
    )
