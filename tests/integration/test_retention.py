"""Retention seen by real consumers: the log start offset moves, a consumer behind it gets
OFFSET_OUT_OF_RANGE and follows its auto.offset.reset, ListOffsets earliest moves.

The retention pass is run on demand (`ClusterState.run_retention`), by the periodic
task with a short ``log.retention.check.interval.ms``, and under Trio's
MockClock to show the period itself.
"""

from __future__ import annotations

import time
import uuid

import pytest
import trio
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import OffsetOutOfRangeError
from kafka.record.default_records import DefaultRecordBatchBuilder

from kstub.cluster.config import BrokerConfig
from kstub.cluster.model import ClusterState
from kstub.protocol import ErrorCode
from kstub.protocol.records import read_produce_data
from kstub.server import ListenerSpec, serve_cluster

from support.raw import RawClient

TIMEOUT = 30
HOUR = 3_600_000


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(bootstrap: str, topic: str, **configs: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs)])
    finally:
        admin.close()


def log_start(kstub_cluster, topic: str) -> int:
    return kstub_cluster.call(lambda: kstub_cluster.cluster.partition(topic, 0).log_start_offset)


def produce_one_batch_each(bootstrap: str, topic: str, n: int, *, timestamp_ms: int | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    for i in range(n):
        producer.send(topic, value=b"v" * 100, key=str(i).encode(), timestamp_ms=timestamp_ms).get(timeout=TIMEOUT)
    producer.close()


def test_retention_bytes_moves_a_kafka_python_consumer_to_the_new_earliest(bootstrap, kstub_cluster):
    topic = unique()
    create(bootstrap, topic, **{"segment.bytes": "1000", "retention.bytes": "3000"})
    produce_one_batch_each(bootstrap, topic, 60)

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=500,
        fetch_max_bytes=500,
    )
    tp = KTopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    offsets: list[int] = []
    while not offsets:
        offsets += [r.offset for r in consumer.poll(timeout_ms=1000).get(tp, [])]
    assert offsets[0] == 0

    deleted = kstub_cluster.call(kstub_cluster.cluster.run_retention)
    start = log_start(kstub_cluster, topic)
    assert deleted > 0 and start > offsets[-1] + 1
    size = kstub_cluster.call(lambda: kstub_cluster.cluster.partition(topic, 0).leader_log.size_bytes)
    assert 3000 <= size < 3000 + 1000  # at or above retention.bytes, less than one more segment

    deadline = time.monotonic() + TIMEOUT
    while (not offsets or offsets[-1] < 59) and time.monotonic() < deadline:
        offsets += [r.offset for r in consumer.poll(timeout_ms=500).get(tp, [])]
    consumer.close()
    # what the consumer had fetched before retention, then a jump to the new log start, then everything after it
    jump = next(i for i in range(1, len(offsets)) if offsets[i] != offsets[i - 1] + 1)
    assert offsets[:jump] == list(range(jump))
    assert offsets[jump:] == list(range(start, 60))

    earliest = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    assert earliest.beginning_offsets([tp]) == {tp: start}
    earliest.close()


def test_without_a_reset_policy_kafka_python_raises_offset_out_of_range(bootstrap, kstub_cluster):
    topic = unique()
    create(bootstrap, topic, **{"segment.bytes": "1000", "retention.bytes": "1"})
    produce_one_batch_each(bootstrap, topic, 20)
    kstub_cluster.call(kstub_cluster.cluster.run_retention)
    assert log_start(kstub_cluster, topic) > 0
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="none")
    tp = KTopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    with pytest.raises(OffsetOutOfRangeError):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            consumer.poll(timeout_ms=500)
    consumer.close()


