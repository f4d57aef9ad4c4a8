"""Broker behaviour at the protocol level, request by request, with Kafka's error codes.

Requests are built with kstub's own codec and sent through an in-memory
connection (tests/support/memory.py) that the broker serves with its ordinary
connection code; time is Trio's autojump MockClock, so waits cost nothing and
nothing depends on the machine's speed. Record batches are built with
kafka-python's record builder, as a real producer would.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from kstub.protocol import ErrorCode

from support.memory import MemoryClient
from support.raw_requests import Req, batch, create_req, fetch_req, list_offset_req, produce_req


async def call(c: MemoryClient, req: Req) -> Any:
    return req.pick(await c.request(req.api_key, req.version, req.body))


async def create(c: MemoryClient, *args: Any, **kwargs: Any) -> Any:
    return await call(c, create_req(*args, **kwargs))


async def produce(c: MemoryClient, *args: Any, **kwargs: Any) -> Any:
    return await call(c, produce_req(*args, **kwargs))


async def fetch(c: MemoryClient, *args: Any, **kwargs: Any) -> Any:
    return await call(c, fetch_req(*args, **kwargs))


async def list_offset(c: MemoryClient, *args: Any, **kwargs: Any) -> Any:
    return await call(c, list_offset_req(*args, **kwargs))


# --- ApiVersions ---------------------------------------------------------------


async def test_api_versions_advertises_exactly_the_implemented_ranges(raw):
    body = await raw.request(18, 3, {"client_software_name": "kstub-test", "client_software_version": "1"})
    ranges = {k.api_key: (k.min_version, k.max_version) for k in body.api_keys}
    assert ranges == {
        0: (0, 12),
        1: (0, 18),
        2: (0, 11),
        3: (0, 13),
        8: (0, 9),
        9: (0, 9),
        10: (0, 4),
        11: (0, 9),
        12: (0, 4),
        13: (0, 5),
        14: (0, 5),
        15: (0, 6),
        16: (0, 5),
        17: (0, 1),
        18: (0, 5),
        19: (0, 7),
        20: (0, 6),
        21: (0, 2),
        22: (0, 5),
        23: (0, 4),
        24: (0, 5),
        25: (0, 4),
        26: (0, 5),
        28: (0, 6),
        29: (1, 3),
        30: (1, 3),
        31: (1, 3),
        32: (0, 4),
        33: (0, 2),
        35: (0, 5),
        36: (0, 2),
        37: (0, 3),
        42: (0, 2),
        43: (0, 2),
        44: (0, 1),
        45: (0, 1),
        46: (0, 0),
        47: (0, 0),
        48: (0, 1),
        49: (0, 1),
        50: (0, 0),
        51: (0, 0),
        60: (0, 2),
        61: (0, 0),
        65: (0, 0),
        66: (0, 2),
        68: (0, 1),
        69: (0, 1),
        74: (0, 1),
        75: (0, 0),
    }


async def test_api_versions_answer_is_made_once_per_request_version(raw):
    # The answer is kept (sealed, its bytes reused by the compiled encoder) per request version: asking
    # at v4 first does not change v3's, which leaves out the features whose min version is 0 (KAFKA-17011),
    # and each later answer at a version equals its first.
    client = {"client_software_name": "kstub-test", "client_software_version": "1"}
    first: dict[int, Any] = {}
    for version in (4, 3, 4, 3, 4, 3):
        body = await raw.request(18, version, client)
        assert body == first.setdefault(version, body)
    names = {v: {f.name for f in first[v].supported_features} for v in (3, 4)}
    assert names[3] == {f.name for f in first[4].supported_features if f.min_version > 0} != names[4]
    assert first[3].api_keys == first[4].api_keys and len(first[4].api_keys) > 40


# --- Metadata and topics ------------------------------------------------------


async def test_metadata_auto_creates_like_kafka(raw):
    body = await raw.request(3, 12, {"topics": [{"name": "auto-t"}], "allow_auto_topic_creation": True})
    assert body.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION  # being created by this request (Kafka 4)
    body = await raw.request(3, 12, {"topics": [{"name": "auto-t"}], "allow_auto_topic_creation": True})
    topic = body.topics[0]
    assert topic.error_code == ErrorCode.NONE
    assert len(topic.partitions) == 1  # num.partitions=1 by default
    assert topic.partitions[0].leader_id == 0 and topic.partitions[0].isr_nodes == [0]
    assert body.cluster_id and body.controller_id == 0


async def test_metadata_without_auto_create(raw):
    body = await raw.request(3, 12, {"topics": [{"name": "nope"}], "allow_auto_topic_creation": False})
    assert body.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    body = await raw.request(3, 12, {"topics": [{"name": "bad name"}], "allow_auto_topic_creation": True})
    assert body.topics[0].error_code == ErrorCode.INVALID_TOPIC_EXCEPTION


@pytest.mark.kstub(config={"auto.create.topics.enable": "false", "num.partitions": "4"})
async def test_broker_settings_apply(raw):
    body = await raw.request(3, 12, {"topics": [{"name": "x"}], "allow_auto_topic_creation": True})
    assert body.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert (await create(raw, "four", partitions=-1, rf=-1))["num_partitions"] == 4


async def test_metadata_all_topics(raw):
    await create(raw, "a1")
    await create(raw, "a2", partitions=3)
    assert {t.name for t in (await raw.request(3, 12, {"topics": None})).topics} == {"a1", "a2"}
    assert {t.name for t in (await raw.request(3, 0, {"topics": []})).topics} == {"a1", "a2"}  # v0: empty means all


async def test_create_topics_errors(raw):
    assert (await create(raw, "dup"))["error_code"] == ErrorCode.NONE
    assert (await create(raw, "dup"))["error_code"] == ErrorCode.TOPIC_ALREADY_EXISTS
    assert (await create(raw, "rf", rf=2))["error_code"] == ErrorCode.INVALID_REPLICATION_FACTOR
    assert (await create(raw, "zero", partitions=0))["error_code"] == ErrorCode.INVALID_PARTITIONS
    assert (await create(raw, "bad/name"))["error_code"] == ErrorCode.INVALID_TOPIC_EXCEPTION
    assert (await create(raw, "x" * 250))["error_code"] == ErrorCode.INVALID_TOPIC_EXCEPTION
    bad_config = await create(raw, "cfg", configs=[{"name": "no.such.config", "value": "1"}])
    assert bad_config["error_code"] == ErrorCode.INVALID_CONFIG
    bad_value = await create(raw, "cfg", configs=[{"name": "retention.ms", "value": "soon"}])
    assert bad_value["error_code"] == ErrorCode.INVALID_CONFIG and "retention.ms" in bad_value["error_message"]
    assert (await create(raw, "cfg", configs=[{"name": "retention.ms", "value": "1000"}]))[
        "error_code"
    ] == ErrorCode.NONE


async def test_create_topics_validate_only_creates_nothing(raw):
    body = await raw.request(
        19, 7, {"topics": [{"name": "dry", "num_partitions": 2, "replication_factor": 1}], "validate_only": True}
    )
    assert body.topics[0].error_code == ErrorCode.NONE and body.topics[0].num_partitions == 2
    assert (await raw.request(3, 12, {"topics": [{"name": "dry"}], "allow_auto_topic_creation": False})).topics[
        0
    ].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_delete_topics(raw):
    await create(raw, "doomed")
    body = await raw.request(20, 4, {"topic_names": ["doomed", "never-was"], "timeout_ms": 1000})
    assert [(r.name, r.error_code) for r in body.responses] == [
        ("doomed", ErrorCode.NONE),
        ("never-was", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    ]
    assert (await raw.request(3, 12, {"topics": None})).topics == []


# --- Produce ------------------------------------------------------------------


async def test_produce_assigns_offsets_and_stores_bytes_as_sent(raw, cluster):
    await create(raw, "p")
    first = await produce(raw, "p", batch(3))
    second = await produce(raw, "p", batch(2))
    assert (first.error_code, first.base_offset) == (ErrorCode.NONE, 0)
    assert (second.error_code, second.base_offset) == (ErrorCode.NONE, 3)
    assert second.log_start_offset == 0 and second.log_append_time_ms == -1
    sent = batch(2)
    stored = bytes(cluster.model.topics["p"].partitions[0].leader_log.read(3)[0].data)
    # only baseOffset and partitionLeaderEpoch are patched; the CRC-covered part is byte-for-byte what was sent
    assert stored[:8] == (3).to_bytes(8, "big")
    assert stored[8:12] == sent[8:12] and stored[16:] == sent[16:]
    assert stored[12:16] == (0).to_bytes(4, "big"), "stamped with the leader epoch"


async def test_produce_rejects_corrupt_and_oversized_batches(raw):
    await create(raw, "v", configs=[{"name": "max.message.bytes", "value": "2000"}])
    corrupt = bytearray(batch(3))
    corrupt[-1] ^= 0xFF
    assert (await produce(raw, "v", bytes(corrupt))).error_code == ErrorCode.CORRUPT_MESSAGE
    assert (await produce(raw, "v", batch(3, value_size=5000))).error_code == ErrorCode.MESSAGE_TOO_LARGE
    assert (await produce(raw, "v", batch(2) + batch(2))).error_code == ErrorCode.INVALID_RECORD
    assert (await produce(raw, "v", b"")).error_code == ErrorCode.INVALID_RECORD
    assert (await produce(raw, "v", batch(3))).base_offset == 0, "nothing rejected was stored"


async def test_idempotent_retry_is_stored_once(raw):
    await create(raw, "idem")
    init = await raw.request(
        22, 4, {"transactional_id": None, "transaction_timeout_ms": 60000, "producer_id": -1, "producer_epoch": -1}
    )
    assert init.error_code == ErrorCode.NONE and init.producer_id >= 0
    pid, epoch = init.producer_id, init.producer_epoch
    b0 = batch(3, producer_id=pid, epoch=epoch, sequence=0)
    assert (await produce(raw, "idem", b0)).base_offset == 0
    retry = await produce(raw, "idem", b0)
    assert (retry.error_code, retry.base_offset) == (ErrorCode.NONE, 0), "acknowledged with the original offset"
    assert (await produce(raw, "idem", batch(2, producer_id=pid, epoch=epoch, sequence=3))).base_offset == 3
    gap = await produce(raw, "idem", batch(2, producer_id=pid, epoch=epoch, sequence=9))
    assert gap.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert (await list_offset(raw, "idem", -1)).offset == 5, "the retry was not stored again"
    fresh = await produce(raw, "idem", batch(1, producer_id=pid + 1000, epoch=0, sequence=4))
    assert (fresh.error_code, fresh.base_offset) == (ErrorCode.NONE, 5), "no state: any first sequence, as Kafka"


async def test_stale_producer_epoch_is_rejected(raw):
    await create(raw, "ep")
    # only a transactional id keeps its producer id with a new epoch (an idempotent producer gets a new id)
    pid = (await raw.request(22, 4, {"transactional_id": "ep-tx", "transaction_timeout_ms": 1000})).producer_id
    bump = await raw.request(22, 4, {"transactional_id": "ep-tx", "transaction_timeout_ms": 1000})
    assert (bump.producer_id, bump.producer_epoch) == (pid, 1)
    fresh = await raw.request(
        22, 4, {"transactional_id": None, "transaction_timeout_ms": 1, "producer_id": pid, "producer_epoch": 1}
    )
    assert fresh.error_code == ErrorCode.NONE and fresh.producer_id != pid and fresh.producer_epoch == 0
    assert (await produce(raw, "ep", batch(1, producer_id=pid, epoch=1, sequence=0))).error_code == ErrorCode.NONE
    old = await produce(raw, "ep", batch(1, producer_id=pid, epoch=0, sequence=1))
    assert old.error_code == ErrorCode.INVALID_PRODUCER_EPOCH


async def test_acks_zero_gets_no_response(raw):
    await create(raw, "a0")
    await raw.send(
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
    assert (await list_offset(raw, "a0", -1)).offset == 4


# --- Fetch --------------------------------------------------------------------


async def test_fetch_returns_whole_batches_from_the_one_holding_the_offset(raw):
    await create(raw, "f")
    for _ in range(3):
        await produce(raw, "f", batch(3))
    p = await fetch(raw, "f", 4)
    assert p.error_code == ErrorCode.NONE and p.high_watermark == 9
    records = p.records
    assert int.from_bytes(records[:8], "big") == 3, "starts with the batch holding offset 4"
    assert len(records) == 2 * len(batch(3))


async def test_fetch_max_bytes_still_returns_one_whole_batch(raw):
    await create(raw, "big")
    await produce(raw, "big", batch(5, value_size=3000))
    await produce(raw, "big", batch(5, value_size=3000))
    p = await fetch(raw, "big", 0, max_bytes=100, partition_max_bytes=100)
    assert len(p.records) == len(batch(5, value_size=3000)), "exactly one whole batch despite the limits"


async def test_fetch_out_of_range_and_unknown(raw):
    await create(raw, "r")
    await produce(raw, "r", batch(2))
    assert (await fetch(raw, "r", 3)).error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert (await fetch(raw, "r", -1)).error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert (await fetch(raw, "r", 2)).error_code == ErrorCode.NONE  # the log end itself is a valid position
    assert (await fetch(raw, "nope", 0)).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert (await fetch(raw, "r", 0, partition=1)).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_fetch_every_requested_partition_is_answered_in_order(raw):
    await create(raw, "m", partitions=3)
    await produce(raw, "m", batch(1), partition=2)
    body = await raw.request(
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


async def test_fetch_long_poll_wakes_when_data_arrives(cluster, raw):
    """A fetch waiting at the log end returns as soon as a produce lands, well before max_wait."""
    await create(raw, "lp")
    result = {}

    async def waiter(task_status=trio.TASK_STATUS_IGNORED):
        async with cluster.connect(0) as c:
            lp = fetch_req("lp", 0, max_wait_ms=60_000)
            await c.send(lp.api_key, lp.version, lp.body)
            task_status.started()
            result["partition"] = (await c.receive()).responses[0].partitions[0]
            result["at"] = trio.current_time()

    async with trio.open_nursery() as nursery:
        await nursery.start(waiter)
        await trio.sleep(1)  # virtual time: the fetch is parked on the broker meanwhile
        assert not result, "the fetch answered before any data arrived"
        produced_at = trio.current_time()
        await produce(raw, "lp", batch(2))
    assert result["at"] - produced_at < 1, "woken by the produce, not by max_wait (60 s)"
    assert result["partition"].high_watermark == 2 and len(result["partition"].records) > 0


async def test_fetch_honours_max_wait_when_nothing_arrives(raw):
    await create(raw, "idle")
    start = trio.current_time()
    p = await fetch(raw, "idle", 0, max_wait_ms=500)
    assert p.error_code == ErrorCode.NONE and p.records == b"" and p.high_watermark == 0
    assert trio.current_time() - start >= 0.5, "answered at max_wait, not before (virtual time)"


# --- ListOffsets / OffsetForLeaderEpoch / FindCoordinator ------------------------


async def test_list_offsets(raw):
    await create(raw, "lo")
    await produce(raw, "lo", batch(3, ts=1000))
    await produce(raw, "lo", batch(3, ts=2000))
    assert (await list_offset(raw, "lo", -2)).offset == 0
    assert (await list_offset(raw, "lo", -1)).offset == 6
    found = await list_offset(raw, "lo", 1001)
    assert (found.offset, found.timestamp) == (1, 1001)
    assert (await list_offset(raw, "lo", 1500)).offset == 3
    assert (await list_offset(raw, "lo", 5000)).offset == -1
    top = await list_offset(raw, "lo", -3)
    assert (top.offset, top.timestamp) == (5, 2002)
    v0 = await raw.request(
        2,
        0,
        {
            "replica_id": -1,
            "topics": [{"name": "lo", "partitions": [{"partition_index": 0, "timestamp": -1, "max_num_offsets": 1}]}],
        },
    )
    assert v0.topics[0].partitions[0].old_style_offsets == [6]


async def test_offset_for_leader_epoch(raw):
    await create(raw, "oe")
    await produce(raw, "oe", batch(4))
    body = await raw.request(
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


async def test_find_coordinator(raw, cluster):
    port = cluster.model.brokers[0].port
    v2 = await raw.request(10, 2, {"key": "g", "key_type": 0})
    assert (v2.error_code, v2.node_id, v2.port) == (ErrorCode.NONE, 0, port)
    v4 = await raw.request(10, 4, {"key_type": 0, "coordinator_keys": ["g1", "g2"]})
    assert [(c.key, c.node_id, c.port) for c in v4.coordinators] == [("g1", 0, port), ("g2", 0, port)]


# --- several brokers ------------------------------------------------------------


@pytest.mark.kstub(brokers=3)
async def test_partitions_spread_over_brokers_and_non_leaders_refuse(cluster):
    brokers = list(cluster.model.brokers.values())
    async with cluster.connect(0) as c:
        body = await c.request(3, 12, {"topics": None})
        assert sorted((b.node_id, b.port) for b in body.brokers) == sorted((b.node_id, b.port) for b in brokers)
        assert (await create(c, "spread", partitions=6, rf=3))["error_code"] == ErrorCode.NONE
        assert (await create(c, "too-many", rf=4))["error_code"] == ErrorCode.INVALID_REPLICATION_FACTOR
        meta = (await c.request(3, 12, {"topics": [{"name": "spread"}]})).topics[0]
        leaders = [p.leader_id for p in meta.partitions]
        assert sorted(set(leaders)) == [0, 1, 2], "leaders spread over every broker"
        assert all(sorted(p.replica_nodes) == [0, 1, 2] for p in meta.partitions)
    for p in meta.partitions:
        for b in brokers:
            async with cluster.connect(b.node_id) as c:
                code = (await produce(c, "spread", batch(1), partition=p.partition_index)).error_code
                expected = ErrorCode.NONE if b.node_id == p.leader_id else ErrorCode.NOT_LEADER_OR_FOLLOWER
                assert code == expected


class _FetcherSteps(trio.abc.Instrument):
    """Counts the steps the brokers' replica fetcher tasks take."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("run_replica_fetcher"):
            self.steps += 1


