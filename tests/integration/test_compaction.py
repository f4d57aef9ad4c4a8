"""Log compaction over TCP with real clients: 100,000 updates over 1,000 keys and 100 tombstones end,
after cleaning, with exactly the 900 live keys at their latest values; consumers from offset 0 read
the compacted log (with its offset gaps) without errors; the three replicas stay identical.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

from kstub.protocol.records import iter_records

from support.compaction import KEYS, TOMBSTONES, TOPIC_CONFIGS, UPDATES, create_topic, produce_workload, read_all


def replica_contents(kstub_cluster, topic: str) -> dict[int, list[tuple[int, int, bytes]]]:
    """Each replica's log as (base offset, last offset, bytes) of its batches."""

    def grab() -> dict[int, list[tuple[int, int, bytes]]]:
        p = kstub_cluster.cluster.partition(topic, 0)
        return {b: [(c.base_offset, c.last_offset, bytes(c.data)) for c in lg.read(0)] for b, lg in p.logs.items()}

    return kstub_cluster.call(grab)


def compacted_topic(bootstrap: str, updates: int, keys: int, configs: dict[str, str] | None = None) -> str:
    """A new compacted topic of 2000-byte segments (plus `configs`) holding `updates` records of 50 bytes
    over `keys` keys (k0, k1, ...), each sent and flushed alone."""
    from confluent_kafka import Producer

    topic = f"compacted-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, {"cleanup.policy": "compact", "segment.bytes": "2000", **(configs or {})})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(updates):
        producer.produce(topic, key=f"k{i % keys}".encode(), value=b"v" * 50)
        producer.flush(10)
    return topic


@pytest.mark.kstub(brokers=3)
def test_a_compacted_topic_ends_with_the_latest_value_of_each_live_key(kstub_cluster, bootstrap):
    topic = f"compacted-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, TOPIC_CONFIGS, replication_factor=3)
    expected = produce_workload(bootstrap, topic)
    assert len(expected) == KEYS - TOMBSTONES == 900

    control = kstub_cluster.cluster.control
    kstub_cluster.call_async(control.clean_logs, topic)  # whatever the background cleaner left
    partition = kstub_cluster.cluster.partition(topic, 0)
    leader_log = partition.leader_log
    active_base = kstub_cluster.call(lambda: leader_log.active_segment.base_offset)
    assert active_base > 0, "the workload must fill more than one segment"

    state, count, seen = read_all(bootstrap, topic)
    assert state == expected
    assert len(state) == 900
    # cleaned: below the active segment each key appears once, at its latest offset
    closed = [k for o, k in seen if o < active_base]
    assert len(closed) == len(set(closed)) and len(closed) <= KEYS
    assert count < UPDATES // 2  # the active segment (1 MiB) holds at most ~12,000 of them
    # the offsets have gaps and keep increasing; the log end did not move
    offsets = [o for o, _ in seen]
    assert offsets == sorted(set(offsets)) and offsets[-1] < UPDATES + TOMBSTONES
    assert offsets[0] > 0

    # every replica holds the same batches, byte for byte
    replicas = replica_contents(kstub_cluster, topic)
    assert len(replicas) == 3
    first, *others = replicas.values()
    for other in others:
        assert other == first
    total = sum(1 for _, _, data in first for _ in iter_records(data))
    assert total == count

    # kafka-python (another client's fetch path) reads it from 0 too
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp = KTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        end = consumer.end_offsets([tp])[tp]
        state2: dict[str, str] = {}
        while consumer.position(tp) < end:
            for record in consumer.poll(timeout_ms=1000).get(tp, []):
                key = record.key.decode()
                if record.value is None:
                    state2.pop(key, None)
                else:
                    state2[key] = record.value.decode()
        assert state2 == expected
    finally:
        consumer.close()


def test_the_control_plane_runs_a_pass_now_and_reports_it(kstub_cluster, bootstrap):

    # a dirty ratio never exceeded: the background cleaner leaves the log alone, `force` cleans it
    topic = compacted_topic(bootstrap, 200, 5, {"min.cleanable.dirty.ratio": "1"})
    control = kstub_cluster.cluster.control
    assert kstub_cluster.call_async(control.clean_logs, topic) == []
    assert read_all(bootstrap, topic)[1] == 200
    cleaned = kstub_cluster.call_async(lambda: control.clean_logs(topic, force=True))
    leader = kstub_cluster.cluster.partition(topic, 0).leader
    assert [(c["topic"], c["partition"], c["broker"]) for c in cleaned] == [(topic, 0, leader)]
    assert cleaned[0]["records_read"] > cleaned[0]["records_kept"] > 0
    state, count, seen = read_all(bootstrap, topic)
    assert state == {f"k{i}": "v" * 50 for i in range(5)}
    active_base = kstub_cluster.call(
        lambda: kstub_cluster.cluster.partition(topic, 0).leader_log.active_segment.base_offset
    )
    assert cleaned[0]["end_offset"] == active_base
    closed = [k for o, k in seen if o < active_base]
    assert sorted(closed) == sorted(set(closed)) and len(closed) <= 5
    assert count == 200 - cleaned[0]["records_read"] + cleaned[0]["records_kept"]