def old_then_new(bootstrap: str, topic: str, now_ms: int) -> None:
    """50 messages two hours old, then 50 new ones (confluent-kafka, explicit CreateTime timestamps)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 1})
    for i in range(100):
        producer.produce(topic, b"v" * 50, timestamp=now_ms - 2 * HOUR if i < 50 else now_ms)
        producer.flush(TIMEOUT)


def test_retention_ms_moves_a_confluent_consumer_to_the_new_earliest(bootstrap, kstub_cluster):
    topic = unique()
    now = int(time.time() * 1000)
    # segment.ms of an hour: the new messages, two hours younger, start a new segment
    create(bootstrap, topic, **{"segment.ms": str(HOUR)})
    old_then_new(bootstrap, topic, now)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    alter = ConfigResource(
        "topic",
        topic,
        incremental_configs=[ConfigEntry("retention.ms", str(HOUR), incremental_operation=AlterConfigOpType.SET)],
    )
    for f in admin.incremental_alter_configs([alter]).values():
        f.result(TIMEOUT)
    assert kstub_cluster.call(kstub_cluster.cluster.run_retention) == 1
    assert log_start(kstub_cluster, topic) == 50

    earliest = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g"), "auto.offset.reset": "earliest"})
    assert earliest.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT) == (50, 100)
    earliest.assign([TopicPartition(topic, 0, 0)])  # positioned before the log start
    msg = earliest.poll(TIMEOUT)
    assert msg is not None and msg.error() is None and msg.offset() == 50
    earliest.close()

    strict = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("g"),
            "auto.offset.reset": "error",
            "enable.partition.eof": False,
        }
    )
    strict.assign([TopicPartition(topic, 0, 10)])
    msg = strict.poll(TIMEOUT)
    strict.close()
    assert msg is not None and msg.error() is not None
    assert msg.error().code() == KafkaError._AUTO_OFFSET_RESET
    assert "Broker: Offset out of range" in msg.error().str()


def test_fetch_below_the_log_start_is_offset_out_of_range(bootstrap, kstub_cluster):
    topic = unique()
    create(bootstrap, topic, **{"segment.bytes": "1000", "retention.bytes": "1500"})
    produce_one_batch_each(bootstrap, topic, 30)
    kstub_cluster.call(kstub_cluster.cluster.run_retention)
    start = log_start(kstub_cluster, topic)
    with RawClient(bootstrap) as raw:
        body = raw.request(
            1,
            12,
            {
                "replica_id": -1,
                "max_wait_ms": 0,
                "min_bytes": 1,
                "max_bytes": 1 << 20,
                "topics": [
                    {
                        "topic": topic,
                        "partitions": [
                            {"partition": 0, "fetch_offset": start - 1, "partition_max_bytes": 1 << 20},
                        ],
                    }
                ],
            },
        )
        p = body.responses[0].partitions[0]
        # as Kafka: a read error carries no watermarks; the client asks ListOffsets where the log starts
        assert (p.error_code, p.log_start_offset, p.high_watermark) == (ErrorCode.OFFSET_OUT_OF_RANGE, -1, -1)
        listed = raw.request(
            2,
            7,
            {
                "replica_id": -1,
                "isolation_level": 0,
                "topics": [{"name": topic, "partitions": [{"partition_index": 0, "timestamp": -2}]}],
            },
        )
        assert listed.topics[0].partitions[0].offset == start


@pytest.mark.kstub(config={"log.retention.check.interval.ms": "50"})
def test_the_periodic_pass_applies_retention_on_its_own(bootstrap, kstub_cluster):
    topic = unique()
    create(bootstrap, topic, **{"segment.bytes": "1000", "retention.bytes": "1"})
    produce_one_batch_each(bootstrap, topic, 20)
    deadline = time.monotonic() + TIMEOUT
    while log_start(kstub_cluster, topic) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log_start(kstub_cluster, topic) > 0


async def test_the_periodic_pass_runs_every_check_interval_under_mock_time(autojump_clock):
    t0 = 1_700_000_000.0
    cluster = ClusterState(BrokerConfig(), clock=lambda: t0 + trio.current_time())
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_cluster, cluster, ListenerSpec(host="127.0.0.1", port=0))
        topic = cluster.create_topic("aging", 1, 1, configs={"retention.ms": "60000"})
        partition = topic.partitions[0]
        for _ in range(3):
            builder = DefaultRecordBatchBuilder(2, 0, False, -1, -1, -1, 1 << 20)
            builder.append(0, cluster.now_ms(), b"k", b"v", [])
            partition.append(read_produce_data(bytes(builder.build()), 9), cluster.now_ms())
            partition.leader_log.roll()
        start = trio.current_time()
        # Kafka's default check interval is five minutes; the records expire after one
        await trio.sleep(299)
        assert partition.log_start_offset == 0
        await trio.sleep(2)
        assert partition.log_start_offset == 3
        assert trio.current_time() - start == 301
        nursery.cancel_scope.cancel()
