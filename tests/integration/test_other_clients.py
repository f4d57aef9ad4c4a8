"""More real clients: aiokafka, kcat, and legacy message formats from old clients.

Old clients (Sarama with its default version, kafka-python told it talks to
an old broker) produce magic 0 and magic 1 message sets; kstub stores them as
received with offsets rewritten, and modern clients read them back.
"""

from __future__ import annotations

import subprocess

import pytest

from clients import ConfluentClient, KafkaPythonClient, Msg, make_messages, unique_topic


@pytest.mark.parametrize(
    ("api_version", "compression", "magic"),
    [
        ((0, 10, 1), None, 1),
        ((0, 10, 1), "gzip", 1),
        ((0, 9), None, 0),
        ((0, 9), "gzip", 0),
        ((0, 9), "snappy", 0),
    ],
)
def test_legacy_message_sets_are_stored_as_sent_and_readable(kstub_cluster, api_version, compression, magic):
    from kafka import KafkaProducer

    topic = unique_topic("legacy")
    producer = KafkaProducer(
        bootstrap_servers=kstub_cluster.bootstrap_servers,
        api_version=api_version,
        compression_type=compression,
        linger_ms=20,
    )
    futures = [producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=0) for i in range(30)]
    producer.flush(10)
    assert [f.get(10).offset for f in futures] == list(range(30))
    producer.close()

    def magics() -> set[int]:
        log = kstub_cluster.cluster.topics[topic].partitions[0].leader_log
        return {chunk.data[16] for chunk in log.read(0)}

    assert kstub_cluster.call(magics) == {magic}
    want = [Msg(f"k{i}".encode(), f"v{i}".encode(), partition=0, offset=i) for i in range(30)]
    for reader in (ConfluentClient, KafkaPythonClient):
        got = reader(kstub_cluster.bootstrap_servers).consume(topic, {0: 0}, 30)
        assert [(m.offset, m.key, m.value) for m in got] == [(m.offset, m.key, m.value) for m in want], reader.name


def test_aiokafka_produce_and_consume(kstub_cluster):
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    topic = unique_topic("aio")
    msgs = make_messages(500, 1_700_000_000_000)
    bootstrap = kstub_cluster.bootstrap_servers

    async def run() -> list[tuple]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for m in msgs:
                meta = await producer.send_and_wait(
                    topic, key=m.key, value=m.value, headers=m.headers, timestamp_ms=m.timestamp, partition=0
                )
                m.partition, m.offset = meta.partition, meta.offset
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            consumer.seek(tp, 0)
            got: list[tuple] = []
            while len(got) < len(msgs):
                batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
                for records in batches.values():
                    got += [
                        (r.offset, r.key, r.value, tuple((k, v) for k, v in r.headers), r.timestamp) for r in records
                    ]
            return got
        finally:
            await consumer.stop()

    got = asyncio.run(run())
    assert [m.offset for m in msgs] == list(range(len(msgs)))
    assert got == [(m.offset, m.key, m.value, tuple(m.headers), m.timestamp) for m in msgs]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kcat_produce_and_consume(bootstrap, codec, kcat):
    topic = unique_topic("kcat")
    lines = [f"key{i}:value {i}" for i in range(200)]
    subprocess.run(
        [kcat, "-b", bootstrap, "-P", "-t", topic, "-K", ":", "-z", codec, "-p", "0"],
        input="\n".join(lines) + "\n",
        text=True,
        check=True,
        timeout=60,
    )
    out = subprocess.run(
        [kcat, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%o %k:%s\n"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.splitlines() == [f"{i} {line}" for i, line in enumerate(lines)]
    # and a librdkafka consumer of another kind reads what kcat wrote
    got = ConfluentClient(bootstrap).consume(topic, {0: 0}, 200)
    assert [m.value.decode() for m in got] == [line.split(":", 1)[1] for line in lines]


def test_kcat_metadata_lists_brokers_and_topics(bootstrap, kcat):
    topic = unique_topic("meta")
    KafkaPythonClient(bootstrap).create_topic(topic, 3)
    out = subprocess.run(
        [kcat, "-b", bootstrap, "-L", "-J"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    import json

    meta = json.loads(out)
    assert [b["id"] for b in meta["brokers"]] == [0]
    topics = {t["topic"]: t for t in meta["topics"]}
    assert len(topics[topic]["partitions"]) == 3
