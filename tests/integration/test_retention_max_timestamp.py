"""Retention by time uses each batch's real largest timestamp, as Kafka's LogValidator computes it.

librdkafka writes a v2 batch whose records carry no timestamp (-1) with
baseTimestamp -1 and maxTimestamp 0. Kafka recomputes the max from the records
(-1 here, "none"), rewrites the header, and time retention then goes by the
segment's last modification. Trusting the header's 0 made kstub delete the data
as 56 years old at the first retention pass.
"""

from __future__ import annotations

import struct
import uuid

import crc32c
import pytest
from confluent_kafka import Producer
from kafka.admin import KafkaAdminClient, NewTopic

from kstub.protocol import ErrorCode
from kstub.protocol.primitives import write_varint as _varint
from kstub.protocol.records import RecordBatch, iter_records

from support.raw import RawClient


def librdkafka_batch_without_timestamps(n: int) -> bytes:
    """A v2 batch laid out as librdkafka writes records whose timestamp is -1: baseTimestamp -1, every
    timestamp delta 0, and the maxTimestamp it starts from (0) left as is."""
    records = b""
    for i in range(n):
        key, value = f"k{i}".encode(), f"v{i}".encode()
        body = b"\x00" + _varint(0) + _varint(i) + _varint(len(key)) + key + _varint(len(value)) + value + _varint(0)
        records += _varint(len(body)) + body
    after_crc = struct.pack(">hiqqqhii", 0, n - 1, -1, 0, -1, -1, -1, n) + records
    head = struct.pack(">qiib", 0, 4 + 1 + 4 + len(after_crc), -1, 2)
    return head + struct.pack(">I", crc32c.crc32c(after_crc)) + after_crc


def test_records_without_timestamps_survive_time_retention(bootstrap, kstub_cluster):
    topic = f"nots-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "3600000"})])
    finally:
        admin.close()
    batch = librdkafka_batch_without_timestamps(5)
    assert RecordBatch(batch).max_timestamp == 0  # what the client claims
    with RawClient(bootstrap) as raw:
        body = {
            "transactional_id": None,
            "acks": -1,
            "timeout_ms": 10000,
            "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": batch}]}],
        }
        resp = raw.request(0, 9, body)
    assert resp.responses[0].partition_responses[0].error_code == ErrorCode.NONE

    deleted = kstub_cluster.call(kstub_cluster.cluster.run_retention)
    partition = kstub_cluster.call(lambda: kstub_cluster.cluster.partition(topic, 0))
    assert deleted == 0
    assert partition.log_start_offset == 0
    [chunk] = kstub_cluster.call(lambda: partition.leader_log.read(0, 1 << 20, 10))
    stored = RecordBatch(chunk.data)
    stored.validate()  # header rewritten, CRC recomputed
    assert (chunk.max_timestamp, stored.max_timestamp) == (-1, -1)  # Kafka's value: no record has a timestamp
    assert [r.timestamp for r in iter_records(chunk.data)] == [-1] * 5


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_confluent_kafka_records_with_timestamp_minus_one_survive_time_retention(bootstrap, kstub_cluster, compression):
    """The real client: librdkafka sends baseTimestamp -1 and maxTimestamp 0 for these records."""
    topic = f"nots-{uuid.uuid4().hex[:8]}"
    kstub_cluster.create_topic(topic, 1, config={"retention.ms": "3600000"})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 100, "compression.type": compression})
    for i in range(3):
        producer.produce(topic, key=b"k", value=f"v{i}".encode(), timestamp=-1)
    assert producer.flush(30) == 0

    assert kstub_cluster.call(kstub_cluster.cluster.run_retention) == 0
    partition = kstub_cluster.call(lambda: kstub_cluster.cluster.partition(topic, 0))
    assert partition.log_start_offset == 0
    chunks = kstub_cluster.call(lambda: partition.leader_log.read(0, 1 << 20, 10))
    assert [c.max_timestamp for c in chunks] == [-1] * len(chunks)
    assert [RecordBatch(c.data).max_timestamp for c in chunks] == [-1] * len(chunks)
    assert [r.timestamp for c in chunks for r in iter_records(c.data)] == [-1, -1, -1]
