"""Log compaction, kstub against real Kafka: the same workload under the same topic settings (100,000
updates over 1,000 keys, tombstones for 100 of them, 1 MiB segments, min.cleanable.dirty.ratio 0.01)
ends, once each broker's cleaner has cleaned every closed segment, with the same key → value map read
from offset 0, and on both each key appears once below the active segment.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from kstub.compat.realkafka import RealKafka
from kstub.embedded import EmbeddedCluster

from support.compaction import KEYS, TOMBSTONES, TOPIC_CONFIGS, UPDATES, create_topic, produce_workload, read_all

WAIT_S = 180  # real Kafka's cleaner looks every log.cleaner.backoff.ms (15 s by default)


def _kafka_cleaned_to(kafka: RealKafka, topic: str) -> tuple[int, int]:
    """(the cleaner's checkpoint for topic-0, the active segment's base offset) in real Kafka's log dir."""
    data = kafka.node_dir(1) / "data"
    checkpoint = -1
    path = data / "cleaner-offset-checkpoint"
    if path.exists():
        for line in path.read_text().splitlines()[2:]:
            parts = line.split()
            if len(parts) == 3 and parts[0] == topic and parts[1] == "0":
                checkpoint = int(parts[2])
    bases = [int(p.stem) for p in Path(data / f"{topic}-0").glob("*.log")]
    return checkpoint, max(bases, default=0)


def test_compaction_ends_with_the_same_map_as_real_kafka(kstub_cluster: EmbeddedCluster, real_kafka: RealKafka):
    topic = f"compacted-{uuid.uuid4().hex[:8]}"
    servers = {"kstub": kstub_cluster.bootstrap_servers, "kafka": real_kafka.bootstrap_servers}
    expected = {}
    for name, bootstrap in servers.items():
        create_topic(bootstrap, topic, TOPIC_CONFIGS)
        expected[name] = produce_workload(bootstrap, topic)
    assert expected["kstub"] == expected["kafka"]
    assert len(expected["kafka"]) == KEYS - TOMBSTONES

    # kstub: a pass now (its background cleaner may already have done it)
    kstub_cluster.call_async(kstub_cluster.cluster.control.clean_logs, topic)
    kstub_active = kstub_cluster.call(
        lambda: kstub_cluster.cluster.partition(topic, 0).leader_log.active_segment.base_offset
    )
    # real Kafka: wait until its cleaner has cleaned up to the active segment
    deadline = time.monotonic() + WAIT_S
    while True:
        checkpoint, kafka_active = _kafka_cleaned_to(real_kafka, topic)
        if kafka_active > 0 and checkpoint >= kafka_active:
            break
        assert time.monotonic() < deadline, f"real Kafka's cleaner reached {checkpoint}, active segment {kafka_active}"
        time.sleep(1)

    results = {name: read_all(bootstrap, topic) for name, bootstrap in servers.items()}
    for name, active in (("kstub", kstub_active), ("kafka", kafka_active)):
        state, count, seen = results[name]
        assert state == expected[name], name
        closed = [k for o, k in seen if o < active]
        assert len(closed) == len(set(closed)), f"{name}: a key appears twice below the active segment"
        assert count < UPDATES // 2, f"{name}: {count} records left"
    assert results["kstub"][0] == results["kafka"][0]
