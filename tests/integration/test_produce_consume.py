"""Real clients produce to kstub over TCP and read everything back.

kafka-python and confluent-kafka (librdkafka) each: 10,000 keyed messages to a
3-partition topic, read back by assign + seek from offset 0 and from a
timestamp; every message exactly once, in order per partition, with headers,
null values and null keys intact. Compressed batches round-trip untouched;
acks=0 and acks=1 work.
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from clients import CLIENTS, Msg, make_messages, unique_topic

N = 10_000


@pytest.fixture(params=CLIENTS, ids=lambda c: c.name)
def client(request, bootstrap):
    return request.param(bootstrap)


def _by_partition(msgs: list[Msg]) -> dict[int, list[Msg]]:
    parts: dict[int, list[Msg]] = defaultdict(list)
    for m in msgs:
        parts[m.partition].append(m)
    return parts


def _assert_same(produced: list[Msg], consumed: list[Msg]) -> None:
    assert len(consumed) == len(produced)
    want = _by_partition(produced)
    got = _by_partition(consumed)
    assert set(got) == set(want)
    for p, msgs in want.items():
        msgs = sorted(msgs, key=lambda m: m.offset)
        assert [m.offset for m in got[p]] == [m.offset for m in msgs], f"partition {p} out of order or gaps"
        assert [m.content() for m in got[p]] == [m.content() for m in msgs]


def test_ten_thousand_keyed_messages_round_trip(client, kstub_cluster):
    topic = unique_topic()
    client.create_topic(topic, 3)
    base_ts = int(time.time() * 1000) - N
    msgs = make_messages(N, base_ts)
    client.produce(topic, msgs)

    parts = _by_partition(msgs)
    assert set(parts) == {0, 1, 2}, "keys spread over all three partitions"
    for p, pmsgs in parts.items():
        # per partition, offsets follow the send order and have no gaps
        assert [m.offset for m in pmsgs] == list(range(len(pmsgs))), p
    # the same key always lands on the same partition
    placement: dict[bytes, set[int]] = defaultdict(set)
    for m in msgs:
        if m.key is not None:
            placement[m.key].add(m.partition)
    assert all(len(ps) == 1 for ps in placement.values())
    assert any(m.key is None for m in msgs) and any(m.value is None for m in msgs)

    consumed = client.consume(topic, {0: 0, 1: 0, 2: 0}, N)
    _assert_same(msgs, consumed)

    # from a timestamp: the first offset whose timestamp is >= t, per partition
    t = base_ts + N // 2 + 3
    found = client.offsets_for_times(topic, [0, 1, 2], t)
    for p, pmsgs in parts.items():
        expected = next(m.offset for m in pmsgs if m.timestamp >= t)
        assert found[p] == expected
    tail = [m for m in msgs if m.timestamp >= t]
    consumed = client.consume(topic, {p: found[p] for p in parts}, len(tail))
    _assert_same(tail, consumed)


def test_timestamp_after_the_last_message_finds_nothing(client, kstub_cluster):
    topic = unique_topic()
    client.create_topic(topic, 1)
    msgs = make_messages(10, 1_000_000)
    client.produce(topic, msgs)
    assert client.offsets_for_times(topic, [0], 2_000_000) == {0: None}


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_round_trip(client, kstub_cluster, codec):
    topic = unique_topic(codec)
    client.create_topic(topic, 3)
    msgs = make_messages(600, int(time.time() * 1000))
    client.produce(topic, msgs, compression=codec)
    _assert_same(msgs, client.consume(topic, {0: 0, 1: 0, 2: 0}, len(msgs)))

    # the broker stored the client's compressed batches as they were sent
    def codecs_in_log() -> set[int]:
        topic_obj = kstub_cluster.cluster.topics[topic]
        return {chunk.data[22] & 0x07 for p in topic_obj.partitions for chunk in p.leader_log.read(0)}

    # Clients send a batch uncompressed when compressing would not make it smaller (kafka-python's
    # _maybe_compress, librdkafka likewise), so a small batch may be stored as codec 0.
    stored = kstub_cluster.call(codecs_in_log)
    codec_id = ["none", "gzip", "snappy", "lz4", "zstd"].index(codec)
    assert codec_id in stored and stored <= {0, codec_id}


@pytest.mark.parametrize("acks", [0, 1])
def test_acks(client, kstub_cluster, acks):
    topic = unique_topic(f"acks{acks}")
    client.create_topic(topic, 1)
    msgs = make_messages(200, int(time.time() * 1000))
    client.produce(topic, msgs, acks=acks, partition=0)
    for i, m in enumerate(msgs):
        m.partition = 0
        m.offset = i  # with acks=0 the client is told no offsets; the broker assigned them in order
    _assert_same(msgs, client.consume(topic, {0: 0}, len(msgs)))
