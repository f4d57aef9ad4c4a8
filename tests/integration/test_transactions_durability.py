"""Transactions under ``kstub serve --data-dir``: the coordinator's state survives a SIGKILL.

An id with an open transaction comes back Ongoing (same producer id and
epoch) and a new producer with that id fences and aborts it; an id whose
transaction committed comes back CompleteCommit. The logs keep what
read_committed needs (last stable offset, aborted transactions) across the
restart and across a second SIGKILL: the open transaction's record, aborted,
stays invisible to read_committed.
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kstub.kafka_client import Connection

from support.served import Served, free_ports

TIMEOUT = 30


def _describe(bootstrap: str, tid: str):
    with Connection(bootstrap) as conn:
        (state,) = conn.request(65, 0, {"transactional_ids": [tid]}).transaction_states
    return state


def _read(bootstrap: str, isolation: str) -> dict[int, list[bytes]]:
    """Both partitions of "dur" from the beginning to their end (the last stable offset for read_committed)."""
    import time

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "dur-reader",
            "isolation.level": isolation,
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition("dur", p, 0) for p in range(2)])
    got: dict[int, list[bytes]] = {0: [], 1: []}
    at_end: set[int] = set()
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(at_end) < 2:
            assert time.monotonic() < deadline, got
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    at_end.add(m.partition())
                continue
            got[m.partition()].append(m.value())
    finally:
        c.close()
    return got


def test_transaction_state_survives_a_sigkill(tmp_path: Path) -> None:
    port = free_ports(1)
    args = ("--port", str(port), "--data-dir", str(tmp_path / "data"))
    bootstrap = f"127.0.0.1:{port}"
    server = Served(*args)
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("dur", 2, 1)])["dur"].result(TIMEOUT)
        opened = Producer({"bootstrap.servers": bootstrap, "transactional.id": "dur-open"})
        opened.init_transactions(TIMEOUT)
        opened.begin_transaction()
        opened.produce("dur", b"open", partition=0)
        assert opened.flush(TIMEOUT) == 0
        done = Producer({"bootstrap.servers": bootstrap, "transactional.id": "dur-done"})
        done.init_transactions(TIMEOUT)
        done.begin_transaction()
        done.produce("dur", b"done", partition=1)
        done.commit_transaction(TIMEOUT)
        before = _describe(bootstrap, "dur-open")
        assert before.transaction_state == "Ongoing"
    finally:
        server.proc.kill()
        server.proc.wait(TIMEOUT)

    server = Served(*args)
    try:
        after = _describe(bootstrap, "dur-open")
        assert (after.transaction_state, after.producer_id, after.producer_epoch) == (
            "Ongoing",
            before.producer_id,
            before.producer_epoch,
        )
        assert [(t.topic, list(t.partitions)) for t in after.topics] == [("dur", [0])]
        assert _describe(bootstrap, "dur-done").transaction_state == "CompleteCommit"
        again = Producer({"bootstrap.servers": bootstrap, "transactional.id": "dur-open"})
        again.init_transactions(TIMEOUT)  # fences the open transaction: aborted, then a new epoch
        fenced = _describe(bootstrap, "dur-open")
        assert fenced.producer_id == before.producer_id and fenced.producer_epoch == before.producer_epoch + 2
        assert fenced.transaction_state in ("Empty", "CompleteAbort")
        again.begin_transaction()
        again.produce("dur", b"after", partition=0)
        again.commit_transaction(TIMEOUT)
        committed = {0: [b"after"], 1: [b"done"]}
        assert _read(bootstrap, "read_committed") == committed
        assert _read(bootstrap, "read_uncommitted") == {0: [b"open", b"after"], 1: [b"done"]}
    finally:
        server.proc.kill()
        server.proc.wait(TIMEOUT)

    server = Served(*args)
    try:
        assert _read(bootstrap, "read_committed") == committed
        assert _read(bootstrap, "read_uncommitted") == {0: [b"open", b"after"], 1: [b"done"]}
    finally:
        server.close()
