"""A transaction the coordinator aborts on timeout, seen by real clients: kstub against real Kafka.

A transactional producer (transaction.timeout.ms 3000) writes and then stays
idle until its coordinator aborts the transaction (DescribeTransactions says
CompleteAbort: at once on kstub, within transaction.abort.timed.out.transaction.cleanup.interval.ms on
Kafka). It then produces again and commits, and recovers as an application
would. What each step gives the client (success, or which error, and whether
it is abortable or fatal) must be the same against kstub (3 brokers, RF=3) as
against real Kafka, and in both a read_committed consumer sees only the
record committed after recovery. With confluent-kafka and the Java client.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kstub.kafka_client import Connection

from support.external import require_programs, unavailable

THREE = {"replica.lag.time.max.ms": "5000"}
TIMEOUT_MS = 3000
PROGRAM = Path(__file__).parent / "java" / "TxnTimeout.java"


def _state(bootstrap: str, tid: str) -> str:
    """The id's DescribeTransactions state, asked of its coordinator (FindCoordinator key type 1)."""
    with Connection(bootstrap.split(",")[0]) as conn:
        found = conn.request(10, 3, {"key": tid, "key_type": 1})
    if found.error_code != 0:
        return ""
    with Connection((found.host, found.port)) as conn:
        (state,) = conn.request(65, 0, {"transactional_ids": [tid]}).transaction_states
    return state.transaction_state if state.error_code == 0 else ""


def _wait_aborted(bootstrap: str, tid: str) -> None:
    """Until the coordinator has aborted the timed-out transaction (polls: Kafka has no event to wait on)."""
    deadline = time.monotonic() + 60
    while _state(bootstrap, tid) != "CompleteAbort":
        assert time.monotonic() < deadline, f"{tid}: the coordinator did not abort the transaction"
        time.sleep(0.1)


def _topic(bootstrap: str, rf: int) -> str:
    name = f"tto-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, rf)])[name].result(30)
    return name


def _read_committed(bootstrap: str, topic: str) -> list[bytes]:
    """Partition 0 from the beginning to its last stable offset."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"tto-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition(topic, 0, 0)])
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF: at the last stable offset
                    return got
                continue
            got.append(m.value())
    finally:
        c.close()
    raise AssertionError(f"partition 0 of {topic} not read to its end: {got}")


def _describe_error(exc: KafkaException) -> tuple[str, bool, bool]:
    err = exc.args[0]
    return err.name(), err.txn_requires_abort(), err.fatal()


def _confluent(bootstrap: str, rf: int) -> tuple[list[tuple], list[bytes]]:
    topic, tid = _topic(bootstrap, rf), f"tto-{uuid.uuid4().hex[:8]}"
    steps: list[tuple] = []
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "transaction.timeout.ms": TIMEOUT_MS})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, b"lost", partition=0)
    assert p.flush(30) == 0
    _wait_aborted(bootstrap, tid)
    try:
        p.produce(topic, b"late", partition=0)
        p.flush(30)
        steps.append(("late", "ok"))
    except KafkaException as exc:
        steps.append(("late", *_describe_error(exc)))
    try:
        p.commit_transaction(30)
        steps.append(("commit", "ok"))
    except KafkaException as exc:
        steps.append(("commit", *_describe_error(exc)))
    try:
        p.abort_transaction(30)
        steps.append(("abort", "ok"))
    except KafkaException as exc:
        steps.append(("abort", *_describe_error(exc)))
        p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
        p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, b"recovered", partition=0)
    p.commit_transaction(30)
    return steps, _read_committed(bootstrap, topic)


@pytest.mark.kstub(brokers=3, config=THREE)
def test_confluent_kafka_after_a_timeout_abort_as_with_kafka(kstub_cluster, real_kafka):
    ours = _confluent(kstub_cluster.bootstrap_servers, 3)
    theirs = _confluent(real_kafka.bootstrap_servers, 1)
    assert theirs[1] == [b"recovered"]
    assert ours == theirs


def _java(lib: Path, bootstrap: str, rf: int) -> tuple[list[str], list[bytes]]:
    topic, tid = _topic(bootstrap, rf), f"tto-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        ["java", "-cp", f"{lib}/*", str(PROGRAM), bootstrap, topic, tid],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        first = proc.stdout.readline().strip()
        assert first == "open", first + proc.stderr.read()[-3000:]  # type: ignore[union-attr]
        _wait_aborted(bootstrap, tid)
        out, err = proc.communicate("go\n", timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    return out.splitlines(), _read_committed(bootstrap, topic)


@pytest.mark.kstub(brokers=3, config=THREE)
def test_the_java_client_after_a_timeout_abort_as_with_kafka(kstub_cluster, real_kafka):
    from kstub.compat.realkafka import RealKafkaUnavailable, ensure_jars

    require_programs("java")
    try:
        lib = ensure_jars()
    except RealKafkaUnavailable as exc:
        unavailable(str(exc))
    ours = _java(lib, kstub_cluster.bootstrap_servers, 3)
    theirs = _java(lib, real_kafka.bootstrap_servers, 1)
    assert theirs[0][-1] == "recovered" and theirs[1] == [b"recovered"]
    assert ours == theirs
