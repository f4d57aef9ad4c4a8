"""kafka-get-offsets and kafka-delete-records against kstub."""

from __future__ import annotations

import json
import time
from pathlib import Path

from confluent_kafka import Producer

from support.kafka_tools import create_topic, tool, unique


def _offsets(bootstrap: str, topic: str, *args: str) -> dict[int, int]:
    printed = tool("kafka-get-offsets", "--bootstrap-server", bootstrap, "--topic", topic, *args).stdout
    out = {}
    for line in printed.split():
        name, partition, offset = line.rsplit(":", 2)
        assert name == topic
        out[int(partition)] = int(offset)
    return out


def test_get_offsets_and_delete_records(bootstrap: str, tmp_path: Path) -> None:
    topic = unique("offsets")
    create_topic(bootstrap, topic, 3, 1)
    base = int(time.time() * 1000) - 3_600_000
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition, count in ((0, 10), (1, 4)):
        for i in range(count):
            producer.produce(topic, b"v", partition=partition, timestamp=base + i * 1000)
    assert producer.flush(30) == 0

    assert _offsets(bootstrap, topic) == {0: 10, 1: 4, 2: 0}
    assert _offsets(bootstrap, topic, "--time", "earliest") == {0: 0, 1: 0, 2: 0}
    # the first record at or after the 6th record's timestamp; none (no line) where all are older or none exist
    assert _offsets(bootstrap, topic, "--time", str(base + 5000)) == {0: 5}
    assert _offsets(bootstrap, topic, "--time", "max-timestamp", "--partitions", "0,1") == {0: 9, 1: 3}

    plan = tmp_path / "delete.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "offset": 6},
        {"topic": topic, "partition": 1, "offset": -1},
    ]}))  # fmt: skip
    printed = tool("kafka-delete-records", "--bootstrap-server", bootstrap, "--offset-json-file", str(plan)).stdout
    assert f"partition: {topic}-0\tlow_watermark: 6" in printed
    assert f"partition: {topic}-1\tlow_watermark: 4" in printed
    assert _offsets(bootstrap, topic, "--time", "earliest") == {0: 6, 1: 4, 2: 0}
    assert _offsets(bootstrap, topic, "--time", str(base)) == {0: 6}

    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "offset": 11}]}))
    refused = tool(
        "kafka-delete-records", "--bootstrap-server", bootstrap, "--offset-json-file", str(plan), check=False
    )
    assert f"partition: {topic}-0\terror: org.apache.kafka.common.errors.OffsetOutOfRangeException" in refused.stdout
    assert _offsets(bootstrap, topic, "--time", "earliest") == {0: 6, 1: 4, 2: 0}