def test_committed_offsets_survive_cleaning_passes(kstub_cluster, bootstrap):
    """kstub keeps group offsets beside the logs (no __consumer_offsets log): cleaning every log leaves them."""
    from kafka import OffsetAndMetadata

    topic = compacted_topic(bootstrap, 100, 3)
    group = f"g-{uuid.uuid4().hex[:8]}"
    tp = KTopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(42, "", -1)})
    finally:
        consumer.close()
    cleaned = kstub_cluster.call_async(lambda: kstub_cluster.cluster.control.clean_logs(None, force=True))
    assert all(c["topic"] == topic for c in cleaned)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        consumer.assign([tp])
        assert consumer.committed(tp) == 42
        # offset 42 may now be in a gap: the consumer resumes at the next record that stayed
        records = []
        while not records:
            records = consumer.poll(timeout_ms=1000).get(tp, [])
        assert records[0].offset >= 42
    finally:
        consumer.close()


@pytest.mark.kstub(admin_port=0)
def test_kstub_ctl_and_the_admin_api_run_a_pass(kstub_cluster, bootstrap):
    import json
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    topic = compacted_topic(bootstrap, 100, 3, {"min.cleanable.dirty.ratio": "1"})
    url = kstub_cluster.admin_url
    cmd = [sys.executable, "-m", "kstub", "ctl", "--admin-url", url, "logs", "clean", "--topic", topic]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"cleaned": []}  # the ratio is never exceeded
    out = subprocess.run([*cmd, "--force"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    (entry,) = json.loads(out.stdout)["cleaned"]
    assert entry["topic"] == topic and entry["records_kept"] < entry["records_read"]
    request = urllib.request.Request(
        f"{url}/v1/logs/clean",
        data=b'{"topic": "nope"}',
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=30)
    assert err.value.code == 404


def test_the_background_cleaner_compacts_when_segments_roll(kstub_cluster, bootstrap):
    import time

    topic = compacted_topic(bootstrap, 300, 3, {"min.cleanable.dirty.ratio": "0.01"})

    def closed_keys() -> list[bytes]:
        lg = kstub_cluster.cluster.partition(topic, 0).leader_log
        active = lg.active_segment.base_offset
        return [r.key for c in lg.read(0) if c.last_offset < active for r in iter_records(c.data)]

    # no pass is asked for: the rolls woke the cleaner
    deadline = time.monotonic() + 30
    while True:
        keys = kstub_cluster.call(closed_keys)
        if len(keys) == len(set(keys)):
            break
        assert time.monotonic() < deadline, f"not compacted: {len(keys)} records in closed segments"
        time.sleep(0.05)
    assert kstub_cluster.cluster.cleaner.cleanings > 0
    state, count, _ = read_all(bootstrap, topic)
    assert state == {f"k{i}": "v" * 50 for i in range(3)} and count < 300


def test_the_java_consumer_reads_a_compacted_log_from_offset_0(kstub_cluster, bootstrap):
    """Apache Kafka's own consumer (through compat's Java driver) reads across the gaps cleaning left."""
    from confluent_kafka import Producer

    from kstub.compat.clients.java import Java

    from support.external import require_programs

    require_programs("java", "mvn")
    topic = f"compacted-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, {"cleanup.policy": "compact", "segment.bytes": "20000"})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.num.messages": 100})
    expected: dict[bytes, bytes] = {}
    for i in range(5000):
        key, value = f"k{(i * 7) % 50}".encode(), f"v{i}".encode()
        producer.produce(topic, key=key, value=value)
        expected[key] = value
    for k in range(5):
        producer.produce(topic, key=f"k{k}".encode(), value=None)
        expected.pop(f"k{k}".encode())
    assert producer.flush(30) == 0
    kstub_cluster.call_async(lambda: kstub_cluster.cluster.control.clean_logs(topic, force=True))
    _, count, seen = read_all(bootstrap, topic)
    assert count < 5000 and seen[0][0] > 0  # compacted, starting after a gap

    records = Java(bootstrap, timeout=60).consume(topic, {0: 0}, count)
    assert [(r.offset, r.key.decode()) for r in records] == seen
    java_state: dict[bytes, bytes] = {}
    for r in records:
        if r.value is None:
            java_state.pop(r.key, None)
        else:
            java_state[r.key] = r.value
    assert java_state == expected


