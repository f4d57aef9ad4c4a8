"""Kafka's Java producer (kafka-clients 4.4, the pinned jars) in transactions against 3 brokers (RF=3).

tests/integration/java/TxnProducer.java commits across 3 partitions, aborts,
and is fenced by a second instance with the same transactional.id; the
coordinator's states and the markers on every replica are asserted here, with
transactions v2 in use (the client's choice, from ApiVersions' finalized
transaction.version). Kafka's Java consumer (java/TxnRead.java) then reads the
topic back: read_committed sees exactly the committed records, in order;
read_uncommitted every record.
Without java (or the jars) the test skips, saying so; under CI it fails.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from kstub.protocol.records import RecordBatch
from kstub.protocol.records.control import read_marker

from multibroker import create_topic, wait_until
from support.external import require_programs, unavailable

PROGRAM = Path(__file__).parent / "java" / "TxnProducer.java"
READER = Path(__file__).parent / "java" / "TxnRead.java"


def _jars() -> Path:
    from kstub.compat.realkafka import RealKafkaUnavailable, ensure_jars

    try:
        return ensure_jars()
    except RealKafkaUnavailable as exc:
        unavailable(str(exc))
        raise


@pytest.mark.kstub(brokers=3, config={"replica.lag.time.max.ms": "5000"})
def test_java_producer_commits_aborts_and_is_fenced(kstub_cluster):
    require_programs("java")
    lib = _jars()
    kc = kstub_cluster
    topic = f"jtxn-{uuid.uuid4().hex[:8]}"
    tid = f"jtid-{uuid.uuid4().hex[:8]}"
    group = f"jgroup-{uuid.uuid4().hex[:8]}"
    create_topic(kc, topic, partitions=3, rf=3)
    result = subprocess.run(
        ["java", "-cp", f"{lib}/*", str(PROGRAM), kc.bootstrap_servers, topic, tid, group],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.split("\n")[:4] == ["committed", "aborted", "fenced", "second committed"], result.stdout
    wait_until(kc, lambda: kc.cluster.transactions.get(tid).state.value == "CompleteCommit", what="commit")
    # transactions v2 (KIP-890 part 2): kstub finalizes transaction.version 2 as Kafka 4.4 does, so the client
    # adds partitions by producing (Produce v12) and ends with EndTxn v5, which bumps the epoch every time
    assert kc.call(lambda: kc.cluster.transactions.get(tid).client_version) == 2
    # sendOffsetsToTransaction (TxnOffsetCommit v6 with transactions v2: no AddOffsetsToTxn) committed with it
    assert {tp: o.offset for tp, o in kc.call(lambda: kc.cluster.groups.committed(group)).items()} == {(topic, 0): 1}

    def marks() -> dict[int, set[tuple[bool, ...]]]:
        out = {}
        for p in kc.cluster.topics[topic].partitions:
            out[p.index] = {
                tuple(m.commit for c in lg.read(0) if (m := read_marker(RecordBatch(c.data))) is not None)
                for lg in p.logs.values()
            }
        return out

    # every replica of a partition holds the same markers: commit, abort; partition 0 also the fenced
    # zombie's abort, partition 1 the second instance's commit
    assert kc.call(marks) == {0: {(True, False, False)}, 1: {(True, False, True)}, 2: {(True, False)}}

    # Kafka's Java consumer: read_committed sees the committed records in order, read_uncommitted every one
    def read(isolation: str) -> dict[int, list[str]]:
        out = subprocess.run(
            ["java", "-cp", f"{lib}/*", str(READER), kc.bootstrap_servers, topic, isolation],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        got: dict[int, list[str]] = {0: [], 1: [], 2: []}
        for line in out.stdout.splitlines():
            partition, value = line.split("\t", 1)
            got[int(partition)].append(value)
        return got

    assert read("read_committed") == {0: ["c0", "c3"], 1: ["c1", "c4", "second"], 2: ["c2", "c5"]}
    assert read("read_uncommitted") == {
        0: ["c0", "c3", "a0", "zombie"],
        1: ["c1", "c4", "a1", "second"],
        2: ["c2", "c5", "a2"],
    }
