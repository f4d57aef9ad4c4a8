"""Broker behaviour at the protocol level, request by request, with Kafka's error codes.

Requests are built with kstub's own codec and sent over TCP; record batches
are built with kafka-python's record builder, as a real producer would.
"""

from __future__ import annotations

import time

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder

from kstub.protocol import ErrorCode

from raw import RawClient


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


@pytest.fixture
def raw(bootstrap):
    with RawClient(bootstrap) as c:
        yield c


# --- ApiVersions ---------------------------------------------------------------


def test_api_versions_advertises_exactly_the_implemented_ranges(raw):
    body = raw.request(18, 3, {"client_software_name": "kstub-test", "client_software_version": "1"})
    ranges = {k.api_key: (k.min_version, k.max_version) for k in body.api_keys}
    assert ranges == {
        0: (0, 9),
        1: (0, 12),
        2: (0, 7),
        3: (0, 12),
        8: (0, 8),
        9: (0, 8),
        10: (0, 4),
        11: (0, 9),
        12: (0, 4),
        13: (0, 5),
        14: (0, 5),
        15: (0, 5),
        16: (0, 4),
        18: (0, 3),
        19: (0, 7),
        20: (0, 6),
        21: (0, 2),
        22: (0, 4),
        23: (0, 4),
        32: (0, 4),
        33: (0, 2),
        35: (0, 4),
        37: (0, 3),
        42: (0, 2),
        44: (0, 1),
        47: (0, 0),
        60: (0, 1),
    }


# --- Metadata and topics ------------------------------------------------------


def test_metadata_auto_creates_like_kafka(raw):
    body = raw.request(3, 12, {"topics": [{"name": "auto-t"}], "allow_auto_topic_creation": True})
    assert body.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION  # being created by this request (Kafka 4)
    body = raw.request(3, 12, {"topics": [{"name": "auto-t"}], "allow_auto_topic_creation": True})
    topic = body.topics[0]
    assert topic.error_code == ErrorCode.NONE
    assert len(topic.partitions) == 1  # num.partitions=1 by default
    assert topic.partitions[0].leader_id == 0 and topic.partitions[0].isr_nodes == [0]
    assert body.cluster_id and body.controller_id == 0


def test_metadata_without_auto_create(raw):
    body = raw.request(3, 12, {"topics": [{"name": "nope"}], "allow_auto_topic_creation": False})
    assert body.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    body = raw.request(3, 12, {"topics": [{"name": "bad name"}], "allow_auto_topic_creation": True})
    assert body.topics[0].error_code == ErrorCode.INVALID_TOPIC_EXCEPTION


@pytest.mark.kstub(config={"auto.create.topics.enable": "false", "num.partitions": "4"})
def test_broker_settings_apply(raw):
    body = raw.request(3, 12, {"topics": [{"name": "x"}], "allow_auto_topic_creation": True})
    assert body.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert create(raw, "four", partitions=-1, rf=-1)["num_partitions"] == 4


def test_metadata_all_topics(raw):
    create(raw, "a1")
    create(raw, "a2", partitions=3)
    assert {t.name for t in raw.request(3, 12, {"topics": None}).topics} == {"a1", "a2"}
    assert {t.name for t in raw.request(3, 0, {"topics": []}).topics} == {"a1", "a2"}  # v0: empty means all


def test_create_topics_errors(raw):
    assert create(raw, "dup")["error_code"] == ErrorCode.NONE
    assert create(raw, "dup")["error_code"] == ErrorCode.TOPIC_ALREADY_EXISTS
    assert create(raw, "rf", rf=2)["error_code"] == ErrorCode.INVALID_REPLICATION_FACTOR
    assert create(raw, "zero", partitions=0)["error_code"] == ErrorCode.INVALID_PARTITIONS
    assert create(raw, "bad/name")["error_code"] == ErrorCode.INVALID_TOPIC_EXCEPTION
    assert create(raw, "x" * 250)["error_code"] == ErrorCode.INVALID_TOPIC_EXCEPTION
    bad_config = create(raw, "cfg", configs=[{"name": "no.such.config", "value": "1"}])
    assert bad_config["error_code"] == ErrorCode.INVALID_CONFIG
    bad_value = create(raw, "cfg", configs=[{"name": "retention.ms", "value": "soon"}])
    assert bad_value["error_code"] == ErrorCode.INVALID_CONFIG and "retention.ms" in bad_value["error_message"]
    assert create(raw, "cfg", configs=[{"name": "retention.ms", "value": "1000"}])["error_code"] == ErrorCode.NONE


