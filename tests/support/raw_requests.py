"""Requests for tests over TCP with `raw.RawClient`: record batches as a producer builds them, and the
Produce, Fetch, ListOffsets and CreateTopics requests the tests send most.

Batches are built with kafka-python's record builder, as a real producer would.
"""

from __future__ import annotations

from kafka.record.default_records import DefaultRecordBatchBuilder

from support.raw import RawClient


def batch(
    n: int = 3,
    *,
    producer_id: int = -1,
    epoch: int = -1,
    sequence: int = -1,
    ts: int = 1_700_000_000_000,
    value_size: int = 10,
) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=producer_id,
        producer_epoch=epoch,
        base_sequence=sequence,
        batch_size=1 << 30,
    )
    for i in range(n):
        builder.append(i, timestamp=ts + i, key=f"k{i}".encode(), value=b"v" * value_size, headers=[])
    return bytes(builder.build())


def create(c: RawClient, name: str, partitions: int = 1, rf: int = 1, **extra) -> dict:
    body = c.request(
        19,
        7,
        {
            "topics": [{"name": name, "num_partitions": partitions, "replication_factor": rf, **extra}],
            "timeout_ms": 5000,
        },
    )
    return body.topics[0]


def produce(c: RawClient, topic: str, records: bytes, *, partition: int = 0, acks: int = -1, version: int = 9):
    body = c.request(
        0,
        version,
        {
            "acks": acks,
            "timeout_ms": 5000,
            "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": records}]}],
        },
    )
    return body.responses[0].partition_responses[0]


def fetch(
    c: RawClient,
    topic: str,
    offset: int,
    *,
    partition: int = 0,
    max_wait_ms: int = 0,
    min_bytes: int = 1,
    max_bytes: int = 50 * 1024 * 1024,
    partition_max_bytes: int = 1024 * 1024,
    version: int = 12,
):
    body = c.request(
        1,
        version,
        {
            "max_wait_ms": max_wait_ms,
            "min_bytes": min_bytes,
            "max_bytes": max_bytes,
            "isolation_level": 0,
            "topics": [
                {
                    "topic": topic,
                    "partitions": [
                        {"partition": partition, "fetch_offset": offset, "partition_max_bytes": partition_max_bytes}
                    ],
                }
            ],
        },
    )
    return body.responses[0].partitions[0]


def list_offset(c: RawClient, topic: str, ts: int, *, version: int = 7):
    body = c.request(
        2,
        version,
        {"replica_id": -1, "topics": [{"name": topic, "partitions": [{"partition_index": 0, "timestamp": ts}]}]},
    )
    return body.topics[0].partitions[0]
