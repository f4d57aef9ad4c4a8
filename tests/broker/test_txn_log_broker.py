"""Transactions in the logs, over the protocol: read_committed Fetch and ListOffsets, DescribeProducers, failover.

Three brokers, RF=3, in memory (tests/support/memory.py) under the autojump
clock. Transactional batches are produced as a transactional producer sends
them; markers are written with `write_marker`, as the transaction coordinator
does, and replicated like any produce with acks=all.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from kstub.cluster.model import ClusterError
from kstub.cluster.txn_markers import write_marker
from kstub.protocol import ErrorCode
from kstub.protocol.records import iter_records
from kstub.protocol.records.control import Marker

from support.batches import batch
from support.memory import MemoryClient, MemoryCluster, memory_cluster

pytestmark = pytest.mark.trio

TOPIC = "tx-topic"
READ_UNCOMMITTED, READ_COMMITTED = 0, 1


@pytest.fixture
async def mc(autojump_clock):
    # a killed broker leaves leadership when its session expires: after 1 s rather than 9. These tests write
    # transactional batches and markers without a transaction coordinator: the leaders do not verify them (KIP-890)
    config = {"broker.session.timeout.ms": 1000, "transaction.partition.verification.enable": False}
    async with memory_cluster(3, config) as cluster:
        async with cluster.connect(0) as c:
            answer = await c.request(
                19,
                7,
                {
                    "topics": [{"name": TOPIC, "num_partitions": 1, "replication_factor": 3}],
                    "timeout_ms": 5000,
                },
            )
            assert answer.topics[0].error_code == ErrorCode.NONE
        yield cluster


def leader_of(mc: MemoryCluster) -> int:
    return mc.model.partition(TOPIC, 0).leader


async def produce(c: MemoryClient, records: bytes, *, transactional_id: str | None = "tx") -> Any:
    body = {
        "transactional_id": transactional_id,
        "acks": -1,
        "timeout_ms": 5000,
        "topic_data": [{"name": TOPIC, "partition_data": [{"index": 0, "records": records}]}],
    }
    return (await c.request(0, 9, body)).responses[0].partition_responses[0]


async def fetch(c: MemoryClient, offset: int, isolation: int) -> Any:
    body = {
        "max_wait_ms": 0,
        "min_bytes": 1,
        "max_bytes": 1 << 20,
        "isolation_level": isolation,
        "topics": [
            {"topic": TOPIC, "partitions": [{"partition": 0, "fetch_offset": offset, "partition_max_bytes": 1 << 20}]}
        ],
    }
    return (await c.request(1, 12, body)).responses[0].partitions[0]


async def latest(c: MemoryClient, isolation: int) -> int:
    body = {
        "replica_id": -1,
        "isolation_level": isolation,
        "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0, "timestamp": -1}]}],
    }
    answer = (await c.request(2, 7, body)).topics[0].partitions[0]
    assert answer.error_code == ErrorCode.NONE
    return answer.offset


async def describe_producers(c: MemoryClient) -> Any:
    body = {"topics": [{"name": TOPIC, "partition_indexes": [0]}]}
    return (await c.request(61, 0, body)).topics[0].partitions[0]


def offsets(part: Any) -> list[int]:
    return [r.offset for r in iter_records(bytes(part.records or b""))]


def aborted(part: Any) -> list[tuple[int, int]] | None:
    if part.aborted_transactions is None:
        return None
    return [(t.producer_id, t.first_offset) for t in part.aborted_transactions]


def txn(n: int, pid: int, seq: int, epoch: int = 0) -> bytes:
    return batch(n, producer_id=pid, epoch=epoch, sequence=seq, transactional=True)


async def wait_replicated(mc: MemoryCluster) -> None:
    """Until every replica has the leader's log and knows its high watermark (replication runs in tasks)."""
    p = mc.model.partition(TOPIC, 0)
    while any(p.logs[r].log_end_offset < p.log_end_offset or p.states[r].hw < p.high_watermark for r in p.replicas):
        await trio.sleep(0.01)