@pytest.mark.kstub(brokers=3)
async def test_acks_all_copies_to_followers_within_the_request(cluster):
    """An acks=all produce to RF 3 copies to both followers while its request is handled: when it is
    answered the followers hold the batch and the high watermark covers it, and their fetcher tasks
    were never woken for it (an empty fetch round per request was most of RF 3's extra latency)."""
    async with cluster.connect(0) as c:
        assert (await create(c, "rf3", rf=3))["error_code"] == ErrorCode.NONE
    p = cluster.model.topics["rf3"].partitions[0]
    followers = [r for r in p.replicas if r != p.leader]
    async with cluster.connect(p.leader) as c:
        await produce(c, "rf3", batch(1))  # the fetchers settle (their first round, the new partition)
        await trio.testing.wait_all_tasks_blocked()
        counter = _FetcherSteps()
        trio.lowlevel.add_instrument(counter)
        try:
            for i in range(1, 11):
                answer = await produce(c, "rf3", batch(2))
                assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 1 + 2 * (i - 1))
                assert [p.logs[r].log_end_offset for r in followers] == [1 + 2 * i] * 2
                assert p.high_watermark == 1 + 2 * i
            await trio.testing.wait_all_tasks_blocked()
        finally:
            trio.lowlevel.remove_instrument(counter)
    assert counter.steps == 0