def test_create_topics_validate_only_creates_nothing(raw):
    body = raw.request(
        19, 7, {"topics": [{"name": "dry", "num_partitions": 2, "replication_factor": 1}], "validate_only": True}
    )
    assert body.topics[0].error_code == ErrorCode.NONE and body.topics[0].num_partitions == 2
    assert (
        raw.request(3, 12, {"topics": [{"name": "dry"}], "allow_auto_topic_creation": False}).topics[0].error_code
        == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    )


def test_delete_topics(raw):
    create(raw, "doomed")
    body = raw.request(20, 4, {"topic_names": ["doomed", "never-was"], "timeout_ms": 1000})
    assert [(r.name, r.error_code) for r in body.responses] == [
        ("doomed", ErrorCode.NONE),
        ("never-was", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    ]
    assert raw.request(3, 12, {"topics": None}).topics == []


# --- Produce ------------------------------------------------------------------


def test_produce_assigns_offsets_and_stores_bytes_as_sent(raw, kstub_cluster):
    create(raw, "p")
    first = produce(raw, "p", batch(3))
    second = produce(raw, "p", batch(2))
    assert (first.error_code, first.base_offset) == (ErrorCode.NONE, 0)
    assert (second.error_code, second.base_offset) == (ErrorCode.NONE, 3)
    assert second.log_start_offset == 0 and second.log_append_time_ms == -1
    sent = batch(2)
    stored = kstub_cluster.call(
        lambda: bytes(kstub_cluster.cluster.topics["p"].partitions[0].leader_log.chunks_from(3)[0].data)
    )
    # only baseOffset and partitionLeaderEpoch are patched; the CRC-covered part is byte-for-byte what was sent
    assert stored[:8] == (3).to_bytes(8, "big")
    assert stored[8:12] == sent[8:12] and stored[16:] == sent[16:]
    assert stored[12:16] == (0).to_bytes(4, "big"), "stamped with the leader epoch"


def test_produce_rejects_corrupt_and_oversized_batches(raw):
    create(raw, "v", configs=[{"name": "max.message.bytes", "value": "2000"}])
    corrupt = bytearray(batch(3))
    corrupt[-1] ^= 0xFF
    assert produce(raw, "v", bytes(corrupt)).error_code == ErrorCode.CORRUPT_MESSAGE
    assert produce(raw, "v", batch(3, value_size=5000)).error_code == ErrorCode.MESSAGE_TOO_LARGE
    assert produce(raw, "v", batch(2) + batch(2)).error_code == ErrorCode.INVALID_RECORD
    assert produce(raw, "v", b"").error_code == ErrorCode.INVALID_RECORD
    assert produce(raw, "v", batch(3)).base_offset == 0, "nothing rejected was stored"


def test_idempotent_retry_is_stored_once(raw):
    create(raw, "idem")
    init = raw.request(
        22, 4, {"transactional_id": None, "transaction_timeout_ms": 60000, "producer_id": -1, "producer_epoch": -1}
    )
    assert init.error_code == ErrorCode.NONE and init.producer_id >= 0
    pid, epoch = init.producer_id, init.producer_epoch
    b0 = batch(3, producer_id=pid, epoch=epoch, sequence=0)
    assert produce(raw, "idem", b0).base_offset == 0
    retry = produce(raw, "idem", b0)
    assert (retry.error_code, retry.base_offset) == (ErrorCode.NONE, 0), "acknowledged with the original offset"
    assert produce(raw, "idem", batch(2, producer_id=pid, epoch=epoch, sequence=3)).base_offset == 3
    gap = produce(raw, "idem", batch(2, producer_id=pid, epoch=epoch, sequence=9))
    assert gap.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert list_offset(raw, "idem", -1).offset == 5, "the retry was not stored again"
    fresh = produce(raw, "idem", batch(1, producer_id=pid + 1000, epoch=0, sequence=4))
    assert (fresh.error_code, fresh.base_offset) == (ErrorCode.NONE, 5), "no state: any first sequence, as Kafka"


def test_stale_producer_epoch_is_rejected(raw):
    create(raw, "ep")
    pid = raw.request(22, 4, {"transactional_id": None, "transaction_timeout_ms": 1}).producer_id
    bump = raw.request(
        22, 4, {"transactional_id": None, "transaction_timeout_ms": 1, "producer_id": pid, "producer_epoch": 0}
    )
    assert (bump.producer_id, bump.producer_epoch) == (pid, 1)
    assert produce(raw, "ep", batch(1, producer_id=pid, epoch=1, sequence=0)).error_code == ErrorCode.NONE
    old = produce(raw, "ep", batch(1, producer_id=pid, epoch=0, sequence=1))
    assert old.error_code == ErrorCode.INVALID_PRODUCER_EPOCH


def test_acks_zero_gets_no_response(raw):
    create(raw, "a0")
    raw.send(
        0,
        9,
        {
            "acks": 0,
            "timeout_ms": 1000,
            "topic_data": [{"name": "a0", "partition_data": [{"index": 0, "records": batch(4)}]}],
        },
        expect_response=False,
    )
    # the next response on the connection answers the next request, not the produce
    assert list_offset(raw, "a0", -1).offset == 4


# --- Fetch --------------------------------------------------------------------


def test_fetch_returns_whole_batches_from_the_one_holding_the_offset(raw):
    create(raw, "f")
    for _ in range(3):
        produce(raw, "f", batch(3))
    p = fetch(raw, "f", 4)
    assert p.error_code == ErrorCode.NONE and p.high_watermark == 9
    records = p.records
    assert int.from_bytes(records[:8], "big") == 3, "starts with the batch holding offset 4"
    assert len(records) == 2 * len(batch(3))


def test_fetch_max_bytes_still_returns_one_whole_batch(raw):
    create(raw, "big")
    produce(raw, "big", batch(5, value_size=3000))
    produce(raw, "big", batch(5, value_size=3000))
    p = fetch(raw, "big", 0, max_bytes=100, partition_max_bytes=100)
    assert len(p.records) == len(batch(5, value_size=3000)), "exactly one whole batch despite the limits"


def test_fetch_out_of_range_and_unknown(raw):
    create(raw, "r")
    produce(raw, "r", batch(2))
    assert fetch(raw, "r", 3).error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert fetch(raw, "r", -1).error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert fetch(raw, "r", 2).error_code == ErrorCode.NONE  # the log end itself is a valid position
    assert fetch(raw, "nope", 0).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert fetch(raw, "r", 0, partition=1).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_fetch_every_requested_partition_is_answered_in_order(raw):
    create(raw, "m", partitions=3)
    produce(raw, "m", batch(1), partition=2)
    body = raw.request(
        1,
        11,
        {
            "max_wait_ms": 0,
            "min_bytes": 1,
            "max_bytes": 1 << 20,
            "topics": [
                {
                    "topic": "m",
                    "partitions": [
                        {"partition": p, "fetch_offset": 0, "partition_max_bytes": 1 << 20} for p in (2, 0, 1)
                    ],
                }
            ],
        },
    )
    assert [p.partition_index for p in body.responses[0].partitions] == [2, 0, 1]
    assert [len(p.records) > 0 for p in body.responses[0].partitions] == [True, False, False]


def test_fetch_long_poll_wakes_when_data_arrives(bootstrap, raw):
    """A fetch waiting at the log end returns as soon as a produce lands, well before max_wait."""
    import threading

    create(raw, "lp")
    result = {}

    def waiter():
        with RawClient(bootstrap) as c:
            result["partition"] = fetch(c, "lp", 0, max_wait_ms=60_000)

    t = threading.Thread(target=waiter)
    t.start()
    # the waiter is parked on the broker; produce from this connection wakes it
    deadline = time.monotonic() + 10
    while t.is_alive() and time.monotonic() < deadline:
        produce(raw, "lp", batch(2))
        t.join(timeout=0.2)
    assert not t.is_alive(), "the long-poll was not woken by the produce"
    assert result["partition"].high_watermark >= 2 and len(result["partition"].records) > 0


def test_fetch_honours_max_wait_when_nothing_arrives(raw):
    create(raw, "idle")
    p = fetch(raw, "idle", 0, max_wait_ms=50)
    assert p.error_code == ErrorCode.NONE and p.records == b"" and p.high_watermark == 0


# --- ListOffsets / OffsetForLeaderEpoch / FindCoordinator ------------------------


def test_list_offsets(raw):
    create(raw, "lo")
    produce(raw, "lo", batch(3, ts=1000))
    produce(raw, "lo", batch(3, ts=2000))
    assert list_offset(raw, "lo", -2).offset == 0
    assert list_offset(raw, "lo", -1).offset == 6
    found = list_offset(raw, "lo", 1001)
    assert (found.offset, found.timestamp) == (1, 1001)
    assert list_offset(raw, "lo", 1500).offset == 3
    assert list_offset(raw, "lo", 5000).offset == -1
    top = list_offset(raw, "lo", -3)
    assert (top.offset, top.timestamp) == (5, 2002)
    v0 = raw.request(
        2,
        0,
        {
            "replica_id": -1,
            "topics": [{"name": "lo", "partitions": [{"partition_index": 0, "timestamp": -1, "max_num_offsets": 1}]}],
        },
    )
    assert v0.topics[0].partitions[0].old_style_offsets == [6]


def test_offset_for_leader_epoch(raw):
    create(raw, "oe")
    produce(raw, "oe", batch(4))
    body = raw.request(
        23,
        4,
        {
            "replica_id": -1,
            "topics": [
                {
                    "topic": "oe",
                    "partitions": [
                        {"partition": 0, "current_leader_epoch": 0, "leader_epoch": 0},
                        {"partition": 0, "current_leader_epoch": 5, "leader_epoch": 0},
                    ],
                }
            ],
        },
    )
    ok, unknown = body.topics[0].partitions
    assert (ok.error_code, ok.leader_epoch, ok.end_offset) == (ErrorCode.NONE, 0, 4)
    assert unknown.error_code == ErrorCode.UNKNOWN_LEADER_EPOCH


def test_find_coordinator(raw, kstub_cluster):
    port = kstub_cluster.brokers[0].port
    v2 = raw.request(10, 2, {"key": "g", "key_type": 0})
    assert (v2.error_code, v2.node_id, v2.port) == (ErrorCode.NONE, 0, port)
    v4 = raw.request(10, 4, {"key_type": 0, "coordinator_keys": ["g1", "g2"]})
    assert [(c.key, c.node_id, c.port) for c in v4.coordinators] == [("g1", 0, port), ("g2", 0, port)]


# --- several brokers ------------------------------------------------------------


@pytest.mark.kstub(brokers=3)
def test_partitions_spread_over_brokers_and_non_leaders_refuse(kstub_cluster):
    brokers = kstub_cluster.brokers
    with RawClient(kstub_cluster.bootstrap_servers) as c:
        body = c.request(3, 12, {"topics": None})
        assert sorted((b.node_id, b.port) for b in body.brokers) == sorted((b.node_id, b.port) for b in brokers)
        assert create(c, "spread", partitions=6, rf=3)["error_code"] == ErrorCode.NONE
        assert create(c, "too-many", rf=4)["error_code"] == ErrorCode.INVALID_REPLICATION_FACTOR
        meta = c.request(3, 12, {"topics": [{"name": "spread"}]}).topics[0]
        leaders = [p.leader_id for p in meta.partitions]
        assert sorted(set(leaders)) == [0, 1, 2], "leaders spread over every broker"
        assert all(sorted(p.replica_nodes) == [0, 1, 2] for p in meta.partitions)
    for p in meta.partitions:
        for b in brokers:
            with RawClient(f"{b.advertised_host}:{b.port}") as c:
                code = produce(c, "spread", batch(1), partition=p.partition_index).error_code
                expected = ErrorCode.NONE if b.node_id == p.leader_id else ErrorCode.NOT_LEADER_OR_FOLLOWER
                assert code == expected