async def test_read_committed_stops_at_the_lso_and_reports_aborted_transactions(mc):
    async with mc.connect(leader_of(mc)) as c:
        assert (await produce(c, batch(2), transactional_id=None)).base_offset == 0  # 0-1, plain
        assert (await produce(c, txn(3, 500, 0))).base_offset == 2  # 2-4, open
        assert (await produce(c, txn(2, 501, 0))).base_offset == 5  # 5-6, open
        uncommitted = await fetch(c, 0, READ_UNCOMMITTED)
        committed = await fetch(c, 0, READ_COMMITTED)
        assert (uncommitted.high_watermark, uncommitted.last_stable_offset) == (7, 2)
        assert offsets(uncommitted) == list(range(7)) and aborted(uncommitted) is None
        assert (committed.high_watermark, committed.last_stable_offset) == (7, 2)
        assert offsets(committed) == [0, 1] and aborted(committed) == []
        assert (await latest(c, READ_UNCOMMITTED), await latest(c, READ_COMMITTED)) == (7, 2)

        assert await write_marker(mc.model, TOPIC, 0, Marker(500, 0, False, 0)) == 7
        committed = await fetch(c, 0, READ_COMMITTED)
        assert committed.last_stable_offset == 5  # 501 is still open
        assert offsets(committed) == [0, 1, 2, 3, 4] and aborted(committed) == [(500, 2)]
        assert await write_marker(mc.model, TOPIC, 0, Marker(501, 0, True, 0)) == 8
        committed = await fetch(c, 0, READ_COMMITTED)
        assert committed.last_stable_offset == committed.high_watermark == 9
        assert offsets(committed) == list(range(9)) and aborted(committed) == [(500, 2)]
        assert aborted(await fetch(c, 8, READ_COMMITTED)) == []  # the aborted one ended before the read
        assert await latest(c, READ_COMMITTED) == 9


async def test_describe_producers_shows_the_partitions_producers(mc):
    async with mc.connect(leader_of(mc)) as c:
        await produce(c, txn(3, 600, 0, epoch=2))
        await produce(c, batch(2, producer_id=601, epoch=0, sequence=0), transactional_id=None)
        await write_marker(mc.model, TOPIC, 0, Marker(600, 2, True, 9))
        # a new transaction of the same epoch: its sequence goes on (transactions v2 would bump the epoch)
        assert (await produce(c, txn(1, 600, 3, epoch=2))).error_code == ErrorCode.NONE
        answer = await describe_producers(c)
        assert answer.error_code == ErrorCode.NONE
        got = {
            p.producer_id: (p.producer_epoch, p.last_sequence, p.coordinator_epoch, p.current_txn_start_offset)
            for p in answer.active_producers
        }
        assert got == {600: (2, 3, 9, 6), 601: (0, 1, -1, -1)}
        assert all(p.last_timestamp > 0 for p in answer.active_producers)
    await wait_replicated(mc)
    follower = next(r for r in mc.model.partition(TOPIC, 0).replicas if r != leader_of(mc))
    async with mc.connect(follower) as c:  # a follower answers from its own copy
        assert {p.producer_id for p in (await describe_producers(c)).active_producers} == {600, 601}


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_a_new_leader_has_the_same_lso_aborted_index_and_producer_state(mc, how):
    old = leader_of(mc)
    async with mc.connect(old) as c:
        await produce(c, txn(2, 700, 0))  # 0-1
        await write_marker(mc.model, TOPIC, 0, Marker(700, 0, False, 0))  # 2
        await produce(c, txn(2, 701, 0, epoch=3))  # 3-4, open
        before = await fetch(c, 0, READ_COMMITTED)
    assert (before.last_stable_offset, aborted(before)) == (3, [(700, 0)])
    await wait_replicated(mc)
    if how == "stop":
        await mc.control.stop_broker(old)  # controlled: leadership moves first
    else:
        await mc.control.kill_broker(old)  # a crash: leadership moves when its session expires
        while leader_of(mc) in (old, -1):
            await trio.sleep(0.1)
    new = leader_of(mc)
    assert new not in (old, -1)
    async with mc.connect(new) as c:
        after = await fetch(c, 0, READ_COMMITTED)
        assert (after.last_stable_offset, aborted(after), offsets(after)) == (3, [(700, 0)], offsets(before))
        assert await latest(c, READ_COMMITTED) == 3
        # the producer's retry is recognised and its zombie epoch fenced, on the new leader
        assert (await produce(c, txn(2, 701, 0, epoch=3))).base_offset == 3
        assert (await produce(c, txn(1, 701, 2, epoch=2))).error_code == ErrorCode.INVALID_PRODUCER_EPOCH
        assert (await produce(c, txn(1, 701, 5, epoch=3))).error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        await write_marker(mc.model, TOPIC, 0, Marker(701, 3, True, 0))
        assert (await fetch(c, 0, READ_COMMITTED)).last_stable_offset == 6


