"""Each client's own transactions read back by its own consumers, on 3 brokers with RF=3.

aiokafka and kafkajs (confluent-kafka: test_transactions_read_committed.py; the Java client:
test_transactions_java.py) each: commit c0..c5 across 3 partitions, abort a0..a2, leave "zombie" open on
partition 0 and get fenced by a second producer with the same transactional id (the first one's commit
fails), which commits s0..s2. The same client's consumer then reads: read_committed sees exactly c*, s* in
each partition's order (no aborted record, no zombie, no control record); read_uncommitted sees every
data record.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from multibroker import create_topic, wait_until

THREE = {"replica.lag.time.max.ms": "5000"}

READ_COMMITTED = {0: ["c0", "c3", "s0"], 1: ["c1", "c4", "s1"], 2: ["c2", "c5", "s2"]}
READ_UNCOMMITTED = {0: ["c0", "c3", "a0", "zombie", "s0"], 1: ["c1", "c4", "a1", "s1"], 2: ["c2", "c5", "a2", "s2"]}


def _markers_agree(kc, topic: str) -> dict[int, set[tuple[bool, ...]]]:
    """Per partition, the (distinct) sequences of marker kinds its replicas hold: commit True, abort False."""
    from kstub.protocol.records import RecordBatch
    from kstub.protocol.records.control import read_marker

    def read() -> dict[int, set[tuple[bool, ...]]]:
        return {
            p.index: {
                tuple(m.commit for c in lg.read(0) if (m := read_marker(RecordBatch(c.data))) is not None)
                for lg in p.logs.values()
            }
            for p in kc.cluster.topics[topic].partitions
        }

    return kc.call(read)


#: every replica: the first producer's commit and abort, the fencing abort (partition 0: the zombie's), the
#: second producer's commit
MARKERS = {0: {(True, False, False, True)}, 1: {(True, False, True)}, 2: {(True, False, True)}}


@pytest.mark.kstub(brokers=3, config=THREE)
def test_aiokafka_commits_aborts_is_fenced_and_reads_committed(kstub_cluster):
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.errors import KafkaError

    kc = kstub_cluster
    bootstrap = kc.bootstrap_servers
    topic = f"aio-{uuid.uuid4().hex[:8]}"
    create_topic(kc, topic, partitions=3, rf=3)
    tid = f"aio-{uuid.uuid4().hex[:8]}"

    async def read(isolation: str, expected: int) -> dict[int, list[str]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation, enable_auto_commit=False)
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got: dict[int, list[str]] = {0: [], 1: [], 2: []}
        try:
            async with asyncio.timeout(60):
                while sum(map(len, got.values())) < expected:
                    for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                        got[tp.partition] += [r.value.decode() for r in records]
        finally:
            await consumer.stop()
        return got

    async def run() -> tuple[Exception | None, dict, dict]:
        first = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=tid)
        await first.start()
        second = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=tid)
        try:
            async with first.transaction():
                for i in range(6):
                    await first.send_and_wait(topic, f"c{i}".encode(), partition=i % 3)
            await first.begin_transaction()
            for i in range(3):
                await first.send_and_wait(topic, f"a{i}".encode(), partition=i)
            await first.abort_transaction()
            await first.begin_transaction()
            await first.send_and_wait(topic, b"zombie", partition=0)
            await second.start()  # InitProducerId with the same id: fences the first, aborting its transaction
            fenced: Exception | None = None
            try:
                async with asyncio.timeout(30):
                    await first.commit_transaction()
            except KafkaError as exc:
                fenced = exc
            async with second.transaction():
                for i in range(3):
                    await second.send_and_wait(topic, f"s{i}".encode(), partition=i)
        finally:
            await first.stop()
            await second.stop()
        return fenced, await read("read_committed", 9), await read("read_uncommitted", 13)

    fenced, committed, uncommitted = asyncio.run(run())
    assert fenced is not None and "fenced" in type(fenced).__name__.lower(), repr(fenced)
    assert committed == READ_COMMITTED
    assert uncommitted == READ_UNCOMMITTED
    wait_until(kc, lambda: kc.cluster.transactions.get(tid).state.value == "CompleteCommit", what="commit")
    assert _markers_agree(kc, topic) == MARKERS


@pytest.mark.kstub(brokers=3, config=THREE)
def test_kafkajs_commits_aborts_is_fenced_and_reads_committed(kstub_cluster):
    """Skips without node or kafkajs (`npm ci --prefix compat/js`); fails under CI."""
    from kstub.compat.clients.kafkajs import JS_DIR

    from support.external import require_programs, unavailable

    require_programs("node")
    if not (JS_DIR / "node_modules" / "kafkajs").exists():
        unavailable(f"kafkajs is not installed (npm ci --prefix {JS_DIR})")
    kc = kstub_cluster
    topic = f"js-{uuid.uuid4().hex[:8]}"
    create_topic(kc, topic, partitions=3, rf=3)
    tid = f"js-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        ["node", str(Path(__file__).parent / "js" / "txn_fence.js"), kc.bootstrap_servers, topic, tid],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "NODE_PATH": str(JS_DIR / "node_modules")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["fenced"] is not None and ("FENCED" in out["fenced"] or "EPOCH" in out["fenced"]), out
    assert {int(k): v for k, v in out["read_committed"].items()} == READ_COMMITTED
    assert {int(k): v for k, v in out["read_uncommitted"].items()} == READ_UNCOMMITTED
    wait_until(kc, lambda: kc.cluster.transactions.get(tid).state.value == "CompleteCommit", what="commit")
    assert _markers_agree(kc, topic) == MARKERS