STREAMS_APP = Path(__file__).parent / "streams_app"


def test_a_kafka_streams_ktable_restores_from_a_compacted_topic(kstub_cluster, bootstrap, tmp_path):
    """Kafka Streams (the pinned release) restores a KTable's in-memory store from its compacted source topic
    (its changelog, with topology optimization) read from the beginning, across the gaps cleaning left."""
    from confluent_kafka import Producer

    from support.external import require_programs

    require_programs("java", "javac", "mvn")
    classpath_file = tmp_path / "classpath.txt"
    pom = str(STREAMS_APP / "pom.xml")
    resolve = subprocess.run(
        ["mvn", "-q", "-f", pom, "dependency:build-classpath", f"-Dmdep.outputFile={classpath_file}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resolve.returncode == 0, resolve.stdout[-2000:] + resolve.stderr[-2000:]
    classpath = classpath_file.read_text().strip()
    build = subprocess.run(
        ["javac", "-d", str(tmp_path), "-cp", classpath, str(STREAMS_APP / "KTableRestore.java")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]

    topic = f"table-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, {"cleanup.policy": "compact", "segment.bytes": "20000"})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.num.messages": 100})
    expected: dict[str, str] = {}
    for i in range(5000):
        key, value = f"k{(i * 7) % 50:02d}", f"v{i}"
        producer.produce(topic, key=key.encode(), value=value.encode())
        expected[key] = value
    for k in range(5):
        producer.produce(topic, key=f"k{k:02d}".encode(), value=None)
        del expected[f"k{k:02d}"]
    assert producer.flush(30) == 0
    kstub_cluster.call_async(lambda: kstub_cluster.cluster.control.clean_logs(topic, force=True))
    _, count, seen = read_all(bootstrap, topic)
    assert count < 5000 and seen[0][0] > 0

    jvm = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
    app = ["-cp", f"{tmp_path}{os.pathsep}{classpath}", "KTableRestore", bootstrap, topic]
    app += [f"app-{uuid.uuid4().hex[:8]}", str(tmp_path / "state"), str(len(expected))]
    run = subprocess.run(jvm + app, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[-1] == "END"
    restored = dict(line.split("\t", 1) for line in lines[:-1])
    assert restored == expected


def test_a_config_change_wakes_the_cleaner(kstub_cluster, bootstrap):
    import time

    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

    topic = compacted_topic(bootstrap, 100, 3, {"min.cleanable.dirty.ratio": "1"})
    assert read_all(bootstrap, topic)[1] == 100  # the rolls woke the cleaner; the ratio kept it idle

    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin.incremental_alter_configs([resource])[resource].result(30)
    deadline = time.monotonic() + 30
    while (count := read_all(bootstrap, topic)[1]) == 100:
        assert time.monotonic() < deadline, "the cleaner did not run after the config change"
        time.sleep(0.1)
    assert count < 100


def test_segments_become_cleanable_when_min_compaction_lag_passes(kstub_cluster, bootstrap):
    """No produce, no pass asked for: the cleaner wakes itself when the lag makes the segments old enough."""
    import time

    from confluent_kafka import Producer

    topic = f"compacted-{uuid.uuid4().hex[:8]}"
    lag_ms = 1500
    configs = {
        "cleanup.policy": "compact",
        "segment.bytes": "2000",
        "min.cleanable.dirty.ratio": "0.01",
        "min.compaction.lag.ms": str(lag_ms),
    }
    create_topic(bootstrap, topic, configs)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    started = time.time()
    for i in range(100):
        producer.produce(topic, key=f"k{i % 3}".encode(), value=b"v" * 50)
        producer.flush(10)
    count = read_all(bootstrap, topic)[1]
    if time.time() - started < lag_ms / 1000:
        assert count == 100  # every record is younger than the lag: nothing cleanable yet
    deadline = time.monotonic() + 30
    while (count := read_all(bootstrap, topic)[1]) == 100:
        assert time.monotonic() < deadline, "the cleaner did not wake when the lag passed"
        time.sleep(0.2)
    assert count < 100
