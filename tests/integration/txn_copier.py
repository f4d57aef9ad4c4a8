"""Consume-transform-produce with confluent-kafka, for tests/integration/test_transactions_eos.py.

The same program as tests/integration/streams_app/TxnCopier.java: reads INPUT (read_committed, group
GROUP), writes each record's value upper-cased to OUTPUT keyed by where it came from ("partition:offset"),
and commits the consumed offsets in the same transaction (send_offsets_to_transaction), at most 5 records a
transaction. Prints "committed N" after each commit; with STOP_AFTER >= 0, once N reaches it the next
transaction is written but not committed, "open" is printed and the process waits to be killed.

    python txn_copier.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID STOP_AFTER

Errors are handled as an application must: a retriable error retries the call (a timed-out call resumes
where it was), an abortable one aborts the transaction and seeks back to the start of its batch, which is
copied again; a fatal one (fenced by a newer instance) ends the program.

One more case is librdkafka's own (issues confluentinc/librdkafka#5511 and #5456, in 2.16 still): when the
group coordinator's broker dies and leaves the Metadata before send_offsets_to_transaction asks it, the
producer keeps waiting for that broker, which it has already dropped, and the call never returns, past its
timeout. The copier gives the call its timeout and a grace period, then gives the stuck producer up for a
new one with the same transactional id: its InitProducerId fences the old producer and aborts the
transaction (its records never reach read_committed readers) and the batch is copied again.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

T = TypeVar("T")

#: send_offsets_to_transaction's timeout (s); a failover answers within a few seconds
SEND_OFFSETS_TIMEOUT = 10.0
#: how long past its timeout a call waits before it is taken as stuck (s)
GRACE = 5.0


class Stuck(Exception):
    """A librdkafka call did not return within its timeout and the grace period."""


def call_within(fn: Callable[[], T], seconds: float) -> T:
    """fn() on a thread of its own; Stuck if it has not returned after `seconds` (the thread is left behind)."""
    box: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

    def run() -> None:
        try:
            box.put((True, fn()))
        except BaseException as exc:
            box.put((False, exc))

    threading.Thread(target=run, daemon=True).start()
    try:
        ok, value = box.get(timeout=seconds)
    except queue.Empty:
        raise Stuck(f"no answer in {seconds} s") from None
    if not ok:
        raise value
    return value


def retrying(fn: Callable[[], T]) -> T:
    """fn(), called again while it raises a retriable KafkaError."""
    while True:
        try:
            return fn()
        except KafkaException as exc:
            if not exc.args[0].retriable():
                raise
            print(f"txn_copier: retrying: {exc}", file=sys.stderr, flush=True)


class Copier:
    """One instance of the copier: its consumer, its transactional producer, and the records it copied."""

    def __init__(
        self,
        bootstrap: str,
        source: str,
        sink: str,
        group: str,
        tid: str,
        *,
        send_offsets_timeout: float = SEND_OFFSETS_TIMEOUT,
        producer_config: dict[str, Any] | None = None,
    ) -> None:
        self.source, self.sink = source, sink
        self.send_offsets_timeout = send_offsets_timeout
        self.producer_config = {
            "bootstrap.servers": bootstrap,
            "transactional.id": tid,
            "transaction.timeout.ms": 60000,
            **(producer_config or {}),
        }
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6000,  # a killed instance leaves the group soon
            }
        )
        self.producer = self._new_producer()
        #: producers given up while stuck in a call (kept: destroying one would wait for that call)
        self.abandoned: list[Producer] = []
        self.consumer.subscribe([source])
        #: records copied in committed transactions
        self.done = 0

    def _new_producer(self) -> Producer:
        producer = Producer(self.producer_config)
        producer.init_transactions(60)
        return producer

    def next_batch(self) -> list[Message]:
        """At most 5 records, waiting until there is one."""
        while True:
            batch = [m for m in self.consumer.consume(5, 0.2) if not m.error()]
            if batch:
                return batch

    def write(self, batch: list[Message]) -> None:
        """Begin a transaction with the batch's outputs and the consumer's offsets after it."""
        self.producer.begin_transaction()
        offsets: dict[int, int] = {}
        for m in batch:
            value = m.value() or b""
            self.producer.produce(
                self.sink, value.upper(), key=f"{m.partition()}:{m.offset()}", partition=m.partition()
            )
            offsets[m.partition()] = m.offset() + 1
        positions = [TopicPartition(self.source, p, o) for p, o in sorted(offsets.items())]
        metadata = self.consumer.consumer_group_metadata()
        producer, timeout = self.producer, self.send_offsets_timeout
        retrying(
            lambda: call_within(
                lambda: producer.send_offsets_to_transaction(positions, metadata, timeout), timeout + GRACE
            )
        )

    def copy(self, batch: list[Message]) -> bool:
        """Copy the batch in one transaction: True once committed; False if the transaction was aborted, the
        consumer then back at the batch's start to copy it again."""
        try:
            self.write(batch)
            retrying(lambda: self.producer.commit_transaction(60))
        except Stuck as exc:
            print(f"txn_copier: send_offsets_to_transaction stuck ({exc}): new producer", file=sys.stderr, flush=True)
            self.abandoned.append(self.producer)
            self.producer = self._new_producer()  # fences the stuck one: its transaction is aborted
        except KafkaException as exc:
            if not exc.args[0].txn_requires_abort():
                raise
            print(f"txn_copier: aborting: {exc}", file=sys.stderr, flush=True)
            retrying(lambda: self.producer.abort_transaction(60))
        else:
            self.done += len(batch)
            return True
        self.rewind(batch)
        return False

    def rewind(self, batch: list[Message]) -> None:
        """Seek back to the first record of the batch in each of its partitions."""
        first: dict[int, int] = {}
        for m in batch:
            first.setdefault(m.partition(), m.offset())
        for partition, offset in first.items():
            try:
                self.consumer.seek(TopicPartition(self.source, partition, offset))
            except KafkaException as exc:  # revoked meanwhile: its next owner starts at the committed offset
                print(f"txn_copier: not rewinding partition {partition}: {exc}", file=sys.stderr, flush=True)


def main(bootstrap: str, source: str, sink: str, group: str, tid: str, stop_after: int) -> None:
    copier = Copier(bootstrap, source, sink, group, tid)
    while True:
        batch = copier.next_batch()
        if 0 <= stop_after <= copier.done + len(batch):
            copier.write(batch)
            copier.producer.flush(60)
            print("open", flush=True)
            threading.Event().wait()  # killed here, the transaction open
        if copier.copy(batch):
            print(f"committed {copier.done}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:6], int(sys.argv[6]))