async def test_write_marker_errors(mc):
    p = mc.model.partition(TOPIC, 0)
    async with mc.connect(leader_of(mc)) as c:
        await produce(c, txn(1, 800, 0, epoch=5))
    with pytest.raises(ClusterError) as info:
        await write_marker(mc.model, TOPIC, 1, Marker(800, 5, True, 0))
    assert info.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    with pytest.raises(ClusterError) as info:
        await write_marker(mc.model, TOPIC, 0, Marker(800, 4, True, 0))
    assert info.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
    await write_marker(mc.model, TOPIC, 0, Marker(800, 5, False, 3))
    with pytest.raises(ClusterError) as info:
        await write_marker(mc.model, TOPIC, 0, Marker(800, 5, False, 2))
    assert info.value.code == ErrorCode.TRANSACTION_COORDINATOR_FENCED
    # the ISR below min.insync.replicas: refused before appending, as an acks=all produce is
    p.topic.configs = {**p.topic.configs, "min.insync.replicas": "3"}
    await wait_replicated(mc)
    end = p.log_end_offset
    follower = next(r for r in p.replicas if r != p.leader)
    await mc.control.stop_broker(follower)
    with pytest.raises(ClusterError) as info:
        await write_marker(mc.model, TOPIC, 0, Marker(800, 5, True, 3))
    assert info.value.code == ErrorCode.NOT_ENOUGH_REPLICAS
    assert p.log_end_offset == end


async def test_a_marker_waits_for_its_replication(mc):
    """A marker is answered once the ISR has it (acks=all): until then read_committed does not pass it."""
    p = mc.model.partition(TOPIC, 0)
    async with mc.connect(leader_of(mc)) as c:
        await produce(c, txn(2, 900, 0))
        followers = [r for r in p.replicas if r != p.leader]
        for r in followers:
            mc.control.pause_replication(r)
        done: list[int] = []

        async def end() -> None:
            done.append(await write_marker(mc.model, TOPIC, 0, Marker(900, 0, True, 0)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(end)
            await trio.sleep(1)
            assert done == [] and p.log_end_offset == 3
            assert (await fetch(c, 0, READ_COMMITTED)).last_stable_offset == 0
            for r in followers:
                mc.control.resume_replication(r)
        assert done == [2]
        assert (await fetch(c, 0, READ_COMMITTED)).last_stable_offset == 3


async def test_a_marker_lost_with_its_leader_is_written_again_on_the_new_one(mc):
    """The leader dies with a marker its followers never copied: the marker's write fails, the transaction is
    open on the new leader (read_committed sees none of it) until the marker is written there; the old
    leader, back, truncates its own copy and follows."""
    p = mc.model.partition(TOPIC, 0)
    old = leader_of(mc)
    async with mc.connect(old) as c:
        await produce(c, txn(2, 950, 0))  # 0-1
    await wait_replicated(mc)
    followers = [r for r in p.replicas if r != old]
    for r in followers:
        mc.control.pause_replication(r)
    failed: list[ErrorCode] = []

    async def end() -> None:
        with pytest.raises(ClusterError) as info:
            await write_marker(mc.model, TOPIC, 0, Marker(950, 0, False, 0))
        failed.append(info.value.code)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(end)
        while p.logs[old].log_end_offset < 3:
            await trio.sleep(0.01)
        await mc.control.kill_broker(old)
        for r in followers:
            mc.control.resume_replication(r)
    assert failed == [ErrorCode.NOT_LEADER_OR_FOLLOWER]
    while leader_of(mc) in (old, -1):
        await trio.sleep(0.1)
    async with mc.connect(leader_of(mc)) as c:
        answer = await fetch(c, 0, READ_COMMITTED)
        assert (answer.high_watermark, answer.last_stable_offset, offsets(answer)) == (2, 0, [])
        assert await write_marker(mc.model, TOPIC, 0, Marker(950, 0, False, 0)) == 2
        answer = await fetch(c, 0, READ_COMMITTED)
        assert (answer.last_stable_offset, aborted(answer)) == (3, [(950, 0)])
    await mc.control.start_broker(old)
    await wait_replicated(mc)
    for r in p.replicas:
        producers = p.logs[r].producers
        assert [tuple(t) for t in producers.aborted_transactions(0, 10)] == [(950, 0, 2)]
        assert producers.open_transactions() == {}