@pytest.mark.kstub(brokers=3)
async def test_acks_all_waits_for_a_paused_follower_and_its_fetcher_copies(cluster):
    """A follower that cannot copy at once (replication paused) is left to its fetcher, which is woken
    when it resumes: the produce waits until then, as Kafka's DelayedProduce does."""
    async with cluster.connect(0) as c:
        assert (await create(c, "rf3p", rf=3))["error_code"] == ErrorCode.NONE
    p = cluster.model.topics["rf3p"].partitions[0]
    slow = next(r for r in p.replicas if r != p.leader)
    cluster.control.pause_replication(slow)
    answers = []
    async with cluster.connect(p.leader) as c, trio.open_nursery() as nursery:

        async def send() -> None:
            answers.append(await produce(c, "rf3p", batch(1)))

        nursery.start_soon(send)
        await trio.sleep(1)
        assert answers == [] and p.high_watermark == 0
        cluster.control.resume_replication(slow)
    assert answers[0].error_code == ErrorCode.NONE
    assert p.logs[slow].log_end_offset == 1 and p.high_watermark == 1


# --- bad frames -------------------------------------------------------------------


async def test_an_undecodable_frame_closes_that_connection_only(cluster, raw):
    await create(raw, "still-served")
    async with cluster.connect(0) as bad:
        # a size prefix, then an API key kstub has no schema for
        await bad.send_raw(b"\x00\x00\x00\x08" + b"\x7f\xff\x00\x00\x00\x00\x00\x01")
        assert await bad.closed_by_broker()
    body = await raw.request(3, 12, {"topics": [{"name": "still-served"}], "allow_auto_topic_creation": False})
    assert body.topics[0].error_code == ErrorCode.NONE
